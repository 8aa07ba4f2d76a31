"""Noise-conditional networks for diffusion models: a small U-Net for 28×28 images and an
MLP for points in the plane, both ``network(x, t) -> output of x's shape``.

``t`` (B,) is the noise level the network is told about: the step 1..T of a
DDPM (:class:`~companion.models.diffusion.DDPM`), or ``log σ`` of a
noise-conditional score model (:class:`~companion.models.score.NoiseConditionalScore`).
Either way it enters through a sinusoidal embedding (Vaswani et al., 2017; Ho et
al., 2020) and an MLP, and is added to the hidden features of every block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from companion._validation import check_positive_int
from companion.models.layers import get_activation


def timestep_embedding(t: torch.Tensor, dim: int, *, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of the scalars ``t`` (B,) -> (B, dim): cos and sin of t·ωₖ with
    frequencies ωₖ = max_period^(-k/(dim/2)), k = 0, …, dim/2 − 1 (``dim`` even)."""
    if dim % 2:
        raise ValueError(f"dim={dim} must be even (cosines and sines in pairs).")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    angles = t.reshape(-1, 1).to(freqs.dtype) * freqs  # (B, half)
    return torch.cat([angles.cos(), angles.sin()], dim=1).to(
        t.dtype if t.is_floating_point() else torch.float32
    )


class TimeEmbedding(nn.Module):
    """t (B,) -> (B, width): sinusoidal features, then Linear-SiLU-Linear."""

    def __init__(self, width: int, *, max_period: float = 10_000.0):
        super().__init__()
        self.width, self.max_period = width, max_period
        self.net = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        weight = self.net[0].weight
        features = timestep_embedding(t.to(weight.device), self.width, max_period=self.max_period)
        return self.net(features.to(weight.dtype))


