"""The EM loop shared by the mixture models (Gaussian, Bernoulli).

A subclass supplies the model: ``_initialize(X, resp, generator)``,
``_log_prob_components(X) -> (n, K)`` (log p(x | z = k)), ``_m_step(X, resp)``,
for streaming fits ``_statistics(X, resp)`` (the M-step's sums over the rows, a
list of tensors) and ``_m_step_statistics(sums)``,
``_n_parameters()``, ``_get_parameters()`` / ``_set_parameters(params)`` and
``sample``. This class owns validation, restarts, convergence, the history of
the log-likelihood and the scikit-learn-style public methods.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch

import companion.distributed as distributed
from companion._validation import (
    check_is_fitted,
    check_positive_int,
    resolve_dtype,
    to_input_kind,
    validate_data,
)
from companion.classical._base import ParamsMixin
from companion.classical._stream import (
    INIT_SAMPLE_ROWS,
    ChunkSource,
    is_chunk_source,
    read_pass,
    shared_seed,
    survey,
)
from companion.classical.cluster import ConvergenceWarning, KMeans
from companion.runtime import resolve_seed


class EMMixture(ParamsMixin):
    """Base class: EM for a mixture of K components with weights ``weights_``."""

    estimator_type = "density_estimator"

    _fitted_attribute = "weights_"

    def _check_hyperparameters(self) -> None:
        check_positive_int(self.n_components, name="n_components")
        check_positive_int(self.max_iter, name="max_iter")
        check_positive_int(self.n_init, name="n_init")
        if self.init not in ("kmeans", "random"):
            raise ValueError(f"init={self.init!r} is not understood; use 'kmeans' or 'random'.")
        if not self.tol >= 0:
            raise ValueError(f"tol={self.tol} must be non-negative.")

    def _validate(self, X: Any, *, fitting: bool):
        """X as a tensor in the fitted dtype; ``validate_data`` with ``reset=fitting``."""
        dtype = resolve_dtype(self.dtype) if fitting else self._weights.dtype
        X, kind = validate_data(self, X, reset=fitting, dtype=dtype)
        if fitting and X.shape[0] < 2:
            raise ValueError(
                f"X has n_samples={X.shape[0]}, but EM needs at least 2 samples; give more data."
            )
        return self._check_values(X, "X", fitting=fitting), kind

    def _check_values(self, X: torch.Tensor, name: str, *, fitting: bool) -> torch.Tensor:
        """A subclass's checks of the entries of a validated X (or chunk ``name``)."""
        return X

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None) -> EMMixture:
        """Fit by EM (keeping the best of ``n_init`` starts); returns self (``y`` is ignored).

        X may also be a re-iterable chunk source (a list of (m, n_features)
        chunks, a DataLoader, or a function returning a fresh iterator of chunks;
        see ``companion.classical._stream``). Each EM iteration is then one pass
        over the chunks: the E-step of every chunk is reduced at once to the
        M-step's sums (responsibility-weighted counts and moments, in float64).
        The start is made on a reservoir sample of at most ``INIT_SAMPLE_ROWS``
        rows drawn in a first pass (the data themselves when there are no more),
        so with the same start the result equals the in-memory fit's. Under
        ``torch.distributed`` each rank passes its own shard and the sums are
        added over the ranks, so every rank ends with the same model.
        """
        if is_chunk_source(X):
            self._fit_stream(X)
        else:
            self._fit(X)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> Any:
        """Fit, then return the most likely component of each row of X."""
        if is_chunk_source(X):
            raise TypeError(
                "fit_predict returns a result for every row, so it needs an in-memory array, "
                "not a chunk source; call fit(chunks) and then predict each chunk."
            )
        X_t, kind = self._fit(X)
        return to_input_kind(self._log_resp(X_t)[1].argmax(dim=1), kind)

    def _fit(self, X: Any):
        self._check_hyperparameters()
        X, kind = self._validate(X, fitting=True)
        if X.shape[0] < self.n_components:
            raise ValueError(
                f"n_components={self.n_components} is larger than n_samples={X.shape[0]}; "
                f"use at most {X.shape[0]} components or give more data."
            )
        self._kind = kind
        self._restarts(resolve_seed(self.random_state), X, lambda: self._em_step(X))
        return X, kind

    def _restarts(self, seed: int, X: torch.Tensor, step: Callable[[], float]) -> None:
        """EM from ``n_init`` starts made on X (the data, or a sample of a stream), each
        iterated by ``step``; keeps the best and publishes it."""
        best = None
        for run in range(self.n_init):
            generator = torch.Generator().manual_seed(seed + run)
            self._initialize(X, self._initial_resp(X, generator), generator)
            history, converged = self._em(step)
            if best is None or history[-1] > best[0][-1]:
                best = (history, converged, self._get_parameters(), len(history))
        history, converged, params, n_iter = best
        self._set_parameters(params)
        if not converged:
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={self.max_iter} "
                f"iterations (tol={self.tol}); raise max_iter or tol, or check the data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.converged_ = converged
        self.n_iter_ = n_iter
        self.lower_bound_ = history[-1]
        self.lower_bound_history_ = history
        self._publish()

    # ------------------------------------------------------------ streaming
    def _check_chunk(self, raw: Any, name: str, first: bool):
        dtype = resolve_dtype(self.dtype) if first else self._stream_dtype
        X, kind = validate_data(self, raw, reset=first, dtype=dtype, name=name, min_samples=0)
        if first:
            self._stream_dtype = X.dtype
        return self._check_values(X, name, fitting=True), kind

    def _fit_stream(self, source: Any) -> None:
        """fit on a chunk source: a survey pass (checks and a sample), then one pass per
        EM iteration."""
        self._check_hyperparameters()
        chunks = ChunkSource(source, estimator=type(self).__name__)
        seed = shared_seed(self.random_state)
        rows = max(INIT_SAMPLE_ROWS, self.n_components) if self._needs_sample() else 0
        found = survey(chunks, self._check_chunk, sample_rows=rows, seed=seed)
        n = found.n_samples
        if n < max(2, self.n_components):
            raise ValueError(
                f"X has n_samples={n} over all its chunks, but EM with n_components="
                f"{self.n_components} needs at least {max(2, self.n_components)}; give more data."
            )
        self._kind = found.kind
        sample = found.sample
        if sample is None:
            sample = torch.empty(0, found.n_features, dtype=found.kind.dtype)
            sample = sample.to(found.kind.device)
        self._restarts(seed, sample, lambda: self._em_pass(chunks, found))

    def _needs_sample(self) -> bool:
        """Whether the start needs data (not when every initial parameter is given)."""
        return True

    def _em_pass(self, chunks, found) -> float:
        """One EM iteration over the chunks; returns the mean log-likelihood before it."""
        statistics: list[torch.Tensor] = []
        log_likelihood = torch.zeros(1, dtype=torch.float64, device=found.kind.device)

        def step(X: torch.Tensor) -> None:
            weighted = self._log_prob_components(X) + torch.log(self._weights)
            log_norm = torch.logsumexp(weighted, dim=1)
            log_likelihood.add_(log_norm.sum(dtype=torch.float64))
            resp = (weighted - log_norm[:, None]).exp()
            parts = self._statistics(X, resp)
            if not statistics:
                statistics.extend(part.to(torch.float64) for part in parts)
                return
            for total, part in zip(statistics, parts, strict=True):
                total.add_(part)

        read_pass(chunks, self._check_chunk, found, step)
        sizes = [part.numel() for part in statistics]
        flat = torch.cat([log_likelihood, *(part.flatten() for part in statistics)])
        distributed.all_reduce_sum(flat)
        parts = flat[1:].split(sizes)
        sums = [part.view_as(like) for part, like in zip(parts, statistics, strict=True)]
        self._m_step_statistics(sums, found.kind.dtype)
        return float(flat[0]) / found.n_samples

    def _initial_resp(self, X: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, K = X.shape[0], self.n_components
        if self.init == "kmeans":
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
            labels = KMeans(K, random_state=seed).fit(X).labels_
            resp = torch.zeros(n, K, dtype=X.dtype, device=X.device)
            resp[torch.arange(n, device=X.device), labels] = 1
            return resp
        resp = torch.rand(n, K, generator=generator, dtype=X.dtype).to(X.device)
        return resp / resp.sum(1, keepdim=True)

    def _em(self, step: Callable[[], float]) -> tuple[list[float], bool]:
        """EM iterations: returns the mean log-likelihood before each M-step, and convergence.

        As in scikit-learn, the value recorded at iteration t is the average
        log-likelihood of the parameters entering that iteration; EM's
        guarantee is that this sequence never decreases.
        """
        history: list[float] = []
        for _ in range(self.max_iter):
            history.append(step())
            if len(history) > 1 and abs(history[-1] - history[-2]) < self.tol:
                return history, True
        return history, False

    def _em_step(self, X: torch.Tensor) -> float:
        """One E-step and M-step; returns the mean log-likelihood before the update."""
        mean_log_likelihood, log_resp = self._log_resp(X)
        self._m_step(X, log_resp.exp())
        return mean_log_likelihood

    def _log_resp(self, X: torch.Tensor) -> tuple[float, torch.Tensor]:
        """E-step: mean log-likelihood and log responsibilities (n, K)."""
        weighted = self._log_prob_components(X) + torch.log(self._weights)
        log_norm = torch.logsumexp(weighted, dim=1)
        return float(log_norm.mean()), weighted - log_norm[:, None]

    # ------------------------------------------------------------------ use
    def _checked(self, X: Any, method: str):
        check_is_fitted(self, self._fitted_attribute, method=method)
        X, kind = self._validate(X, fitting=False)
        return X.to(self._weights.device), kind

    def score_samples(self, X: Any) -> Any:
        """Log-likelihood log p(x) of each row of X, shape (n,), in nats."""
        X, kind = self._checked(X, "score_samples")
        weighted = self._log_prob_components(X) + torch.log(self._weights)
        return to_input_kind(torch.logsumexp(weighted, dim=1), kind)

    def score(self, X: Any, y: Any = None) -> float:
        """Average log-likelihood of the rows of X (nats); ``y`` is ignored."""
        X, _ = self._checked(X, "score")
        return self._log_resp(X)[0]

    def predict_proba(self, X: Any) -> Any:
        """Responsibilities p(z = k | x), shape (n, n_components); rows sum to 1."""
        X, kind = self._checked(X, "predict_proba")
        return to_input_kind(self._log_resp(X)[1].exp(), kind)

    def predict(self, X: Any) -> Any:
        """Most likely component of each row of X, shape (n,)."""
        X, kind = self._checked(X, "predict")
        return to_input_kind(self._log_resp(X)[1].argmax(dim=1), kind)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on X (lower is better)."""
        X, _ = self._checked(X, "bic")
        n = X.shape[0]
        return -2 * self._log_resp(X)[0] * n + self._n_parameters() * math.log(n)

    def aic(self, X: Any) -> float:
        """Akaike information criterion on X (lower is better)."""
        X, _ = self._checked(X, "aic")
        return -2 * self._log_resp(X)[0] * X.shape[0] + 2 * self._n_parameters()

    def _sample_components(self, n_samples: int, generator: torch.Generator | None):
        check_is_fitted(self, self._fitted_attribute, method="sample")
        check_positive_int(n_samples, name="n_samples")
        weights = self._weights.double().cpu()
        return torch.multinomial(weights, n_samples, replacement=True, generator=generator)
