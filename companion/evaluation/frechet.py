"""The Fréchet distance: between Gaussians fitted to two sets of features, and of image
sets to a reference set in the book classifier's features (:class:`FrechetScorer`).
"""

from __future__ import annotations

from typing import Any

import torch

from companion._validation import check_array
from companion.models.classifier import FashionClassifier, extract_features
from companion.pretrained.loaders import load_fashion_classifier
from companion.runtime import resolve_device


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


class FrechetScorer:
    """Score image sets by their Fréchet distance to ``reference`` (lower is closer).

    Parameters
    ----------
    reference : tensor (N, 1, 28, 28) or (N, 784) in [0, 1]
    classifier : FashionClassifier, optional
        Defaults to the shipped one (:func:`load_fashion_classifier`).
    device : str
        Where the classifier runs.
    """

    def __init__(
        self,
        reference: torch.Tensor,
        *,
        classifier: FashionClassifier | None = None,
        device: str | torch.device = "cpu",
    ):
        self.classifier = (classifier or load_fashion_classifier()).to(resolve_device(device))
        self.reference_statistics = gaussian_statistics(self.features(reference), name="reference")

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The classifier's penultimate features of ``images``, (N, d)."""
        return extract_features(self.classifier, images)

    def distance(self, images: torch.Tensor) -> float:
        """Squared Fréchet distance between ``images`` and the reference set."""
        statistics = gaussian_statistics(self.features(images), name="images")
        return frechet_distance_gaussians(*self.reference_statistics, *statistics)
