"""Normalizing flows: exact densities on continuous data from invertible maps.

A flow is an invertible map f from data x to a code z = f(x) whose density
is a standard normal. By the change of variables,

    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|,

and f is a composition f = f_K ∘ … ∘ f_1 whose log-determinants add. Every
layer here has ``forward(x) -> (z, log|det J|)`` with ``z`` of shape (N, D)
and the log-determinant of shape (N,), and ``inverse(z) -> x``:

* :class:`AffineCoupling` (RealNVP; Dinh et al., 2017): the masked half of
  x passes unchanged and sets the scale and shift of the other half, so J is
  triangular with diagonal exp(s) and log|det J| = Σ s;
* :class:`MaskedAutoregressive` (MAF; Papamakarios et al., 2017): z_i =
  (x_i - μ_i(x_<i)) e^{-α_i(x_<i)}, μ and α from a MADE, so J is triangular
  in the MADE's ordering and log|det J| = -Σ α; scoring takes one pass,
  inverting (sampling) D passes;
* :class:`ActNorm` (Kingma & Dhariwal, 2018), :class:`Permutation` and
  :class:`LogitTransform` (x in [0, 1] to the real line, its Jacobian counted).

:class:`Flow` composes layers over a standard-normal base and knows its
loss, so :class:`companion.training.Trainer` trains it. :func:`dequantized_bits_per_dim`
converts log-densities of images scaled to [0, 1) into the 8-bit bits per
dimension of the literature, counting the Jacobian of the scaling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from companion._validation import (
    batch_inputs,
    check_model_input,
    check_positive_int,
    values_already_checked,
)
from companion.models.autoregressive.made import MADE, MaskedLinear
from companion.models.likelihoods import nats_to_bits_per_dim, standard_normal_log_prob

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Flow",
    "LogitTransform",
    "MaskedAutoregressive",
    "Permutation",
    "alternating_mask",
    "dequantized_bits_per_dim",
    "channel_mask",
    "checkerboard_mask",
]


# ----------------------------------------------------------------- masks
def alternating_mask(dim: int, parity: int = 0) -> torch.Tensor:
    """0/1 float mask (dim,) that keeps the even (parity 0) or odd (parity 1) coordinates."""
    dim = check_positive_int(dim, name="dim", minimum=2)
    return ((torch.arange(dim) + parity) % 2 == 0).float()


def checkerboard_mask(height: int, width: int, parity: int = 0) -> torch.Tensor:
    """0/1 float mask (height·width,) of a checkerboard over a raster-flattened image."""
    height = check_positive_int(height, name="height")
    width = check_positive_int(width, name="width")
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((rows + cols + parity) % 2 == 0).float().flatten()


def channel_mask(channels: int, height: int, width: int, parity: int = 0) -> torch.Tensor:
    """0/1 float mask (channels·height·width,) keeping the first (parity 0) or second half
    of the channels of a flattened (C, H, W) image."""
    channels = check_positive_int(
        channels, name="channels", minimum=2, hint="; a one-channel image needs checkerboard_mask"
    )
    keep = (torch.arange(channels) < channels // 2) != bool(parity)
    return keep.float()[:, None].expand(channels, height * width).flatten()


# ----------------------------------------------------------------- layers
class AffineCoupling(nn.Module):
    """RealNVP's affine coupling layer on rows (N, D).

    With a 0/1 ``mask`` m, x_m = m ⊙ x passes unchanged and

        z = x_m + (1 - m) ⊙ (x ⊙ exp(s(x_m)) + t(x_m)),

    s and t from one MLP. J is triangular (block lower triangular, the
    identity on the masked half), so log|det J| = Σ_i (1 - m_i) s_i(x_m): one pass,
    no determinant. s = ``scale_bound``·tanh(·/``scale_bound``) keeps the
    scales within e^{±scale_bound}. The last layer starts at zero, so the
    layer starts as the identity.
    """

    def __init__(self, mask: torch.Tensor, hidden: Sequence[int] = (256, 256), *,
                 scale_bound: float = 3.0):  # fmt: skip
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.float32).flatten()
        if not bool(((mask == 0) | (mask == 1)).all()) or mask.sum() in (0, mask.numel()):
            raise ValueError(
                "mask must hold 0s and 1s with at least one of each; build it with "
                "alternating_mask, checkerboard_mask or channel_mask."
            )
        self.register_buffer("mask", mask)
        self.dim = mask.numel()
        self.scale_bound = float(scale_bound)
        widths = (self.dim, *(check_positive_int(h, name="hidden width") for h in hidden))
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        last = nn.Linear(widths[-1], 2 * self.dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def _scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(kept).chunk(2, dim=1)  # (N, D) each
        s = self.scale_bound * torch.tanh(s / self.scale_bound)
        free = 1 - self.mask
        return s * free, t * free  # zero on the kept half

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> z (N, D), log|det J| (N,)."""
        s, t = self._scale_shift(x * self.mask)
        return x * torch.exp(s) + t, s.sum(dim=1)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, D) -> x (N, D); the kept half of z is the kept half of x."""
        s, t = self._scale_shift(z * self.mask)
        return (z - t) * torch.exp(-s)


class MaskedAutoregressive(nn.Module):
    """One MAF layer: z_i = (x_i - μ_i(x_<i)) · exp(-α_i(x_<i)) on rows (N, D).

    μ is MADE's output layer and α a second masked output layer with the
    same mask, on the same hidden units: the MADE's degrees (its ``ordering``
    and ``seed``) make both depend on x_<i only, so ∂z/∂x is triangular in
    that ordering and log|det J| = -Σ_i α_i. α = ``scale_bound``·tanh(·/
    ``scale_bound``). Scoring is one pass; :meth:`inverse` takes D passes,
    one coordinate at a time (the inverse autoregressive flow, IAF, swaps
    the two costs).
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (256,), *,
                 ordering: str | Sequence[int] = "natural", seed: int = 0,
                 scale_bound: float = 3.0):  # fmt: skip
        super().__init__()
        self.made = MADE(dim, hidden, ordering=ordering, seed=seed)
        self.dim = self.made.input_dim
        self.scale_bound = float(scale_bound)
        mean_layer = self.made.layers[-1]
        self.log_scale = MaskedLinear(mean_layer.in_features, self.dim)
        self.log_scale.mask = mean_layer.mask.clone()  # MADE's output mask, reused
        for layer in (mean_layer, self.log_scale):  # start as the identity
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _shift_log_scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x
        for layer in self.made.layers[:-1]:
            h = F.relu(layer(h))
        alpha = self.log_scale(h)
        return self.made.layers[-1](h), self.scale_bound * torch.tanh(alpha / self.scale_bound)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> z (N, D), log|det J| (N,), in one pass."""
        mu, alpha = self._shift_log_scale(x)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(dim=1)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, D) -> x (N, D), in D passes along the ordering."""
        x = torch.zeros_like(z)
        for i in self.made.ordering.tolist():
            mu, alpha = self._shift_log_scale(x)
            x = x.clone()
            x[:, i] = z[:, i] * torch.exp(alpha[:, i]) + mu[:, i]
        return x


