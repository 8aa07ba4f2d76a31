"""Principal component analysis in PyTorch, shaped like scikit-learn's ``PCA``."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from companion._validation import (
    InputKind,
    check_array,
    check_is_fitted,
    check_n_features,
    to_input_kind,
    validate_data,
)
from companion.classical._base import ParamsMixin
from companion.classical._stream import ChunkSource, Moments, agree, is_chunk_source, survey
from companion.classical.linalg import column_mean, flip_signs, randomized_svd
from companion.runtime import resolve_seed

SOLVERS = ("auto", "covariance_eigh", "full", "randomized")
FITTED = ("components_", "explained_variance_", "mean_", "noise_variance_")


class PCA(ParamsMixin):
    """Principal component analysis.

    Parameters
    ----------
    n_components : int, float in (0, 1), or None
        Number of components to keep; a float keeps the fewest components
        whose explained variance ratio adds up to more than it; ``None`` keeps
        ``min(n_samples, n_features)``.
    whiten : bool
        Scale the codes to unit variance.
    solver : {"auto", "covariance_eigh", "full", "randomized"}
        ``covariance_eigh`` forms the centred d×d Gram matrix and
        eigendecomposes it in float64 (fast when n_samples ≫ n_features);
        ``full`` takes the exact SVD of the centred data; ``randomized`` a
        randomized SVD (few components of a large matrix). ``auto`` picks as
        scikit-learn does.
    random_state : int or None
        Seed of the randomized solver.

    Fitted attributes (in the kind, dtype and device of the data given to fit)
    ------------------------------------------------------------------------
    components_ : (k, d) orthonormal rows, largest-|loading| entry positive
    explained_variance_ : (k,) variances along the components (divided by n - 1)
    explained_variance_ratio_ : (k,)
    singular_values_ : (k,) singular values of the centred data
    mean_ : (d,)
    noise_variance_ : float, mean variance of the discarded directions
        (the probabilistic PCA noise)
    n_components_, n_features_in_, n_samples_ : int
    feature_names_in_ : (d,) object array, the column names of a DataFrame given to fit
    solver_ : str, the solver used

    Any array-like is accepted (NumPy arrays, lists, DataFrames; results are
    NumPy arrays, as in scikit-learn); a torch tensor gives tensors on its
    device.

    scikit-learn's ``check_estimator`` passes every check but one:
    ``check_array_api_input`` fits ``PCA()`` on data of rank 8 in 10 features
    and keeps all 10 components, so the probabilistic PCA covariance that
    ``score_samples`` needs is singular, and it raises a ValueError saying so
    (scikit-learn's PCA returns a meaningless number there). The list is
    pinned in ``tests/test_sklearn_checks.py``.
    """

    def __init__(
        self,
        n_components: int | float | None = None,
        *,
        whiten: bool = False,
        solver: str = "auto",
        random_state: int | None = None,
        n_oversamples: int = 10,
        n_iter: int = 4,
    ):
        self.n_components = n_components
        self.whiten = whiten
        self.solver = solver
        self.random_state = random_state
        self.n_oversamples = n_oversamples
        self.n_iter = n_iter

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None) -> PCA:
        """Fit the model to X (n_samples, n_features); returns self (``y`` is ignored).

        X may also be a chunk source (a list of (m, n_features) chunks, a
        DataLoader, a function returning an iterator of chunks, or a one-shot
        iterator: see ``companion.classical._stream``): the covariance solver then
        reads it once, accumulating the mean and scatter matrix in float64, and
        holds one chunk at a time. Under ``torch.distributed`` each rank passes
        its own shard and every rank ends with the model of all the data.
        """
        if is_chunk_source(X):
            self._fit_stream(X)
        else:
            self._fit(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """Fit, then return the codes of X, shape (n_samples, n_components_)."""
        _refuse_chunks(X, "fit_transform")
        Xt, kind = self._fit(X)
        return to_input_kind(self._encode(Xt), kind)

    def partial_fit(self, X: Any, y: Any = None) -> PCA:
        """Add the rows of X (m, n_features) to the data seen so far and refit; returns self.

        The covariance solver's statistics (row count, mean, scatter matrix) are
        accumulated in float64, chunk by chunk, so the result equals ``fit`` on
        all the rows seen, to float tolerance, whatever the chunking. Each call
        ends with a d×d eigendecomposition: use chunks of many rows. The fitted
        attributes appear once at least ``max(2, n_components)`` rows were seen;
        a chunk of 0 rows is accepted (a rank with nothing to add).
        Under ``torch.distributed`` every call is a collective: every rank calls
        ``partial_fit`` equally often, each with its own chunk, and the model is
        that of the chunks of every rank.
        """
        first = getattr(self, "_moments", None) is None
        if first and hasattr(self, "components_"):
            warnings.warn(
                "PCA was fitted by fit(X) on an in-memory array, whose statistics are not "
                "kept, so partial_fit starts over from this chunk; to add chunks to earlier "
                "data, call partial_fit on every chunk from the start (or fit(chunks)).",
                UserWarning,
                stacklevel=2,
            )
        error = None
        try:
            self._check_streaming_solver()
            X, kind = validate_data(self, X, reset=first, min_samples=0)
            if first:
                self._moments = Moments(X.shape[1], X.device)
                self._stream_kind = kind
            self._moments.add(X.to(dtype=self._stream_kind.dtype, device=self._stream_kind.device))
        except Exception as err:  # under torch.distributed every rank must hear of it
            error = err
        agree(error, "PCA.partial_fit")
        n, mean, scatter = self._moments.reduced()
        self._fit_moments(n, mean, scatter, self._stream_kind, final=False)
        return self

    def _check_streaming_solver(self) -> None:
        if self.solver not in ("auto", "covariance_eigh"):
            raise ValueError(
                f"solver={self.solver!r} needs all the data in memory; fitting from chunks "
                "uses the covariance solver: pass solver='covariance_eigh' (or 'auto'), or "
                "an array."
            )

    def _fit_stream(self, source: Any) -> None:
        """fit on a chunk source: one pass of float64 moments, then the eigendecomposition."""
        self._check_streaming_solver()
        chunks = ChunkSource(source, estimator="PCA", passes="one")
        for name in ("_moments", "components_"):
            self.__dict__.pop(name, None)
        found = survey(
            chunks,
            lambda raw, name, first: validate_data(
                self, raw, reset=first, name=name, min_samples=0
            ),
            moments="full",
        )
        self._moments, self._stream_kind = found.moments, found.kind
        n, mean, scatter = found.moments.reduced()
        self._fit_moments(n, mean, scatter, found.kind, final=True)

    def _fit_moments(
        self, n: int, mean: torch.Tensor, scatter: torch.Tensor, kind: InputKind, *, final: bool
    ) -> None:
        """The covariance solver on float64 statistics: n rows, mean (d,), scatter (d, d).

        The same steps as ``_fit_covariance``: eigendecomposition in float64, signs
        fixed by the largest loading, components cast to the data's dtype, and the
        variances recomputed as Rayleigh quotients cᵀ S c / (n - 1) of those cast
        components (here on the float64 scatter matrix, which the stream
        accumulated exactly, rather than on a second pass over the data).
        """
        d = mean.shape[0]
        k_max = min(n, d)
        too_few = n < 2 or (_is_int(self.n_components) and n < self.n_components)
        if too_few and not final:
            return  # partial_fit: wait for more rows
        if n < 2:
            raise ValueError(
                f"X has n_samples={n} over all its chunks, but at least 2 are needed; "
                "give more data."
            )
        if _is_int(self.n_components):
            self._n_components_int(k_max)  # a clear error for too many components
        total = torch.trace(scatter) / (n - 1)
        eigvals, eigvecs = torch.linalg.eigh(scatter)  # ascending
        top = eigvals.flip(0)[:k_max].cpu()
        k = self._n_components_from_variance((top / (n - 1)).clamp_min(0), total.cpu(), k_max)
        V = eigvecs.T.flip(0)[:k]  # (k, d), largest first
        components = flip_signs(V).to(kind.dtype)
        C = components.to(torch.float64)
        variances = ((C @ scatter) * C).sum(1) / (n - 1)
        self._set_fitted(
            "covariance_eigh",
            n,
            k_max,
            mean.to(kind.dtype),
            components,
            variances,
            total.cpu(),
            kind,
        )

    def _fit(self, X: Any) -> tuple[torch.Tensor, InputKind]:
        self.__dict__.pop("_moments", None)
        X, kind = validate_data(self, X, reset=True, min_samples=2)
        n, d = X.shape
        k_max = min(n, d)
        solver = self._choose_solver(n, d, k_max)
        if solver == "covariance_eigh":
            mean, components, variances, total = self._fit_covariance(X, k_max)
        else:
            mean = column_mean(X)
            Xc = X - mean
            total = Xc.to(torch.float64).pow(2).sum() / (n - 1)
            if solver == "full":
                _, S, components = torch.linalg.svd(Xc, full_matrices=False)
            else:
                generator = torch.Generator().manual_seed(resolve_seed(self.random_state))
                _, _, basis = randomized_svd(
                    Xc,
                    self._n_components_int(k_max),
                    n_oversamples=self.n_oversamples,
                    n_iter=self.n_iter,
                    generator=generator,
                )
                # Rayleigh-Ritz on the found subspace: rotate the basis so that the
                # codes are exactly uncorrelated (whitening then gives the identity).
                codes = (Xc @ basis.T).to(torch.float64)  # (n, k)
                ritz_values, ritz_vectors = torch.linalg.eigh(codes.T @ codes)
                S = ritz_values.flip(0).clamp_min(0).sqrt()
                components = (ritz_vectors.flip(1).T.to(basis.dtype)) @ basis
            variances = S.to(torch.float64) ** 2 / (n - 1)
            k = self._n_components_from_variance(variances, total, k_max)
            components = flip_signs(components[:k].to(X.dtype))
        self._set_fitted(solver, n, k_max, mean, components, variances, total, kind)
        return X, kind

    def _set_fitted(self, solver, n, k_max, mean, components, variances, total, kind) -> None:
        """Store the fitted attributes; tensors in the data's dtype on its device."""
        k = components.shape[0]
        variances = variances[:k].to(components.device)
        total = total.to(components.device)
        dropped = (total - variances.sum()).clamp_min(0)
        noise = dropped / (k_max - k) if k < k_max else torch.zeros((), dtype=torch.float64)
        as_x = {"dtype": components.dtype, "device": components.device}
        self.solver_ = solver
        self.n_samples_, self.n_components_ = n, k
        self.mean_ = to_input_kind(mean, kind)
        self.components_ = to_input_kind(components, kind)
        self.explained_variance_ = to_input_kind(variances.to(**as_x), kind)
        self.explained_variance_ratio_ = to_input_kind((variances / total).to(**as_x), kind)
        self.singular_values_ = to_input_kind((variances * (n - 1)).sqrt().to(**as_x), kind)
        self.noise_variance_ = float(noise)
        self._state = (mean, components, variances.to(**as_x))  # tensors on X's device
        self._kind = kind

    def _fit_covariance(self, X: torch.Tensor, k_max: int) -> tuple:
        """Eigendecomposition of the covariance, accurate in float32.

        The d×d Gram matrix is formed from the raw data and centred in float64
        (X'X - n m m'), which skips a copy of X; when the mean dominates the
        data's energy (float32 would lose digits to cancellation) the data are
        centred first instead. The variances are then recomputed as Rayleigh
        quotients of the centred projections, accumulated in float64: those
        are second-order accurate in the eigenvector error.

        On the CPU every step runs in NumPy: its matmul recognises ``A.T @ A``
        and calls BLAS ``syrk`` (half the work of a general product), and one
        thread pool for the whole solver avoids two pools fighting over cores.
        """
        n = X.shape[0]
        mean = column_mean(X)  # in torch: NumPy's float32 column sums drift
        on_cpu = _use_numpy(X)
        xp = np if on_cpu else torch
        A, m = (X.numpy(), mean.numpy()) if on_cpu else (X, mean)
        f64 = np.float64 if on_cpu else torch.float64
        raw = _as(A.T @ A, f64)
        m64 = _as(m, f64)
        cov = raw - n * xp.outer(m64, m64)
        centred_first = bool(xp.trace(raw) > 10 * xp.trace(cov))
        if centred_first:
            A = A - m
            cov = _as(A.T @ A, f64)
        total = float(xp.trace(cov)) / (n - 1)
        eigvals, eigvecs = xp.linalg.eigh(cov)  # ascending
        top = _flip(eigvals)[:k_max]
        top = torch.from_numpy(top.copy()) if on_cpu else top
        k = self._n_components_from_variance(
            (top / (n - 1)).clamp_min(0), torch.tensor(total, dtype=torch.float64), k_max
        )
        V = _flip(eigvecs.T)[:k]  # (k, d), largest first
        biggest = xp.abs(V).argmax(1)
        signs = xp.sign(V[xp.arange(k), biggest])
        signs[signs == 0] = 1
        components = _as(V * signs[:, None], A.dtype)  # (k, d)
        shift = 0 if centred_first else m @ components.T  # (k,): the mean's codes
        variances = 0
        for start in range(0, n, CODES_CHUNK):  # chunks stay in cache; no (n, k) float64 copy
            codes = _as(A[start : start + CODES_CHUNK] @ components.T - shift, f64)  # (rows, k)
            variances = variances + (codes * codes).sum(0)
        variances = variances / (n - 1)
        if on_cpu:
            components = torch.from_numpy(np.ascontiguousarray(components))
            variances = torch.from_numpy(variances)
        return mean, components, variances, torch.tensor(total, dtype=torch.float64)

    def _choose_solver(self, n: int, d: int, k_max: int) -> str:
        if self.solver not in SOLVERS:
            raise ValueError(f"solver={self.solver!r} is not one of {SOLVERS}.")
        if self.solver != "auto":
            if self.solver == "randomized" and not _is_int(self.n_components):
                raise ValueError(
                    f"solver='randomized' needs an integer n_components, got "
                    f"{self.n_components!r}; pass an int or use solver='full'."
                )
            return self.solver
        if _is_int(self.n_components):
            self._n_components_int(k_max)  # reject a bad value before any work
        if d <= 1000 and n >= 10 * d:
            return "covariance_eigh"
        if max(n, d) > 500 and _is_int(self.n_components) and self.n_components < 0.8 * k_max:
            return "randomized"
        return "full"

    def _n_components_int(self, k_max: int) -> int:
        k = self.n_components
        if k is None:
            return k_max
        if not _is_int(k) or k < 1:
            raise ValueError(
                f"n_components={k!r} must be a positive int, a float in (0, 1) or None."
            )
        if k > k_max:
            raise ValueError(
                f"n_components={k} must be at most min(n_samples, n_features)={k_max}; "
                f"use n_components<={k_max} or give more data."
            )
        return int(k)

    def _n_components_from_variance(
        self, variances: torch.Tensor, total: torch.Tensor, k_max: int
    ) -> int:
        k = self.n_components
        if isinstance(k, float) and not isinstance(k, bool):
            if not 0 < k < 1:
                raise ValueError(
                    f"n_components={k} as a float is the share of variance to keep and must "
                    "lie in (0, 1); pass an int for a number of components."
                )
            cumulative = torch.cumsum(variances / total, dim=0)
            return min(
                int(
                    torch.searchsorted(
                        cumulative, torch.tensor(k, dtype=cumulative.dtype), right=True
                    )
                )
                + 1,
                k_max,
            )
        return self._n_components_int(k_max)

    # ------------------------------------------------------------ transform
    def _checked(self, X: Any, method: str) -> tuple[torch.Tensor, InputKind]:
        check_is_fitted(self, list(FITTED), method=method)
        mean = self._state[0]
        X, kind = validate_data(self, X, reset=False, dtype=mean.dtype)
        return X.to(mean.device), kind

    def _encode(self, X: torch.Tensor) -> torch.Tensor:
        mean, components, variances = self._state
        Z = (X - mean) @ components.T
        if self.whiten:
            Z = Z / variances.sqrt().clamp_min(torch.finfo(Z.dtype).tiny)
        return Z

    def transform(self, X: Any) -> Any:
        """Codes of X: (n, d) -> (n, n_components_)."""
        X, kind = self._checked(X, "transform")
        return to_input_kind(self._encode(X), kind)

    def inverse_transform(self, Z: Any) -> Any:
        """Reconstructions from codes: (n, n_components_) -> (n, d)."""
        check_is_fitted(self, list(FITTED), method="inverse_transform")
        mean, components, variances = self._state
        Z, kind = check_array(Z, name="Z", dtype=mean.dtype)
        check_n_features(Z, self.n_components_, estimator=self, name="Z")
        Z = Z.to(mean.device)
        if self.whiten:
            Z = Z * variances.sqrt()
        return to_input_kind(Z @ components + mean, kind)

    # ------------------------------------------------- probabilistic PCA
    def _model_covariance(self) -> torch.Tensor:
        """The probabilistic-PCA covariance W Wᵀ + σ² I, (d, d) in float64."""
        _, components, variances = self._state
        W = components.to(torch.float64)
        extra = (variances.to(torch.float64) - self.noise_variance_).clamp_min(0)
        eye = torch.eye(self.n_features_in_, dtype=torch.float64, device=W.device)
        return (W.T * extra) @ W + self.noise_variance_ * eye

    def get_covariance(self) -> Any:
        """Model covariance of the data under probabilistic PCA, (d, d)."""
        check_is_fitted(self, list(FITTED), method="get_covariance")
        cov = self._model_covariance().to(self._state[0].dtype)
        return to_input_kind(cov, self._kind)

    def score_samples(self, X: Any) -> Any:
        """Log-likelihood of each sample under probabilistic PCA, shape (n,), in nats."""
        return self._score_samples(X, "score_samples")

    def _score_samples(self, X: Any, method: str) -> Any:
        X, kind = self._checked(X, method)
        chol, info = torch.linalg.cholesky_ex(self._model_covariance())
        if (self.noise_variance_ <= 0 and self.n_components_ < self.n_features_in_) or bool(info):
            raise ValueError(
                f"the probabilistic PCA covariance is singular (noise_variance_="
                f"{self.noise_variance_:.3g}, smallest kept variance "
                f"{float(self._state[2].min()):.3g}): the data have fewer directions of "
                "variance than the model; fit with fewer components than the data's rank "
                "to score samples."
            )
        diff = (X - self._state[0]).to(torch.float64)  # (n, d)
        solved = torch.linalg.solve_triangular(chol, diff.T, upper=False)  # (d, n)
        maha = solved.pow(2).sum(dim=0)
        logdet = 2 * torch.log(torch.diagonal(chol)).sum()
        d = self.n_features_in_
        logp = -0.5 * (d * math.log(2 * math.pi) + logdet + maha)
        return to_input_kind(logp.to(X.dtype), kind)

    def score(self, X: Any, y: Any = None) -> float:
        """Average log-likelihood of the samples in X (nats); ``y`` is ignored."""
        return float(torch.as_tensor(self._score_samples(X, "score")).mean())


# Rows of X projected at a time when the variances are refined: a few thousand rows
# keep the product's operands in cache.
CODES_CHUNK = 8192


def _use_numpy(X: torch.Tensor) -> bool:
    """Whether the covariance solver runs in NumPy (CPU tensors) or in torch (GPU)."""
    return X.device.type == "cpu"


def _as(array, dtype):
    """Cast a NumPy array or a tensor to ``dtype`` (np.float64 or torch.float64, ...)."""
    if isinstance(array, np.ndarray):
        return array.astype(dtype, copy=False)
    return array.to(dtype)


def _flip(array):
    """Reverse the first axis of a NumPy array or a tensor."""
    return array[::-1] if isinstance(array, np.ndarray) else array.flip(0)


def _refuse_chunks(X: Any, method: str) -> None:
    """``fit_transform`` and the like return one row per sample: they need an array."""
    if is_chunk_source(X):
        raise TypeError(
            f"{method} returns a result for every row, so it needs an in-memory array, not "
            f"a chunk source; call fit(chunks) and then transform each chunk."
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