def _groups(channels: int) -> int:
    """The largest of 8, 4, 2, 1 that divides ``channels`` (GroupNorm groups)."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv, add the projected time embedding, GroupNorm-SiLU-Conv, plus a skip.

    (B, c_in, H, W), (B, t_width) -> (B, c_out, H, W).
    """

    def __init__(self, c_in: int, c_out: int, t_width: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(c_in), c_in), nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.time = nn.Linear(t_width, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity (plus skip)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.time(emb)[:, :, None, None]
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """A small U-Net for (B, C, 28, 28) images: ``UNet()(x, t) -> (B, C, 28, 28)``.

    Three resolutions, 28 → 14 → 7, with ``channels = (c₁, c₂, c₃)`` feature maps,
    one residual block per resolution on the way down, one in the middle and one
    per resolution on the way up (each taking the skip connection from the way
    down), all conditioned on the time embedding. The default has about 1.1 M
    parameters (``sum(p.numel() for p in UNet().parameters())``).

    Parameters
    ----------
    channels : three ints
        Widths at 28×28, 14×14 and 7×7.
    image_channels : int
        1 for grey images.
    time_width : int
        Width of the time embedding (even).
    image_size : int
        Only 28 is supported (two halvings to 7×7).
    """

    image_size = 28

    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128),
        *,
        image_channels: int = 1,
        time_width: int = 128,
        image_size: int = 28,
    ):
        super().__init__()
        if image_size != 28:
            raise ValueError(
                f"image_size={image_size!r} is not supported; UNet works on 28×28 images "
                "(pad or resize others to 28×28)."
            )
        channels = tuple(channels)
        if len(channels) != 3:
            raise ValueError(
                f"channels={channels!r} must give three widths (28×28, 14×14, 7×7), "
                "e.g. (32, 64, 128)."
            )
        c1, c2, c3 = (check_positive_int(c, name=f"channels[{i}]") for i, c in enumerate(channels))
        self.channels = channels
        self.image_channels = check_positive_int(image_channels, name="image_channels")
        time_width = check_positive_int(time_width, name="time_width", minimum=2)
        self.time = TimeEmbedding(time_width)
        self.stem = nn.Conv2d(image_channels, c1, 3, 1, 1)
        self.down1 = ResBlock(c1, c1, time_width)  # 28
        self.pool1 = nn.Conv2d(c1, c1, 3, 2, 1)  # 28 -> 14
        self.down2 = ResBlock(c1, c2, time_width)  # 14
        self.pool2 = nn.Conv2d(c2, c2, 3, 2, 1)  # 14 -> 7
        self.down3 = ResBlock(c2, c3, time_width)  # 7
        self.middle = ResBlock(c3, c3, time_width)  # 7
        self.up3 = ResBlock(c3 + c3, c2, time_width)  # 7, with the skip from down3
        self.unpool2 = nn.ConvTranspose2d(c2, c2, 4, 2, 1)  # 7 -> 14
        self.up2 = ResBlock(c2 + c2, c1, time_width)  # 14, skip from down2
        self.unpool1 = nn.ConvTranspose2d(c1, c1, 4, 2, 1)  # 14 -> 28
        self.up1 = ResBlock(c1 + c1, c1, time_width)  # 28, skip from down1
        self.head = nn.Sequential(
            nn.GroupNorm(_groups(c1), c1), nn.SiLU(), nn.Conv2d(c1, image_channels, 3, 1, 1)
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shape = (self.image_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"UNet expects images of shape (batch, {', '.join(map(str, shape))}), got "
                f"{tuple(x.shape)}; reshape rows with x.view(-1, {', '.join(map(str, shape))})."
            )
        t = _broadcast_t(t, x.shape[0], x.device)
        emb = self.time(t)  # (B, time_width)
        h1 = self.down1(self.stem(x), emb)  # (B, c1, 28, 28)
        h2 = self.down2(self.pool1(h1), emb)  # (B, c2, 14, 14)
        h3 = self.down3(self.pool2(h2), emb)  # (B, c3, 7, 7)
        h = self.middle(h3, emb)
        h = self.up3(torch.cat([h, h3], 1), emb)  # (B, c2, 7, 7)
        h = self.up2(torch.cat([self.unpool2(h), h2], 1), emb)  # (B, c1, 14, 14)
        h = self.up1(torch.cat([self.unpool1(h), h1], 1), emb)  # (B, c1, 28, 28)
        return self.head(h)


class MLPDenoiser(nn.Module):
    """Points (B, dim) and levels t (B,) -> (B, dim): an MLP on [x, embedding(t)].

    For 2-D toy data (the ring and the grid). Each hidden layer gets the time
    embedding added, so the field can change with the noise level.

    Parameters
    ----------
    dim : int
        Width of the data.
    hidden : sequence of int
        Hidden widths (all equal, e.g. (256, 256, 256)).
    time_width : int
        Width of the sinusoidal time embedding (even).
    activation : str
        One of :data:`companion.models.layers.ACTIVATIONS`.
    max_period : float
        Longest period of the sinusoidal features (1e4 suits steps 1..1000;
        smaller values suit log σ).
    """

    def __init__(
        self,
        dim: int = 2,
        hidden: Sequence[int] = (256, 256, 256),
        *,
        time_width: int = 64,
        activation: str = "gelu",
        max_period: float = 10_000.0,
    ):
        super().__init__()
        self.dim = check_positive_int(dim, name="dim")
        hidden = [check_positive_int(h, name=f"hidden[{i}]") for i, h in enumerate(hidden)]
        if not hidden:
            raise ValueError("hidden=() gives no hidden layer; pass widths, e.g. (256, 256, 256).")
        get_activation(activation)
        self.time = TimeEmbedding(check_positive_int(time_width, name="time_width", minimum=2),
                                  max_period=max_period)  # fmt: skip
        widths = [dim, *hidden]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.time_proj = nn.ModuleList(nn.Linear(time_width, h) for h in hidden)
        self.acts = nn.ModuleList(get_activation(activation) for _ in hidden)
        self.out = nn.Linear(hidden[-1], dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"MLPDenoiser expects points of shape (batch, {self.dim}), got {tuple(x.shape)}."
            )
        emb = self.time(_broadcast_t(t, x.shape[0], x.device))
        h = x
        for layer, proj, act in zip(self.layers, self.time_proj, self.acts, strict=True):
            h = act(layer(h) + proj(emb))
        return self.out(h)


def _broadcast_t(t, batch: int, device: torch.device) -> torch.Tensor:
    """``t`` as a float tensor (batch,): a number or a 0-d tensor is repeated."""
    t = torch.as_tensor(t, device=device)
    if t.ndim == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(
            f"t must be a number or have shape ({batch},) (one level per example), "
            f"got {tuple(t.shape)}."
        )
    return t.float()