class ActNorm(nn.Module):
    """z = (x + b) ⊙ exp(s), per coordinate; log|det J| = Σ s (the same for every row).

    Data-dependent start (Glow): on the first training batch, b and s are set
    so that this batch leaves with mean 0 and variance 1 per coordinate.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = check_positive_int(dim, name="dim")
        self.loc = nn.Parameter(torch.zeros(self.dim))
        self.log_scale = nn.Parameter(torch.zeros(self.dim))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> z (N, D), log|det J| (N,)."""
        if self.training and not bool(self.initialized) and x.shape[0] > 1:
            with torch.no_grad():
                self.loc.copy_(-x.mean(0))
                self.log_scale.copy_(-torch.log(x.std(0) + 1e-6))
                self.initialized.fill_(True)
        logdet = self.log_scale.sum().expand(x.shape[0])
        return (x + self.loc) * torch.exp(self.log_scale), logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.exp(-self.log_scale) - self.loc


class Permutation(nn.Module):
    """z = x[:, π]: a fixed permutation (reversal, or drawn from ``seed``); log|det J| = 0."""

    def __init__(self, dim: int, *, seed: int | None = None):
        super().__init__()
        dim = check_positive_int(dim, name="dim")
        if seed is None:
            perm = torch.arange(dim - 1, -1, -1)
        else:
            perm = torch.randperm(dim, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, self.inverse_perm]


class LogitTransform(nn.Module):
    """z = logit(α + (1 - 2α) x) for x in [0, 1] (RealNVP's preprocessing), as a flow layer.

    log|dz_i/dx_i| = log(1 - 2α) - log y_i - log(1 - y_i) with y = α + (1 - 2α) x:
    this Jacobian is part of the model's density on [0, 1]^D and is counted
    in :meth:`Flow.log_prob`. α > 0 keeps the logit finite at 0 and 1.
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        if not 0 < alpha < 0.5:
            raise ValueError(f"alpha={alpha} must lie strictly between 0 and 0.5, e.g. 0.05.")
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) in [0, 1] -> z (N, D) real, log|det J| (N,)."""
        if not values_already_checked() and x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError(
                f"LogitTransform expects values in [0, 1], got [{x.min().item():.4g}, "
                f"{x.max().item():.4g}]; scale 8-bit images with "
                "companion.data.dequantize (values (k + u)/256)."
            )
        y = self.alpha + (1 - 2 * self.alpha) * x
        z = torch.log(y) - torch.log1p(-y)
        logdet = (math.log(1 - 2 * self.alpha) - torch.log(y) - torch.log1p(-y)).sum(dim=1)
        return z, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)


