"""k-means clustering by Lloyd's algorithm, in PyTorch, shaped like scikit-learn's ``KMeans``
(the estimator; its tensor kernels are in :mod:`companion.classical.lloyd`)."""

from __future__ import annotations

import warnings
from typing import Any

import torch

import companion.distributed as distributed
from companion._validation import (
    InputKind,
    check_array,
    check_is_fitted,
    check_positive_int,
    to_input_kind,
    validate_data,
)
from companion.classical._base import ParamsMixin
from companion.classical._stream import (
    INIT_SAMPLE_ROWS,
    ChunkSource,
    gather_rows,
    is_chunk_source,
    read_pass,
    shared_seed,
    survey,
)
from companion.classical.lloyd import (
    _cluster_sums,
    _fill_empty_clusters,
    _fill_empty_from_candidates,
    _inertia_from_sums,
    _move_points,
    _rounding,
    assign,
    kmeans_plusplus,
    nearest_two,
    squared_distances,
)
from companion.runtime import resolve_seed


class ConvergenceWarning(UserWarning):
    """An iterative estimator stopped at ``max_iter`` before it converged."""


class KMeans(ParamsMixin):
    """k-means clustering.

    Parameters
    ----------
    n_clusters : int
    init : "k-means++", "random" or an array of initial centres (n_clusters, n_features)
    n_init : int
        Runs from different seeds; the one with the lowest inertia is kept.
    max_iter : int
    tol : float
        Stop when the squared centre shift summed over clusters is at most
        ``tol`` times the mean feature variance (scikit-learn's rule), or when
        no label changes.
    random_state : int or None

    Fitted attributes (kind, dtype and device of the data given to fit)
    ---------------------------------------------------------------------
    cluster_centers_ : (n_clusters, n_features)
    labels_ : (n_samples,) int64
    inertia_ : float, sum of squared distances to the closest centre
    n_iter_ : int
    inertia_history_ : list of float, the inertia at each assignment step
    n_features_in_ : int
    feature_names_in_ : (n_features,) object array, the column names of a DataFrame given to fit

    Any array-like is accepted (NumPy arrays, lists, DataFrames; results are
    NumPy arrays, as in scikit-learn); a torch tensor gives tensors on its
    device.

    The iterations are Lloyd's; an in-memory fit skips the distances of the points
    whose cluster provably cannot change (Hamerly's bounds, as scikit-learn's
    ``algorithm="elkan"`` skips them with Elkan's), so late iterations are cheap.
    """

    estimator_type = "clusterer"

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: str | Any = "k-means++",
        n_init: int = 1,
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: int | None = None,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> KMeans:
        """Cluster X (n_samples, n_features); returns self (``y`` is ignored).

        X may also be a re-iterable chunk source (a list of (m, n_features)
        chunks, a DataLoader, or a function returning a fresh iterator of chunks;
        see ``companion.classical._stream``). Each Lloyd iteration is then one pass
        over the chunks that sums the rows of every cluster in float64; a first
        pass checks the chunks and draws a reservoir sample of at most
        ``INIT_SAMPLE_ROWS`` rows, on which k-means++ (or ``init="random"``)
        chooses the start; an array ``init`` skips it. With the same start the
        labels equal the in-memory fit's. ``labels_`` keeps one int64 per row, in
        the order of the last pass. Under ``torch.distributed`` each rank passes
        its own shard (``labels_`` are its rows') and the sums are added over the
        ranks, so every rank ends with the same centres.
        """
        if is_chunk_source(X):
            self._fit_stream(X)
        else:
            self._fit(X)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> Any:
        """Fit, then return ``labels_``, shape (n_samples,) (``y`` is ignored)."""
        return self.fit(X).labels_

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """Fit, then return the distances of X to the centres, (n_samples, n_clusters)."""
        if is_chunk_source(X):
            raise TypeError(
                "fit_transform returns a result for every row, so it needs an in-memory "
                "array, not a chunk source; call fit(chunks) and then transform each chunk."
            )
        X, kind = self._fit(X)
        return to_input_kind(squared_distances(X, self._centers).sqrt(), kind)

    def _fit(self, X: Any) -> tuple[torch.Tensor, InputKind]:
        k = check_positive_int(self.n_clusters, name="n_clusters")
        check_positive_int(self.max_iter, name="max_iter")
        n_init = check_positive_int(self.n_init, name="n_init")
        X, kind = validate_data(self, X, reset=True)
        n = X.shape[0]
        if k > n:
            raise ValueError(
                f"n_clusters={k} is larger than n_samples={n}; use at most {n} clusters "
                "or give more data."
            )
        init = self._initial_centers_array(X, k)
        if init is not None:
            n_init = 1
        x_sq = (X * X).sum(1)
        # the mean feature variance, (sum |x|^2 / n - |mean|^2) / d, without a pass for var
        mean = X.mean(0, dtype=torch.float64)
        variance = (float(x_sq.sum(dtype=torch.float64)) / n - float(mean @ mean)) / X.shape[1]
        tol = max(variance, 0.0) * self.tol
        seed = resolve_seed(self.random_state)
        best = None
        for run in range(n_init):
            generator = torch.Generator().manual_seed(seed + run)
            centers = init if init is not None else self._seed_centers(X, k, generator, x_sq)
            result = self._lloyd(X, centers.clone(), x_sq, tol)
            if best is None or result[1] < best[1]:
                best = result
        self._store(best, kind)
        return X, kind

    def _store(self, best: tuple, kind: InputKind) -> None:
        labels, inertia, centers, n_iter, history = best
        self.cluster_centers_ = to_input_kind(centers, kind)
        self.labels_ = to_input_kind(labels, kind)
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.inertia_history_ = history
        self._centers = centers
        self._kind = kind

    # ------------------------------------------------------------ streaming
    def _check_chunk(self, raw: Any, name: str, first: bool) -> tuple[torch.Tensor, InputKind]:
        return validate_data(self, raw, reset=first, name=name, min_samples=0)

    def _fit_stream(self, source: Any) -> None:
        """fit on a chunk source: a survey pass, then one pass per Lloyd iteration."""
        k = check_positive_int(self.n_clusters, name="n_clusters")
        check_positive_int(self.max_iter, name="max_iter")
        n_init = check_positive_int(self.n_init, name="n_init")
        if isinstance(self.init, str):
            self._initial_centers_array(torch.empty(0, 1), k)  # a bad name fails before any pass
        chunks = ChunkSource(source, estimator="KMeans")
        seed = shared_seed(self.random_state)
        sample_rows = 0 if not isinstance(self.init, str) else max(INIT_SAMPLE_ROWS, k)
        found = survey(
            chunks, self._check_chunk, moments="diagonal", sample_rows=sample_rows, seed=seed
        )
        n = found.n_samples
        if k > n:
            raise ValueError(
                f"n_clusters={k} is larger than n_samples={n} (over all chunks); use at most "
                f"{n} clusters or give more data."
            )
        like = torch.empty(0, found.n_features, dtype=found.kind.dtype, device=found.kind.device)
        init = self._initial_centers_array(like, k)
        if init is not None:
            n_init = 1
        _, _, scatter = found.moments.reduced()
        tol = float((scatter / n).mean()) * self.tol
        best = None
        for run in range(n_init):
            generator = torch.Generator().manual_seed(seed + run)
            if init is None:
                sample = found.sample
                centers = self._seed_centers(sample, k, generator, (sample * sample).sum(1))
            else:
                centers = init
            result = self._lloyd_stream(chunks, distributed.broadcast(centers.clone()), tol, found)
            if best is None or result[1] < best[1]:
                best = result
        self._store(best, found.kind)

    def _lloyd_stream(self, chunks, centers, tol, found):
        """Lloyd iterations over the chunks; returns what ``_lloyd`` returns.

        The loop of ``_lloyd`` (:meth:`_iterate`: same stopping rules, same handling
        of empty clusters), with the per-cluster sums recomputed on every pass
        instead of updated for the moved points.
        """

        def step(centers):
            labels, inertia, sums, counts, far = self._pass(chunks, centers, found, sums=True)
            _fill_empty_from_candidates(far, sums, counts)
            return labels, inertia, (sums / counts.clamp_min(1)[:, None]).to(centers.dtype)

        def unchanged(labels, labels_old):
            changed = torch.tensor([float((labels != labels_old).sum())], dtype=torch.float64)
            return float(distributed.all_reduce_sum(changed)) == 0

        labels, inertia, centers, iteration, history, strict = self._iterate(
            centers, step, unchanged, tol
        )
        if not strict:
            labels, inertia, *_ = self._pass(chunks, centers, found, sums=False)
        return labels, inertia, centers, iteration, history

    def _pass(self, chunks, centers, found, *, sums: bool):
        """One assignment pass: labels (n_local,), inertia, and (summed over the ranks)
        cluster sums (k, d) and counts (k,) in float64 with the k farthest points. With
        ``sums`` the inertia comes from the sums (:func:`_inertia_from_sums`), else from
        the distances."""
        k, d = centers.shape
        labels_all = torch.empty(found.n_local, dtype=torch.int64, device=centers.device)
        done = 0
        totals = torch.zeros(k * d + k + 2, dtype=torch.float64, device=centers.device)
        S, counts = totals[: k * d].view(k, d), totals[k * d : k * d + k]
        inertia, total_sq = totals[-2:-1], totals[-1:]
        far = torch.empty(0, d + 2, dtype=torch.float64, device=centers.device)

        def step(X: torch.Tensor) -> None:
            nonlocal far, done
            x_sq = (X * X).sum(1)
            labels, dists = assign(X, centers, x_sq)
            labels_all[done : done + X.shape[0]] = labels[: max(0, found.n_local - done)]
            done += X.shape[0]
            inertia.add_(dists.sum(dtype=torch.float64))
            total_sq.add_(x_sq.sum(dtype=torch.float64))
            if sums:
                S.index_add_(0, labels, X.double())
                counts.add_(torch.bincount(labels, minlength=k).double())
                top = dists.topk(min(k, X.shape[0])).indices
                rows = torch.cat([dists[top, None], labels[top, None], X[top]], 1).double()
                far = torch.cat([far, rows])
                far = far[far[:, 0].topk(min(k, far.shape[0])).indices]

        read_pass(chunks, self._check_chunk, found, step)
        distributed.all_reduce_sum(totals)
        labels = labels_all
        if not sums:
            return labels, float(inertia), S, counts, far
        if bool((counts == 0).any()):
            far = gather_rows(far)
            far = far[far[:, 0].topk(min(k, far.shape[0])).indices]
        # the inertia as the in-memory fit computes it, from the sums (more accurate)
        return labels, _inertia_from_sums(float(total_sq), centers, S, counts), S, counts, far

    def _initial_centers_array(self, X: torch.Tensor, k: int) -> torch.Tensor | None:
        if isinstance(self.init, str):
            if self.init not in ("k-means++", "random"):
                raise ValueError(
                    f"init={self.init!r} is not understood; use 'k-means++', 'random' or an "
                    "array of initial centres."
                )
            return None
        centers, _ = check_array(self.init, name="init", dtype=X.dtype)
        if tuple(centers.shape) != (k, X.shape[1]):
            raise ValueError(
                f"init has shape {tuple(centers.shape)}, but n_clusters={k} and the data have "
                f"{X.shape[1]} features; pass an array of shape ({k}, {X.shape[1]})."
            )
        return centers.to(X.device)

    def _seed_centers(self, X, k, generator, x_sq) -> torch.Tensor:
        if self.init == "random":
            chosen = torch.randperm(X.shape[0], generator=generator)[:k].to(X.device)
            return X[chosen]
        return kmeans_plusplus(X, k, generator, x_sq)

    def _lloyd(self, X, centers, x_sq, tol):
        """Lloyd iterations from ``centers``: returns labels, inertia, centres, n_iter, history.

        The iterates are Lloyd's, but an iteration computes distances only for the points
        whose cluster may have changed (Hamerly's bounds): each point keeps an upper bound
        on the distance to its own centre and a lower bound on the distance to every other
        centre; when the centres move by ``delta`` the first grows by its centre's move and
        the second shrinks by the largest other move, and a point whose bounds stay apart
        (by more than the rounding of the distances) keeps its cluster. Late iterations,
        where few points move, so cost a small share of a full pass.

        The per-cluster sums and counts are kept in float64 and updated only for the
        points whose cluster changed; the inertia of each step comes from them
        (``sum |x|^2 - 2 sum_j c_j . S_j + sum_j n_j |c_j|^2``), exact without the
        distances of the points that were skipped.
        """
        k = centers.shape[0]
        total_sq = float(x_sq.sum(dtype=torch.float64))
        rounding = _rounding(X)
        kept = {}  # sums (k, d), counts (k,), members (n,), bounds, the centres they refer to

        def bounds(d_own, d_other, x_sq, centers):
            """Distance bounds from computed squared distances, widened by their rounding
            error E: |sqrt(a) - sqrt(b)| <= min(sqrt(E), E / sqrt(b)) when |a - b| <= E."""
            error = rounding * (x_sq + float((centers * centers).sum(1).max()))
            own, other = d_own.sqrt(), d_other.sqrt()
            widen = lambda d: torch.minimum(error.sqrt(), error / d)  # noqa: E731
            return own + widen(own), other - widen(other)

        def full(centers):
            members, d_own, d_other = nearest_two(X, centers, x_sq)
            kept["members"] = members
            kept["upper"], kept["lower"] = bounds(d_own, d_other, x_sq, centers)
            return d_own

        def bounded(centers):
            moved = (centers - kept["centers"]).double().pow(2).sum(1).sqrt().to(X.dtype)  # (k,)
            members, upper, lower = kept["members"], kept["upper"], kept["lower"]
            upper += moved[members]
            if k > 1:
                top2 = torch.topk(moved, 2).values
                lower -= torch.where(moved[members] == top2[0], top2[1], top2[0])
            rows = torch.nonzero(upper >= lower).flatten()
            if rows.numel():
                labels, d_own, d_other = nearest_two(X, centers, x_sq, rows=rows)
                members = members.clone()
                members[rows] = labels
                upper[rows], lower[rows] = bounds(d_own, d_other, x_sq[rows], centers)
            return members

        def step(centers):
            if not kept:
                dists = full(centers)
                kept["sums"], kept["counts"] = _cluster_sums(X, kept["members"], k)
                kept["assigned"] = kept["members"].clone()
            else:
                kept["members"] = bounded(centers)
                dists = None
            _move_points(X, kept["assigned"], kept["members"], kept["sums"], kept["counts"])
            sums, counts = kept["sums"], kept["counts"]
            inertia = _inertia_from_sums(total_sq, centers, sums, counts)
            labels = kept["members"].clone()
            if bool((counts == 0).any()):  # rare: needs every distance, and fresh bounds
                dists = full(centers) if dists is None else dists
                _fill_empty_clusters(X, kept["assigned"], dists, sums, counts)
                kept["members"] = kept["assigned"].clone()
                kept["upper"].zero_()  # the next step recomputes every point
                kept["lower"].zero_()
            kept["centers"] = centers
            new_centers = (sums / counts.clamp_min(1)[:, None]).to(X.dtype)
            return labels, inertia, new_centers

        labels, inertia, centers, iteration, history, strict = self._iterate(
            centers, step, torch.equal, tol
        )
        if not strict:
            labels, dists = assign(X, centers, x_sq)
            inertia = float(dists.sum(dtype=torch.float64))
        return labels, inertia, centers, iteration, history

    def _iterate(self, centers, step, unchanged, tol):
        """The Lloyd loop of both fits: ``step(centers)`` assigns every point and returns
        (labels, inertia, new centres); the loop stops when the labels repeat (``strict``:
        the labels are those of the returned centres) or the centres move less than
        ``tol``, and warns after ``max_iter`` iterations. Returns labels, inertia,
        centres, n_iter, history and ``strict``."""
        labels_old = None
        history = []
        strict = False
        for iteration in range(1, self.max_iter + 1):  # noqa: B007 - returned below
            labels, inertia, new_centers = step(centers)
            history.append(inertia)
            shift = float((new_centers - centers).pow(2).sum())
            centers = new_centers
            if labels_old is not None and unchanged(labels, labels_old):
                strict = True
                break
            if shift <= tol:
                break
            labels_old = labels
        else:
            warnings.warn(
                f"KMeans stopped after max_iter={self.max_iter} iterations without converging; "
                "raise max_iter or tol.",
                ConvergenceWarning,
                stacklevel=5,
            )
        return labels, inertia, centers, iteration, history, strict

    # ---------------------------------------------------------------- use
    def _checked(self, X: Any, method: str):
        check_is_fitted(self, "cluster_centers_", method=method)
        X, kind = validate_data(self, X, reset=False, dtype=self._centers.dtype)
        return X.to(self._centers.device), kind

    def predict(self, X: Any) -> Any:
        """Index of the closest centre for each row of X, shape (n,)."""
        X, kind = self._checked(X, "predict")
        labels, _ = assign(X, self._centers, (X * X).sum(1))
        return to_input_kind(labels, kind)

    def transform(self, X: Any) -> Any:
        """Euclidean distance of each row of X to each centre, (n, n_clusters)."""
        X, kind = self._checked(X, "transform")
        return to_input_kind(squared_distances(X, self._centers).sqrt(), kind)

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the inertia of X with respect to the fitted centres (higher is better).

        ``y`` is ignored; it is there for scikit-learn's ``Pipeline.score(X, y)``.
        """
        X, _ = self._checked(X, "score")
        _, dists = assign(X, self._centers, (X * X).sum(1))
        return -float(dists.sum(dtype=torch.float64))
