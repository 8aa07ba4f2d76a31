"""Turning uint8 image tensors into what models train on."""

from __future__ import annotations

import torch


def to_float(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Scale uint8 pixels in [0, 255] to floats in [0, 1]; same shape."""
    if images.dtype != torch.uint8:
        raise TypeError(
            f"to_float expects uint8 pixels, got {images.dtype}; the data may already be "
            "scaled (skip to_float) or needs .to(torch.uint8)."
        )
    return images.to(dtype) / 255.0


def flatten(images: torch.Tensor) -> torch.Tensor:
    """(n, H, W) or (n, C, H, W) -> (n, H*W*C): one row per image."""
    if images.ndim < 2:
        raise ValueError(f"flatten expects a batch of images, got shape {tuple(images.shape)}.")
    return images.reshape(images.shape[0], -1)


def binarize(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """One Bernoulli sample per pixel: 1 with probability ``x`` (floats in [0, 1])."""
    if not x.is_floating_point():
        raise TypeError(f"binarize expects floats in [0, 1], got {x.dtype}; call to_float first.")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"binarize expects values in [0, 1], got [{x.min().item():.3g}, "
            f"{x.max().item():.3g}]; scale the data with to_float first."
        )
    return torch.bernoulli(x, generator=generator)


class DynamicBinarizer:
    """A batch transform drawing a fresh binarisation every time it is called.

    Passed to the trainer as ``batch_transform``, each epoch sees a new
    Bernoulli sample of the same grey-level images (dynamic binarisation),
    which regularises density models better than one fixed threshold. It
    draws from torch's global generator, which the trainer seeds and stores
    in its checkpoints, so runs and resumed runs are reproducible.
    """

    def __call__(self, batch):
        if isinstance(batch, (tuple, list)):
            return (binarize(batch[0]), *batch[1:])
        return binarize(batch)


def train_val_split(
    *tensors: torch.Tensor, val_fraction: float = 0.1, seed: int = 0
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Shuffle and split tensors that share their first dimension.

    >>> (x_tr, y_tr), (x_va, y_va) = train_val_split(x, y, val_fraction=0.1)  # doctest: +SKIP
    """
    if not tensors:
        raise ValueError("train_val_split needs at least one tensor.")
    n = tensors[0].shape[0]
    for t in tensors[1:]:
        if t.shape[0] != n:
            raise ValueError(f"all tensors must have the same length; got {n} and {t.shape[0]}.")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction} must be strictly between 0 and 1.")
    n_val = max(1, round(n * val_fraction))
    if n_val >= n:
        raise ValueError(
            f"val_fraction={val_fraction} leaves no training data out of n={n}; lower it."
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:n_val], order[n_val:]
    return tuple(t[train_idx] for t in tensors), tuple(t[val_idx] for t in tensors)
