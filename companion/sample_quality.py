"""Fréchet distance of image sets to a fixed reference set, in the book classifier's features.

The reference statistics (mean and covariance of the classifier's features on,
say, the 10,000 test images) are computed once; each call then scores one set
of images. Images are in [0, 1], shape (N, 1, 28, 28) or (N, 784).
"""

from __future__ import annotations

import torch

from companion.device import resolve_device
from companion.feature_classifier import (
    FashionClassifier,
    extract_features,
    load_fashion_classifier,
)
from companion.frechet import frechet_distance_gaussians, gaussian_statistics


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
