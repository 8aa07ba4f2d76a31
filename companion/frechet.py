"""The Fréchet distance between Gaussians fitted to two sets of features.

For N(μ₁, Σ₁) and N(μ₂, Σ₂) the squared 2-Wasserstein (Fréchet) distance is

    d² = ‖μ₁ - μ₂‖² + tr(Σ₁ + Σ₂ - 2 (Σ₁^½ Σ₂ Σ₁^½)^½)

(Dowson & Landau, 1982). Computed on classifier features of real images and
of samples it is the FID of Heusel et al. (2017); with our own Fashion-MNIST
classifier (:mod:`companion.feature_classifier`) the numbers are comparable
with each other, not with published FIDs on Inception features.

Σ₁^½ Σ₂ Σ₁^½ is symmetric positive semi-definite, so both square roots are
taken through symmetric eigendecompositions (negative rounding noise in
the eigenvalues clipped to 0), in float64. tr((Σ₁^½ Σ₂ Σ₁^½)^½) equals
tr((Σ₁Σ₂)^½), the form in most FID code, without a general matrix square root.
"""

from __future__ import annotations

from typing import Any

import torch

from companion._validation import check_array


def gaussian_statistics(
    features: Any, *, name: str = "features"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d,) and unbiased covariance (d, d) of ``features`` (n, d), float64."""
    X, _ = check_array(features, name=name, min_samples=2, dtype=torch.float64)
    mean = X.mean(0)
    centred = X - mean
    return mean, centred.T @ centred / (X.shape[0] - 1)


def _sqrt_psd(S: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix, by eigendecomposition."""
    values, vectors = torch.linalg.eigh(0.5 * (S + S.T))
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance_gaussians(
    mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor, cov_b: torch.Tensor
) -> float:
    """Squared Fréchet distance between N(mean_a, cov_a) and N(mean_b, cov_b)."""
    mean_a, cov_a, mean_b, cov_b = (
        torch.as_tensor(t, dtype=torch.float64) for t in (mean_a, cov_a, mean_b, cov_b)
    )
    d = mean_a.shape[-1]
    for name, mean, cov in (("a", mean_a, cov_a), ("b", mean_b, cov_b)):
        if mean.shape != (d,) or cov.shape != (d, d):
            raise ValueError(
                f"mean_{name} has shape {tuple(mean.shape)} and cov_{name} {tuple(cov.shape)}; "
                f"both Gaussians need a mean of shape ({d},) and a covariance of shape ({d}, {d})."
            )
    cov_b = cov_b.to(cov_a.device)
    root_a = _sqrt_psd(cov_a)
    middle = _sqrt_psd(root_a @ cov_b @ root_a)
    value = (mean_a - mean_b.to(mean_a.device)).pow(2).sum() + torch.trace(cov_a + cov_b)
    return max(0.0, float(value - 2 * torch.trace(middle)))  # ≥ 0; rounding can dip below


def frechet_distance(feats_a: Any, feats_b: Any) -> float:
    """Squared Fréchet distance between Gaussians fitted to two feature sets.

    feats_a : (n_a, d) and feats_b : (n_b, d) arrays or tensors, n ≥ 2 each.
    Symmetric, zero for identical sets, and biased upwards for small n (the
    sample covariances are noisy): compare models with the same n.
    """
    A, _ = check_array(feats_a, name="feats_a", min_samples=2, dtype=torch.float64)
    B, _ = check_array(feats_b, name="feats_b", min_samples=2, dtype=torch.float64)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"feats_a has {A.shape[1]} features but feats_b has {B.shape[1]}; extract both "
            "with the same network and layer."
        )
    return frechet_distance_gaussians(*gaussian_statistics(A), *gaussian_statistics(B.to(A.device)))