# ----------------------------------------------------------------- model
class MassEstimate(NamedTuple):
    """A Monte Carlo estimate and its standard error."""

    mean: float
    stderr: float


class Flow(nn.Module):
    """A normalizing flow: layers f_1, …, f_K over a standard-normal base in D dimensions.

    Parameters
    ----------
    layers : sequence of modules
        Each with ``forward(x) -> (z, log|det J|)`` and ``inverse(z)``, applied in order.
    dim : int
        D, the width of the rows (N, D) the flow models.
    levels : int, optional
        For images scaled to [0, 1) from ``levels`` grey levels (256 for 8-bit
        data dequantised by :func:`companion.data.dequantize`): the loss then
        also reports :func:`dequantized_bits_per_dim` on that 8-bit scale.

    ``loss(batch)`` returns ``{"loss": mean negative log-likelihood in nats,
    "bits_per_dim": …}`` so that :class:`companion.training.Trainer` trains it.
    """

    def __init__(self, layers: Sequence[nn.Module], dim: int, *, levels: int | None = None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        if not len(self.layers):
            raise ValueError("a Flow needs at least one layer, e.g. [AffineCoupling(mask)].")
        self.dim = check_positive_int(dim, name="dim")
        self.levels = None if levels is None else check_positive_int(levels, name="levels")

    # ---------------------------------------------------------- builders
    @classmethod
    def realnvp(cls, dim: int, n_layers: int = 8, hidden: Sequence[int] = (256, 256), *,
                image_shape: tuple[int, int] | None = None, logit: float | None = None,
                actnorm: bool = True, levels: int | None = None) -> Flow:  # fmt: skip
        """RealNVP: affine couplings with alternating masks (checkerboards for an
        ``image_shape``), each followed by ActNorm; a first :class:`LogitTransform`
        with α = ``logit`` for data in [0, 1]."""
        n_layers = check_positive_int(n_layers, name="n_layers", minimum=2)
        layers: list[nn.Module] = [] if logit is None else [LogitTransform(logit)]
        for k in range(n_layers):
            if image_shape is None:
                mask = alternating_mask(dim, k % 2)
            else:
                mask = checkerboard_mask(*image_shape, k % 2)
                if mask.numel() != dim:
                    raise ValueError(
                        f"image_shape={image_shape} has {mask.numel()} pixels, not "
                        f"dim={dim}; give the image's (height, width)."
                    )
            layers.append(AffineCoupling(mask, hidden))
            if actnorm:
                layers.append(ActNorm(dim))
        return cls(layers, dim, levels=levels)

    @classmethod
    def maf(cls, dim: int, n_layers: int = 5, hidden: Sequence[int] = (256,), *,
            logit: float | None = None, actnorm: bool = True,
            levels: int | None = None) -> Flow:  # fmt: skip
        """MAF: MADE layers whose orderings alternate natural / reversed (as in the
        MAF paper), each followed by ActNorm; a first :class:`LogitTransform` as in
        :meth:`realnvp`."""
        n_layers = check_positive_int(n_layers, name="n_layers")
        layers: list[nn.Module] = [] if logit is None else [LogitTransform(logit)]
        reverse = list(range(dim - 1, -1, -1))
        for k in range(n_layers):
            ordering = "natural" if k % 2 == 0 else reverse
            layers.append(MaskedAutoregressive(dim, hidden, ordering=ordering, seed=k))
            if actnorm:
                layers.append(ActNorm(dim))
        return cls(layers, dim, levels=levels)

    # ---------------------------------------------------------- the map
    def _checked(self, x: torch.Tensor, method: str) -> torch.Tensor:
        ref = next(self.parameters(), None)
        return check_model_input(x, self.dim, name=f"Flow.{method}", like=ref)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> z = f(x) (N, D) and log|det ∂f/∂x| (N,), summed over the layers."""
        z = self._checked(x, "forward")
        logdet = z.new_zeros(z.shape[0])
        for layer in self.layers:
            z, ld = layer(z)
            logdet = logdet + ld
        return z, logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, D) -> x = f⁻¹(z) (N, D)."""
        x = self._checked(z, "inverse")
        for layer in reversed(self.layers):
            x = layer.inverse(x)
        return x

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) in nats (N,): log N(f(x); 0, I) + log|det ∂f/∂x|, exact."""
        z, logdet = self(x)
        return standard_normal_log_prob(z).sum(dim=1) + logdet

    def check_input(self, x: torch.Tensor | tuple | list) -> None:
        """The trainer's one check of a whole data set: width, dtype, NaN."""
        self._checked(batch_inputs(x), "loss")

    def loss(self, batch: torch.Tensor | tuple | list) -> dict[str, torch.Tensor]:
        """{"loss": mean -log p(x) in nats, "bits_per_dim": the same per dimension (on the
        ``levels`` scale when it is set)}."""
        log_p = self.log_prob(batch_inputs(batch))
        return {
            "loss": -log_p.mean(),
            "bits_per_dim": dequantized_bits_per_dim(
                log_p.detach(), self.dim, levels=self.levels
            ).mean(),
        }

    @torch.no_grad()
    def unit_cube_mass(self, n: int = 1000, *, seed: int = 0,
                       batch_size: int = 1000) -> MassEstimate:  # fmt: skip
        """The probability the model gives to [0, 1]^D, estimated from n samples.

        With a :class:`LogitTransform` (α > 0) first, the flow maps [0, 1]^D onto a
        box, not onto all of R^D: its density on [0, 1]^D integrates to the base
        mass of that box, at most 1. Its NLL on [0, 1]^D is then an upper bound, too
        high by -log(mass) nats per example, i.e. -log2(mass)/D bits per dimension.
        """
        n = check_positive_int(n, name="n")
        generator = torch.Generator(device=next(self.parameters()).device).manual_seed(seed)
        inside = []
        for start in range(0, n, batch_size):
            x = self.sample(min(batch_size, n - start), generator=generator)
            inside.append(((x >= 0) & (x <= 1)).all(dim=1).double().cpu())
        hits = torch.cat(inside)
        return MassEstimate(float(hits.mean()), float(hits.std() / math.sqrt(n)) if n > 1 else 0.0)

    @torch.no_grad()
    def sample(self, n: int, *, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """n draws x = f⁻¹(z), z ~ N(0, T² I) with T = ``temperature``; (n, D)."""
        n = check_positive_int(n, name="n")
        if not temperature > 0:
            raise ValueError(f"temperature={temperature} must be positive, e.g. 0.7 or 1.0.")
        ref = next(self.parameters())
        z = torch.randn(n, self.dim, generator=generator, device=ref.device, dtype=ref.dtype)
        return self.inverse(temperature * z)


def dequantized_bits_per_dim(
    log_prob: torch.Tensor | float, dim: int, *, levels: int | None = 256
) -> torch.Tensor | float:
    """Bits per dimension of a log-density, every Jacobian term counted.

    ``log_prob`` is log p(x) in nats of data x = y / ``levels`` in [0, 1)^D,
    where y in [0, levels)^D are dequantised grey levels (y = k + u). The
    density of y is p(x) / levels^D, so

        bits/dim = (-log p(x) + D log levels) / (D log 2),

    the figure papers report for 8-bit images (``levels=256``). A model uniform
    on [0, 1)^D gives exactly log2(256) = 8. ``levels=None`` scores x itself.
    Works elementwise on a tensor (N,) of per-example values.
    """
    dim = check_positive_int(dim, name="dim")
    nats = -log_prob
    if levels is not None:
        nats = nats + dim * math.log(check_positive_int(levels, name="levels"))
    return nats_to_bits_per_dim(nats, dim)


# Architectures of the shipped Fashion-MNIST flows (scripts/train_flow.py builds the same).
FASHION_FLOWS = {
    "realnvp": {"n_layers": 6, "hidden": (512,)},
    "maf": {"n_layers": 5, "hidden": (512,)},
}
FASHION_LOGIT_ALPHA = 0.05


def fashion_flow(kind: str) -> Flow:
    """The untrained RealNVP (``"realnvp"``) or MAF (``"maf"``) of the shipped weights:
    784 pixels dequantised to [0, 1), a logit transform (α = 0.05), then the layers of
    ``FASHION_FLOWS[kind]``, each followed by ActNorm; ``levels=256``."""
    if kind not in FASHION_FLOWS:
        raise ValueError(f"kind={kind!r} is not one of {sorted(FASHION_FLOWS)}.")
    settings = FASHION_FLOWS[kind]
    if kind == "realnvp":
        return Flow.realnvp(784, **settings, image_shape=(28, 28),
                            logit=FASHION_LOGIT_ALPHA, levels=256)  # fmt: skip
    return Flow.maf(784, **settings, logit=FASHION_LOGIT_ALPHA, levels=256)
