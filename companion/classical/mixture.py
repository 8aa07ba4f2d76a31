"""Gaussian mixture models fitted by EM, in PyTorch, shaped like scikit-learn's."""

from __future__ import annotations

from typing import Any

import torch

from companion._validation import to_input_kind
from companion.classical._em import EMMixture
from companion.classical._gaussian import (
    CHUNK,
    COVARIANCE_TYPES,
    estimate_parameters,
    log_prob,
    n_covariance_parameters,
    precision_cholesky,
    precision_cholesky_from_precisions,
)


class GaussianMixture(EMMixture):
    """A mixture of K Gaussians, fitted by expectation-maximisation in log space.

    Parameters
    ----------
    n_components : int
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        Added to the covariance diagonals so that they stay positive definite.
    tol : float
        Stop when the average log-likelihood rises by less than this.
    max_iter, n_init : int
    init : {"kmeans", "random"}
        How the first responsibilities are made (k-means labels, or random).
    weights_init, means_init, precisions_init : arrays, optional
        Starting parameters, as in scikit-learn (shapes as the fitted ones).
    random_state : int or None
    dtype : str, torch.dtype or None
        "float64" by default: log-densities in 50 dimensions need the digits.
        A name ("float32"), a torch or NumPy dtype; ``None`` keeps the float
        dtype of the data given to fit.

    Fitted attributes (kind and device of the data given to fit, in ``dtype``)
    -------------------------------------------------------------------------
    weights_ (K,), means_ (K, d), covariances_, precisions_,
    precisions_cholesky_ (shapes in ``companion.classical._gaussian``), converged_,
    n_iter_, lower_bound_ (average log-likelihood, nats), lower_bound_history_,
    n_features_in_, feature_names_in_ (for a DataFrame).

    Any array-like is accepted (NumPy arrays, lists, DataFrames; results are
    NumPy arrays, as in scikit-learn); a torch tensor gives tensors on its
    device.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        tol: float = 1e-3,
        max_iter: int = 100,
        init: str = "kmeans",
        means_init: Any = None,
        weights_init: Any = None,
        precisions_init: Any = None,
        n_init: int = 1,
        random_state: int | None = None,
        dtype: str | torch.dtype | None = "float64",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.tol = tol
        self.max_iter = max_iter
        self.init = init
        self.means_init = means_init
        self.weights_init = weights_init
        self.precisions_init = precisions_init
        self.n_init = n_init
        self.random_state = random_state
        self.dtype = dtype

    def _check_hyperparameters(self) -> None:
        super()._check_hyperparameters()
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type={self.covariance_type!r} is not one of {COVARIANCE_TYPES}."
            )
        if not self.reg_covar >= 0:
            raise ValueError(f"reg_covar={self.reg_covar} must be non-negative.")

    # ---------------------------------------------------------------- model
    def _initial_resp(self, X: torch.Tensor, generator: torch.Generator):
        given = (self.weights_init, self.means_init, self.precisions_init)
        if all(value is not None for value in given):
            return None  # every parameter is given: no k-means run needed
        return super()._initial_resp(X, generator)

    def _initialize(self, X: torch.Tensor, resp: torch.Tensor | None, generator) -> None:
        K, d = self.n_components, X.shape[1]
        weights = means = cov = None
        if resp is not None:
            nk, means, cov = estimate_parameters(X, resp, self.reg_covar, self.covariance_type)
            weights = nk / X.shape[0]
        if self.weights_init is not None:
            weights = self._given("weights_init", self.weights_init, (K,), X)
        if self.means_init is not None:
            means = self._given("means_init", self.means_init, (K, d), X)
        self._weights, self._means = weights, means
        if self.precisions_init is None:
            self._cov = cov
            self._prec_chol = precision_cholesky(cov, self.covariance_type)
        else:
            shape = {"full": (K, d, d), "tied": (d, d), "diag": (K, d), "spherical": (K,)}
            precisions = self._given(
                "precisions_init", self.precisions_init, shape[self.covariance_type], X
            )
            self._cov = None  # set by the first M-step (max_iter >= 1)
            self._prec_chol = precision_cholesky_from_precisions(precisions, self.covariance_type)

    def _given(self, name: str, value: Any, shape: tuple, X: torch.Tensor) -> torch.Tensor:
        tensor = torch.as_tensor(
            value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value,
            dtype=X.dtype,
        ).to(X.device)
        if tuple(tensor.shape) != shape:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)}, expected {shape} for "
                f"n_components={self.n_components}, covariance_type={self.covariance_type!r} "
                f"and {X.shape[1]} features."
            )
        return tensor

    def _log_prob_components(self, X: torch.Tensor) -> torch.Tensor:
        return log_prob(X, self._means, self._prec_chol, self.covariance_type)

    def _m_step(self, X: torch.Tensor, resp: torch.Tensor) -> None:
        nk, self._means, self._cov = estimate_parameters(
            X, resp, self.reg_covar, self.covariance_type
        )
        self._weights = nk / nk.sum()
        self._prec_chol = precision_cholesky(self._cov, self.covariance_type)

    def _needs_sample(self) -> bool:
        given = (self.weights_init, self.means_init, self.precisions_init)
        return not all(value is not None for value in given)

    def _statistics(self, X: torch.Tensor, resp: torch.Tensor) -> list[torch.Tensor]:
        """The M-step's sums over the rows, from which ``_m_step_statistics`` gets the
        parameters: Σ r (K,), Σ r x (K, d), and the second moments of the covariance
        type. For ``full`` those are taken about the means entering the iteration,
        Σ r (x - c)(x - c)ᵀ (K, d, d), so that nothing cancels."""
        sums = [resp.sum(0), resp.T @ X]
        if self.covariance_type == "full":
            K, d = resp.shape[1], X.shape[1]
            scatter = torch.zeros(K, d, d, dtype=X.dtype, device=X.device)
            root = resp.sqrt()
            for part, weights in zip(X.split(2 * CHUNK), root.split(2 * CHUNK), strict=True):
                weighted = (part[None] - self._means[:, None, :]) * weights.T[:, :, None]
                scatter.baddbmm_(weighted.transpose(1, 2), weighted)
            sums.append(scatter)
        elif self.covariance_type == "tied":
            sums.append(X.T @ X)
        else:
            sums.append(resp.T @ (X * X))
        return sums

    def _m_step_statistics(self, sums: list[torch.Tensor], dtype: torch.dtype) -> None:
        """``estimate_parameters`` from the sums (float64), parameters in ``dtype``."""
        counts, first, second = sums
        nk = counts + 10 * torch.finfo(dtype).eps  # (K,)
        means = first / nk[:, None]  # (K, d)
        if self.covariance_type == "full":
            # Σ r (x - μ)(x - μ)ᵀ from the sums about c: with δ = μ - c and s = Σ r (x - c),
            # it is S_c - δ sᵀ - s δᵀ + (Σ r) δ δᵀ
            shift = self._means.to(torch.float64)
            delta = means - shift
            about = first - counts[:, None] * shift
            outer = delta[:, :, None] * about[:, None, :]
            scatter = second - outer - outer.transpose(1, 2)
            scatter += counts[:, None, None] * delta[:, :, None] * delta[:, None, :]
            cov = scatter / nk[:, None, None]
            cov.diagonal(dim1=1, dim2=2).add_(self.reg_covar)
        elif self.covariance_type == "tied":
            cov = (second - (nk[:, None] * means).T @ means) / nk.sum()
            cov.diagonal().add_(self.reg_covar)
        else:
            diag = second / nk[:, None] - means * means + self.reg_covar
            cov = diag if self.covariance_type == "diag" else diag.mean(1)
        self._means, self._cov = means.to(dtype), cov.to(dtype)
        self._weights = (nk / nk.sum()).to(dtype)
        self._prec_chol = precision_cholesky(self._cov, self.covariance_type)

    def _n_parameters(self) -> int:
        K, d = self.n_components, self.n_features_in_
        return n_covariance_parameters(self.covariance_type, K, d) + K * d + K - 1

    def _get_parameters(self):
        return (self._weights, self._means, self._cov, self._prec_chol)

    def _set_parameters(self, params) -> None:
        self._weights, self._means, self._cov, self._prec_chol = params

    def _publish(self) -> None:
        """Expose the fitted parameters in the caller's kind (NumPy or tensors)."""
        P = self._prec_chol
        if self.covariance_type in ("full", "tied"):
            precisions = P @ P.transpose(-1, -2)
        else:
            precisions = P * P
        kind = self._kind
        self.weights_ = to_input_kind(self._weights, kind)
        self.means_ = to_input_kind(self._means, kind)
        self.covariances_ = to_input_kind(self._cov, kind)
        self.precisions_ = to_input_kind(precisions, kind)
        self.precisions_cholesky_ = to_input_kind(P, kind)

    # -------------------------------------------------------------- sampling
    def sample(self, n_samples: int = 1, *, seed: int | None = None):
        """Draw ``n_samples`` points: returns X (n, d) and their components (n,)."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        components = self._sample_components(n_samples, generator)
        noise = torch.randn(
            n_samples, self.n_features_in_, generator=generator, dtype=self._means.dtype
        )
        noise = noise.to(self._means.device)
        components = components.to(self._means.device)
        cov = self._cov
        if self.covariance_type == "full":
            chol = torch.linalg.cholesky(cov)[components]  # (n, d, d)
            X = self._means[components] + (chol @ noise[:, :, None])[:, :, 0]
        elif self.covariance_type == "tied":
            X = self._means[components] + noise @ torch.linalg.cholesky(cov).T
        elif self.covariance_type == "diag":
            X = self._means[components] + noise * cov[components].sqrt()
        else:
            X = self._means[components] + noise * cov[components].sqrt()[:, None]
        kind = self._kind
        return to_input_kind(X, kind), to_input_kind(components, kind)


def shared_sigma_em_step(
    X: torch.Tensor, means: torch.Tensor, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One EM step of an equal-weight spherical mixture whose components share a fixed σ.

    X (n, d), means (K, d) -> responsibilities (n, K) and the new means (K, d).
    As σ → 0 the responsibilities become one-hot at the nearest mean and the
    step becomes a step of Lloyd's k-means: k-means is hard-assignment EM.
    """
    d2 = torch.cdist(X, means).pow(2)  # (n, K)
    resp = torch.softmax(-d2 / (2 * sigma**2), dim=1)
    counts = resp.sum(0)
    new_means = (resp.T @ X) / counts.clamp_min(torch.finfo(X.dtype).tiny)[:, None]
    return resp, new_means
