"""Convolutional stacks for 28×28 single-channel images, shared by the conv autoencoder and VAE."""

from __future__ import annotations

from torch import nn


def conv_encoder(out_features: int, channels: tuple[int, int] = (32, 64)) -> nn.Sequential:
    """(B, 1, 28, 28) -> (B, out_features): two stride-2 convolutions (28 → 14 → 7), then linear."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),   # (c1, 14, 14)
        nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # (c2, 7, 7)
        nn.Flatten(), nn.Linear(c2 * 49, out_features),
    )  # fmt: skip


def conv_decoder(in_features: int, channels: tuple[int, int] = (32, 64)) -> nn.Sequential:
    """(B, in_features) -> (B, 784): the mirror of :func:`conv_encoder`, transposed convolutions."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Linear(in_features, c2 * 49), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
        nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # (c1, 14, 14)
        nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),               # (1, 28, 28)
        nn.Flatten(),
    )  # fmt: skip
