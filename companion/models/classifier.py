"""A small Fashion-MNIST classifier whose penultimate layer serves as a feature space.

The Fréchet distance and precision/recall of generative models compare
samples in the features of a classifier trained on the real images (Heusel
et al., 2017 use Inception-v3 on ImageNet; for 28×28 grey images a small
CNN trained on Fashion-MNIST plays that part). ``load_fashion_classifier``
returns the shipped network trained by ``scripts/train_fashion_classifier.py``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from companion._validation import check_finite


class FashionClassifier(nn.Module):
    """Two 3×3 convolutions with max-pooling, a hidden layer of features, 10 logits.

    (N, 1, 28, 28) or (N, 784) in [0, 1]
      -> conv 32, ReLU, pool (32, 14, 14) -> conv 64, ReLU, pool (64, 7, 7)
      -> linear ``feature_dim``, ReLU: :meth:`features`, (N, feature_dim)
      -> dropout, linear 10: :meth:`forward`, the class logits (N, 10).

    Parameters
    ----------
    feature_dim : int
        Width of the feature layer.
    channels : (int, int)
        Channels of the two convolutions.
    dropout : float
        Dropout before the last layer, active in training mode only.
    """

    def __init__(
        self, feature_dim: int = 128, channels: tuple[int, int] = (32, 64), dropout: float = 0.3
    ):
        super().__init__()
        c1, c2 = channels
        self.feature_dim = feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (c1, 14, 14)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (c2, 7, 7)
            nn.Flatten(), nn.Linear(c2 * 49, feature_dim), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, 10))

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        """Check and reshape inputs to (N, 1, 28, 28) in the model's dtype."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"FashionClassifier expects a torch tensor, got {type(x).__name__}; "
                "convert it with torch.as_tensor(x)."
            )
        if not x.is_floating_point():
            raise TypeError(
                f"FashionClassifier expects float pixels in [0, 1], got {x.dtype}; "
                "scale uint8 images with companion.data.to_float."
            )
        if x.ndim < 2 or math.prod(x.shape[1:]) != 784:
            raise ValueError(
                f"FashionClassifier expects (N, 1, 28, 28), (N, 28, 28) or (N, 784) inputs, "
                f"got shape {tuple(x.shape)}; reshape the images, e.g. x.reshape(-1, 1, 28, 28)."
            )
        if x.numel():
            check_finite(x, name="the FashionClassifier input")
            lo, hi = float(x.min()), float(x.max())
            if lo < 0 or hi > 1:
                raise ValueError(
                    f"FashionClassifier expects pixels in [0, 1], got values in "
                    f"[{lo:.3g}, {hi:.3g}]; map images in [-1, 1] with (x + 1) / 2 or "
                    "scale uint8 images with to_float."
                )
        ref = self.head[1].weight
        return x.reshape(-1, 1, 28, 28).to(ref.dtype)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations, (N, feature_dim)."""
        return self.body(self._images(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, (N, 10)."""
        return self.head(self.features(x))

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Cross-entropy of a batch ``(images, labels)`` and its accuracy."""
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError(
                "FashionClassifier.loss expects a batch (images, labels); train it with "
                "Trainer.fit((x, y))."
            )
        x, y = batch
        logits = self(x)
        return {
            "loss": F.cross_entropy(logits, y),
            "accuracy": (logits.argmax(1) == y).float().mean().detach(),
        }

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1000) -> float:
        """Share of correctly classified images, in eval mode."""
        was_training = self.training
        self.eval()
        try:
            correct = sum(
                int((self(xb).argmax(1) == yb.to(xb.device)).sum())
                for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True)
            )
        finally:
            self.train(was_training)
        return correct / len(y)


@torch.no_grad()
def extract_features(
    model: FashionClassifier, x: torch.Tensor, *, batch_size: int = 256
) -> torch.Tensor:
    """``model.features`` over ``x`` in batches, in eval mode, on the model's device: (N, d).

    The default batch keeps the first convolution's output (batch × 32 × 28 × 28 floats,
    25 MB at 256) small enough for the CPU's caches; batches of 1000 were slower on one
    core, most of all beside another busy process.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        parts = [model.features(xb.to(device)) for xb in x.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts) if parts else x.new_zeros(0, model.feature_dim)
