"""Building blocks for GANs: MLPs for 2-D data, minibatch features and virtual BN.

* :class:`MLPGenerator`, :class:`MLPDiscriminator`: small fully connected
  nets for the 2-D mixtures of :mod:`companion.data.synthetic`.
* :class:`MinibatchDiscrimination` (Salimans et al., 2016) and
  :class:`MinibatchStdDev` (its simpler cousin from Karras et al., 2018):
  features that let the discriminator look at the whole batch, so that a
  generator which puts every sample in one place is easy to catch.
* :class:`VirtualBatchNorm` (Salimans et al., 2016): batch normalisation
  with the statistics of a fixed reference batch, so that an example's
  output does not depend on the other examples of its batch.

The convolutional DCGAN players are in :mod:`companion.models.dcgan`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from companion._validation import check_positive_int

MINIBATCH_FEATURES = (None, "stddev", "discrimination")
NORMS = (None, "batch", "reference", "virtual")


class MinibatchStdDev(nn.Module):
    """Append one feature: the standard deviation over the batch, averaged over features.

    (B, F) -> (B, F + 1). A collapsed generator gives a batch whose spread is
    near 0, which the next layer can see at once. Needs batches of at least 2.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(
                f"MinibatchStdDev needs a batch (B, F) with B >= 2, got shape {tuple(x.shape)}; "
                "use batch_size >= 2."
            )
        spread = x.std(dim=0, unbiased=False).mean()  # scalar
        return torch.cat([x, spread.expand(x.shape[0], 1)], dim=1)


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al., 2016, §3.2): (B, F) -> (B, F + n_kernels).

    Each row f(x_i) is projected by a tensor T to M_i ∈ R^{n_kernels × kernel_dim};
    feature b of example i is o_b(x_i) = Σ_{j ≠ i} exp(-‖M_{i,b} - M_{j,b}‖₁),
    how many other examples are close to it in that projection. (The paper sums
    over all j, which only adds the constant 1 from j = i.)
    """

    def __init__(self, in_features: int, n_kernels: int = 8, kernel_dim: int = 4):
        super().__init__()
        self.in_features = check_positive_int(in_features, name="in_features")
        self.n_kernels = check_positive_int(n_kernels, name="n_kernels")
        self.kernel_dim = check_positive_int(kernel_dim, name="kernel_dim")
        self.T = nn.Parameter(0.1 * torch.randn(in_features, n_kernels * kernel_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"MinibatchDiscrimination expects (batch, {self.in_features}), "
                f"got shape {tuple(x.shape)}."
            )
        m = (x @ self.T).view(-1, self.n_kernels, self.kernel_dim).transpose(0, 1)  # (K, B, C)
        l1 = torch.cdist(m, m, p=1)  # (K, B, B): ‖M_{i,b} - M_{j,b}‖₁, 2.5× faster than a broadcast
        o = torch.exp(-l1).sum(2).T - 1.0  # (B, K); drop j = i, where exp(0) = 1
        return torch.cat([x, o], dim=1)


class VirtualBatchNorm(nn.Module):
    """Batch norm with the statistics of a reference batch (Salimans et al., 2016, §3.4).

    Call :func:`update_reference` with the network and a fixed reference input
    (chosen once, at the start of training): every ``VirtualBatchNorm`` in the
    network records the mean and variance of its input on that batch (N
    examples). Later calls normalise each example with

    * ``include_example=False`` (reference batch norm): those statistics only;
    * ``include_example=True`` (virtual batch norm): the statistics of the
      reference batch plus the example itself, weights N/(N+1) and 1/(N+1)
      (first and second moments; over the spatial positions for images).

    Either way an example's output does not depend on the rest of its batch.
    Simplification: the reference statistics are detached (no gradient
    through them).

    (B, F) or (B, C, H, W) -> same shape; F or C = ``num_features``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, *, include_example: bool = False):
        super().__init__()
        self.include_example = bool(include_example)
        self.num_features = check_positive_int(num_features, name="num_features")
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("reference_mean", torch.zeros(num_features))
        self.register_buffer("reference_var", torch.ones(num_features))
        self.register_buffer("has_reference", torch.tensor(False))
        self.register_buffer("reference_size", torch.tensor(0))
        self.recording = False

    def _shape(self, x: torch.Tensor) -> tuple[int, ...]:
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(
                f"VirtualBatchNorm({self.num_features}) expects (B, {self.num_features}) or "
                f"(B, {self.num_features}, H, W), got shape {tuple(x.shape)}."
            )
        return (1, -1) if x.ndim == 2 else (1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = self._shape(x)
        if self.recording:
            dims = [0] if x.ndim == 2 else [0, 2, 3]
            self.reference_mean.copy_(x.detach().mean(dims))
            self.reference_var.copy_(x.detach().var(dims, unbiased=False))
            self.reference_size.fill_(x.shape[0])
            self.has_reference.fill_(True)
        elif not bool(self.has_reference):
            raise RuntimeError(
                "VirtualBatchNorm has no reference statistics yet; call "
                "update_reference(network, reference_input) once before using the network."
            )
        mean, var = self.reference_mean.view(shape), self.reference_var.view(shape)
        if self.include_example:
            w = 1.0 / (float(self.reference_size) + 1.0)
            spatial = [] if x.ndim == 2 else [2, 3]
            own_mean = x.mean(spatial, keepdim=True) if spatial else x
            own_square = (x * x).mean(spatial, keepdim=True) if spatial else x * x
            mixed_mean = (1 - w) * mean + w * own_mean
            mixed_square = (1 - w) * (var + mean * mean) + w * own_square
            mean, var = mixed_mean, (mixed_square - mixed_mean * mixed_mean).clamp_min(0)
        x_hat = (x - mean) * (var + self.eps).rsqrt()
        return x_hat * self.weight.view(shape) + self.bias.view(shape)


@torch.no_grad()
def update_reference(network: nn.Module, reference: torch.Tensor) -> None:
    """Pass ``reference`` through ``network`` so every VirtualBatchNorm records its statistics."""
    layers = [m for m in network.modules() if isinstance(m, VirtualBatchNorm)]
    if not layers:
        raise ValueError(f"{type(network).__name__} has no VirtualBatchNorm layer to update.")
    for layer in layers:
        layer.recording = True
    try:
        network(reference)
    finally:
        for layer in layers:
            layer.recording = False


def _widths(hidden: Sequence[int], name: str) -> list[int]:
    widths = [int(h) for h in hidden]
    if not widths or any(h < 1 for h in widths):
        raise ValueError(
            f"{name}={list(hidden)} needs at least one positive width, e.g. (128, 128)."
        )
    return widths


class MLPGenerator(nn.Sequential):
    """z (B, latent_dim) -> x (B, out_dim): ReLU hidden layers, linear output.

    ``norm``: None, "batch", "reference" (reference batch norm) or "virtual"
    (virtual batch norm); for the last two call :func:`update_reference`
    before use (:class:`~companion.models.gan.GAN` does it for you).
    """

    def __init__(
        self,
        latent_dim: int = 2,
        out_dim: int = 2,
        hidden: Sequence[int] = (128, 128),
        *,
        norm: str | None = None,
    ):
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is not one of {NORMS}.")
        latent_dim = check_positive_int(latent_dim, name="latent_dim")
        out_dim = check_positive_int(out_dim, name="out_dim")
        layers: list[nn.Module] = []
        width = latent_dim
        for h in _widths(hidden, "hidden"):
            layers.append(nn.Linear(width, h))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(h))
            elif norm in ("reference", "virtual"):
                layers.append(VirtualBatchNorm(h, include_example=norm == "virtual"))
            layers.append(nn.ReLU())
            width = h
        layers.append(nn.Linear(width, out_dim))
        super().__init__(*layers)
        self.latent_dim, self.out_dim = latent_dim, out_dim


class MLPDiscriminator(nn.Module):
    """x (B, in_dim) -> logits (B,): LeakyReLU(0.2) hidden layers.

    ``minibatch``: None, "stddev" (:class:`MinibatchStdDev`) or "discrimination"
    (:class:`MinibatchDiscrimination` with ``n_kernels`` kernels), inserted
    before the output layer.
    """

    def __init__(
        self,
        in_dim: int = 2,
        hidden: Sequence[int] = (128, 128),
        *,
        minibatch: str | None = None,
        n_kernels: int = 8,
    ):
        super().__init__()
        if minibatch not in MINIBATCH_FEATURES:
            raise ValueError(f"minibatch={minibatch!r} is not one of {MINIBATCH_FEATURES}.")
        self.in_dim = check_positive_int(in_dim, name="in_dim")
        layers: list[nn.Module] = []
        width = in_dim
        for h in _widths(hidden, "hidden"):
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        if minibatch == "stddev":
            layers.append(MinibatchStdDev())
            width += 1
        elif minibatch == "discrimination":
            layers.append(MinibatchDiscrimination(width, n_kernels))
            width += n_kernels
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)
