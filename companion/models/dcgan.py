"""The DCGAN players (Radford et al., 2016) for 28×28 and 64×64 images.

The DCGAN rules: strided (transposed) convolutions instead of pooling or
upsampling layers; batch norm in every layer except the generator's output
and the discriminator's input; ReLU in the generator with tanh at its output
(so train on images scaled to [-1, 1]); LeakyReLU(0.2) in the discriminator;
no fully connected hidden layers; weights drawn from N(0, 0.02²).

Sizes, with c = ``channels``:

* 28×28: z -> 2c×7×7 -> c×14×14 -> image; the discriminator mirrors it.
* 64×64 (the paper's size): z -> 8c×4×4 -> 4c×8×8 -> 2c×16×16 -> c×32×32 -> image.

The generator's ``norm="reference"`` or ``norm="virtual"`` swaps batch norm
for :class:`~companion.models.gan_layers.VirtualBatchNorm` without or with the
example mixed into the reference statistics (the reference batch is handled by
:class:`~companion.models.gan.GAN`).
"""

from __future__ import annotations

import torch
from torch import nn

from companion._validation import check_positive_int
from companion.models.gan_layers import VirtualBatchNorm

IMAGE_SIZES = (28, 64)
GENERATOR_NORMS = ("batch", "reference", "virtual")

# image size -> (side of the first feature map, channel multipliers from the
# generator's first feature map down to its last one)
_LAYOUT = {28: (7, (2, 1)), 64: (4, (8, 4, 2, 1))}


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02²), BN scales ~ N(1, 0.02²), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, VirtualBatchNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _layout(image_size: int) -> tuple[int, tuple[int, ...]]:
    if image_size not in _LAYOUT:
        raise ValueError(
            f"image_size={image_size!r} is not supported; use one of {IMAGE_SIZES} "
            "(resize or pad other images)."
        )
    return _LAYOUT[image_size]


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, image_channels, S, S) in [-1, 1], S = image_size.

    Parameters
    ----------
    latent_dim : int
    channels : int
        c, the width of the last hidden feature map (others are multiples of it).
    image_size : {28, 64}
    image_channels : int
        1 for grey images, 3 for colour.
    norm : {"batch", "reference", "virtual"}
        Batch norm; reference batch norm (statistics of a fixed reference
        batch); virtual batch norm (reference batch plus the example).
    """

    def __init__(
        self,
        latent_dim: int = 100,
        channels: int = 64,
        *,
        image_size: int = 28,
        image_channels: int = 1,
        norm: str = "batch",
    ):
        super().__init__()
        if norm not in GENERATOR_NORMS:
            raise ValueError(f"norm={norm!r} is not one of {GENERATOR_NORMS}.")
        self.latent_dim = check_positive_int(latent_dim, name="latent_dim")
        c = check_positive_int(channels, name="channels")
        self.image_channels = check_positive_int(image_channels, name="image_channels")
        side, multipliers = _layout(image_size)
        self.image_size = image_size

        def Norm(width: int) -> nn.Module:
            if norm == "batch":
                return nn.BatchNorm2d(width)
            return VirtualBatchNorm(width, include_example=norm == "virtual")

        widths = [m * c for m in multipliers]
        layers: list[nn.Module] = [
            nn.Unflatten(1, (latent_dim, 1, 1)),
            nn.ConvTranspose2d(latent_dim, widths[0], side, 1, 0, bias=False),  # (w0, side, side)
            Norm(widths[0]),
            nn.ReLU(),
        ]
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):  # each doubles the side
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), Norm(w_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], image_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"DCGANGenerator expects codes of shape (batch, {self.latent_dim}), "
                f"got {tuple(z.shape)}."
            )
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """Images (B, image_channels, S, S), or rows (B, image_channels·S·S) -> logits (B,).

    Strided convolutions halve the side (28 -> 14 -> 7, or 64 -> 32 -> 16 -> 8 -> 4),
    LeakyReLU(0.2), batch norm on every layer but the first, and a last
    convolution over the whole remaining map to one logit.
    """

    def __init__(self, channels: int = 64, *, image_size: int = 28, image_channels: int = 1):
        super().__init__()
        c = check_positive_int(channels, name="channels")
        self.image_channels = check_positive_int(image_channels, name="image_channels")
        side, multipliers = _layout(image_size)
        self.image_size = image_size
        widths = [m * c for m in reversed(multipliers)]  # c, 2c, ...
        layers: list[nn.Module] = [nn.Conv2d(image_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, side, 1, 0))  # (1, 1, 1)
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (self.image_channels, self.image_size, self.image_size)
        if x.ndim == 2 and x.shape[1] == shape[0] * shape[1] * shape[2]:
            x = x.view(-1, *shape)
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"DCGANDiscriminator expects images of shape (batch, {', '.join(map(str, shape))}) "
                f"or rows (batch, {shape[0] * shape[1] * shape[2]}), got {tuple(x.shape)}."
            )
        return self.net(x).flatten()
