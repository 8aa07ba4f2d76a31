"""Turning uint8 image tensors into what models train on."""

from __future__ import annotations

import math

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


def dequantize(
    images: torch.Tensor,
    *,
    levels: int = 256,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform dequantisation: integer grey levels k -> (k + u) / levels, u ~ U[0, 1).

    ``images`` are 8-bit pixels (uint8, or an integer tensor with values in
    [0, levels)); the result has the same shape, values in [0, 1). A
    continuous density p on [0, 1)^D then scores discrete images: the mass
    it puts on the cube of k, ∫ p over [k, k + 1)/levels, is at least
    exp E_u[log p((k + u)/levels) - D log levels] (Jensen), so the
    dequantised log-likelihood bounds the discrete one from below.
    """
    if images.is_floating_point() or images.dtype == torch.bool:
        raise TypeError(
            f"dequantize expects integer grey levels (uint8), got {images.dtype}; pass the "
            "images as loaded, or convert floats k/255 with (x * 255).round().to(torch.uint8)."
        )
    if images.numel() and (int(images.min()) < 0 or int(images.max()) >= levels):
        raise ValueError(
            f"dequantize expects grey levels in [0, {levels}), got [{int(images.min())}, "
            f"{int(images.max())}]; these are not {int(math.log2(levels))}-bit images "
            "(pass levels=... for another depth)."
        )
    noise = torch.rand(images.shape, generator=generator, dtype=dtype, device=images.device)
    levels_ = images.to(dtype)
    x = (levels_ + noise) / levels
    # k + u rounds up to k + 1 for u near 1 in float32: keep every value in its own cell
    top = torch.nextafter((levels_ + 1) / levels, torch.zeros((), dtype=dtype))
    return torch.minimum(x, top)


class UniformDequantizer:
    """A batch transform drawing fresh uniform noise for every batch of uint8 images.

    Passed to the trainer as ``batch_transform``, each epoch sees a new
    dequantisation of the same images (the flows' training data). Flattens
    images to rows (N, D). It draws from torch's global generator, which the
    trainer seeds and stores in its checkpoints.
    """

    def __init__(self, levels: int = 256):
        self.levels = levels

    def __call__(self, batch):
        if isinstance(batch, (tuple, list)):
            return (flatten(dequantize(batch[0], levels=self.levels)), *batch[1:])
        return flatten(dequantize(batch, levels=self.levels))


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
