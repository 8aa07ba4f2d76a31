"""Ready encoders and decoders for variational autoencoders on 28×28 images.

An encoder maps inputs (B, D) to (B, 2·latent_dim): the posterior means
followed by the log-variances. A decoder maps codes (B, latent_dim) to the
parameters of p(x | z), (B, D): logits for the (continuous) Bernoulli, means
for the Gaussian. The VAE flattens images to rows before calling either.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from companion.conv28 import conv_decoder, conv_encoder

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "softplus": nn.Softplus}


def _mlp(widths: Sequence[int], activation: str) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not one of {tuple(ACTIVATIONS)}.")
    if any(int(w) < 1 for w in widths):
        raise ValueError(f"layer widths {list(widths)} must all be positive integers.")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(int(a), int(b)))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def mlp_encoder(
    input_dim: int = 784, hidden: Sequence[int] = (400,), latent_dim: int = 20,
    activation: str = "relu",
) -> nn.Sequential:  # fmt: skip
    """input_dim → hidden… → 2·latent_dim, e.g. 784-400-(20+20) (Kingma & Welling, 2014)."""
    return _mlp([input_dim, *hidden, 2 * latent_dim], activation)


def mlp_decoder(
    latent_dim: int = 20, hidden: Sequence[int] = (400,), output_dim: int = 784,
    activation: str = "relu",
) -> nn.Sequential:  # fmt: skip
    """latent_dim → hidden… → output_dim; pass the encoder's hidden widths reversed to mirror it."""
    return _mlp([latent_dim, *hidden, output_dim], activation)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (28 → 14 → 7) and a linear map to 2·latent_dim.

    Takes rows (B, 784); ``input_dim`` tells the VAE what width to expect.
    """

    input_dim = 784

    def __init__(self, latent_dim: int = 20, channels: tuple[int, int] = (32, 64)):
        super().__init__()
        self.net = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)), *conv_encoder(2 * latent_dim, channels)
        )

    def forward(self, x):
        return self.net(x)  # (B, 784) -> (B, 2·latent_dim)


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: linear to (c2, 7, 7), two transposed convolutions."""

    def __init__(self, latent_dim: int = 20, channels: tuple[int, int] = (32, 64)):
        super().__init__()
        self.net = conv_decoder(latent_dim, channels)

    def forward(self, z):
        return self.net(z)  # (B, latent_dim) -> (B, 784)
