"""Gaussian mixture parameters for the four covariance types, in closed form.

Shapes (K components, d features):

========== ======================= ===========================
type       covariances             precisions_cholesky
========== ======================= ===========================
full       (K, d, d)               (K, d, d) upper triangular
tied       (d, d)                  (d, d)
diag       (K, d)                  (K, d)
spherical  (K,)                    (K,)
========== ======================= ===========================
"""

from __future__ import annotations

import math

import torch

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def estimate_parameters(X: torch.Tensor, resp: torch.Tensor, reg_covar: float, kind: str):
    """M-step: weights (K,) (unnormalised counts), means (K, d), covariances from resp (n, K)."""
    nk = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps  # (K,)
    means = (resp.T @ X) / nk[:, None]  # (K, d)
    d = X.shape[1]
    if kind == "full":
        cov = torch.zeros(len(nk), d, d, dtype=X.dtype, device=X.device)
        root = resp.sqrt()
        for part, weights in zip(X.split(2 * CHUNK), root.split(2 * CHUNK), strict=True):
            # blocks of rows keep the weighted copies (K, m, d) in cache
            weighted = (part[None] - means[:, None, :]) * weights.T[:, :, None]
            cov.baddbmm_(weighted.transpose(1, 2), weighted)
        cov /= nk[:, None, None]
        cov.diagonal(dim1=1, dim2=2).add_(reg_covar)
    elif kind == "tied":
        cov = (X.T @ X - (nk[:, None] * means).T @ means) / nk.sum()
        cov.diagonal().add_(reg_covar)
    else:
        avg_x2 = (resp.T @ (X * X)) / nk[:, None]
        diag = avg_x2 - means * means + reg_covar  # E[x²] - μ², per component and feature
        cov = diag if kind == "diag" else diag.mean(1)
    return nk, means, cov


def precision_cholesky(cov: torch.Tensor, kind: str) -> torch.Tensor:
    """Cholesky factor of the precision (full/tied) or 1/σ (diag/spherical)."""
    message = (
        "the covariance of a component is singular or not positive definite (a "
        "component collapsed onto too few points, or the data have a constant "
        "feature); increase reg_covar, use fewer components, or scale the data."
    )
    if kind in ("full", "tied"):
        chol, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()):
            raise ValueError(f"Fitting failed: {message}")
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        eye = eye.expand_as(cov)
        return torch.linalg.solve_triangular(chol, eye, upper=False).transpose(-1, -2)
    if bool((cov <= 0).any()):
        raise ValueError(f"Fitting failed: {message}")
    return cov.rsqrt()


def precision_cholesky_from_precisions(precisions: torch.Tensor, kind: str) -> torch.Tensor:
    """The same factor from given precisions (as in ``precisions_init``)."""
    if kind in ("full", "tied"):
        # P = L Lᵀ with L lower; scikit-learn's factor U satisfies P = U Uᵀ with U upper:
        # flip both axes, factor, flip back.
        flipped = precisions.flip(-1, -2)
        chol, info = torch.linalg.cholesky_ex(flipped)
        if bool((info != 0).any()):
            raise ValueError("precisions_init is not positive definite; pass valid precisions.")
        return chol.flip(-1, -2)
    if bool((precisions <= 0).any()):
        raise ValueError("precisions_init must be positive.")
    return precisions.sqrt()


def log_prob(X: torch.Tensor, means: torch.Tensor, prec_chol: torch.Tensor, kind: str):
    """log N(x | μ_k, Σ_k) for every row and component, (n, K)."""
    n, d = X.shape
    K = means.shape[0]
    if kind == "full":
        log_det = torch.log(torch.diagonal(prec_chol, dim1=1, dim2=2)).sum(1)  # (K,)
        maha = torch.cat([_full_maha(part, means, prec_chol) for part in X.split(CHUNK)])
    elif kind == "tied":
        log_det = torch.log(torch.diagonal(prec_chol)).sum().expand(K)
        y = (X @ prec_chol)[:, None, :] - (means @ prec_chol)[None, :, :]  # (n, K, d)
        maha = (y * y).sum(2)
    elif kind == "diag":
        log_det = torch.log(prec_chol).sum(1)
        precisions = prec_chol * prec_chol  # (K, d)
        maha = (
            (means * means * precisions).sum(1)
            - 2 * X @ (means * precisions).T
            + (X * X) @ precisions.T
        )
    else:
        log_det = d * torch.log(prec_chol)
        precisions = prec_chol * prec_chol  # (K,)
        maha = (
            (means * means).sum(1) * precisions
            - 2 * (X @ means.T) * precisions
            + (X * X).sum(1)[:, None] * precisions
        )
    return -0.5 * (d * math.log(2 * math.pi) + maha) + log_det


CHUNK = 512  # rows per block: a block of (CHUNK, K*d) float64 stays in the CPU cache


def _full_maha(X: torch.Tensor, means: torch.Tensor, prec_chol: torch.Tensor) -> torch.Tensor:
    """Squared Mahalanobis distances (m, K) of a block of rows, with one matrix product.

    y_k = (x - μ_k) U_k for every k at once: X @ [U_1 ... U_K] minus the row of
    μ_k U_k, squared and summed per component.
    """
    K, d, _ = prec_chol.shape
    stacked = prec_chol.transpose(0, 1).reshape(d, K * d)  # [U_1 ... U_K], (d, K*d)
    shift = torch.einsum("kd,kde->ke", means, prec_chol).reshape(K * d)
    y = torch.addmm(-shift, X, stacked)  # (m, K*d)
    return y.square_().view(X.shape[0], K, d).sum(2)


def n_covariance_parameters(kind: str, K: int, d: int) -> int:
    return {
        "full": K * d * (d + 1) // 2,
        "tied": d * (d + 1) // 2,
        "diag": K * d,
        "spherical": K,
    }[kind]
