"""MADE: a masked autoencoder that is an exact autoregressive density (Germain et al., 2015).

Give every input a degree, its position 1..D in an ordering, and every
hidden unit a degree in [min of the layer below, D - 1]. A hidden unit may
see units of degree ≤ its own; output i may see hidden units of degree
< degree(i). Then output i depends on the inputs that come before i in the
ordering and on nothing else, so σ(output i) = p(x_i = 1 | x_<i) and

    log p(x) = Σ_i log Bernoulli(x_i; σ(η_i(x_<i)))

is exact and normalised, computed in one pass. Sampling takes D passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from companion._validation import check_positive_int
from companion.models.autoregressive.base import AutoregressiveModel, draw_bernoulli

MADE_HIDDEN = (1000,)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", torch.ones(out_features, in_features), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(AutoregressiveModel):
    """Masked autoencoder for distribution estimation on binary vectors.

    Parameters
    ----------
    input_dim : int
        D, the number of binary variables (784 for 28×28 images).
    hidden : sequence of int
        Widths of the hidden layers (ReLU).
    ordering : {"natural", "random"} or sequence of int
        The order in which variables are generated: ``"natural"`` is 0, 1, …,
        D-1 (raster order for images); ``"random"`` draws a permutation from
        ``seed``; a sequence gives it explicitly (a permutation of range(D)).
    num_masks : int
        Number of connectivity patterns. Mask k draws its hidden degrees from
        the seed ``seed + k`` (and, with ``ordering="random"``, its own
        ordering: order-agnostic training). Training cycles through them, one
        per call of :meth:`loss`; :meth:`log_prob` and :meth:`sample` use the
        equal-weight mixture of the ``num_masks`` models, still exact.
        :meth:`forward` gives the current mask's logits, (N, D).
    seed : int
        Seed of the orderings and degrees; the masks are not saved in the
        state dict but rebuilt from it.
    """

    def __init__(
        self,
        input_dim: int = 784,
        hidden: Sequence[int] = (500,),
        *,
        ordering: str | Sequence[int] = "natural",
        num_masks: int = 1,
        seed: int = 0,
    ):
        super().__init__()
        self.input_dim = check_positive_int(input_dim, name="input_dim", minimum=2)
        self.hidden = tuple(check_positive_int(h, name="hidden width") for h in hidden)
        if not self.hidden:
            raise ValueError("hidden=() has no layers; give at least one width, e.g. (500,).")
        self.num_masks = check_positive_int(num_masks, name="num_masks")
        self.seed = int(seed)
        self._orderings = self._make_orderings(ordering)  # (num_masks, D)
        self._record(
            torch.cat([torch.tensor([self.seed, self.num_masks]), self._orderings.flatten()])
        )
        widths = (self.input_dim, *self.hidden, self.input_dim)
        self.layers = nn.ModuleList(
            MaskedLinear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.register_buffer("ordering", self._orderings[0].clone(), persistent=False)
        self.mask_index = 0
        self.set_mask(0)

    def _make_orderings(self, ordering: str | Sequence[int]) -> torch.Tensor:
        D = self.input_dim
        if isinstance(ordering, str):
            if ordering == "natural":
                return torch.arange(D).expand(self.num_masks, D).clone()
            if ordering == "random":
                return torch.stack([
                    torch.randperm(D, generator=torch.Generator().manual_seed(self.seed + k))
                    for k in range(self.num_masks)
                ])  # fmt: skip
            raise ValueError(
                f"ordering={ordering!r} is not 'natural', 'random' or a permutation of range(D)."
            )
        order = torch.as_tensor(list(ordering), dtype=torch.long)
        if order.shape != (D,) or not torch.equal(order.sort().values, torch.arange(D)):
            raise ValueError(
                f"ordering must be a permutation of range({D}), got {list(ordering)[:10]}"
                f"{'…' if len(order) > 10 else ''}; use e.g. torch.randperm({D}).tolist()."
            )
        return order.expand(self.num_masks, D).clone()

    def set_mask(self, k: int) -> None:
        """Use connectivity pattern ``k`` (0 ≤ k < num_masks) until the next call."""
        if not 0 <= k < self.num_masks:
            raise ValueError(f"mask k={k} is outside [0, {self.num_masks}).")
        D = self.input_dim
        order = self._orderings[k]
        degrees = torch.empty(D, dtype=torch.long)
        degrees[order] = torch.arange(1, D + 1)  # degree of input d = its position
        generator = torch.Generator().manual_seed(self.seed + 7919 * (k + 1))
        previous = degrees
        for layer, width in zip(self.layers[:-1], self.hidden, strict=True):
            low = int(previous.min())  # a unit below every degree in use would see nothing
            current = torch.randint(low, D, (width,), generator=generator)  # in [low, D-1]
            layer.mask = self._like(current[:, None] >= previous[None, :], layer.mask)
            previous = current
        out = self.layers[-1]
        out.mask = self._like(degrees[:, None] > previous[None, :], out.mask)
        self.ordering = self._like(order, self.ordering)
        self.mask_index = k

    @staticmethod
    def _like(value: torch.Tensor, buffer: torch.Tensor) -> torch.Tensor:
        # a new tensor, not an in-place copy: a graph built with the old mask stays valid
        return value.to(dtype=buffer.dtype, device=buffer.device)

    # ------------------------------------------------------------ model
    def _logits(self, rows: torch.Tensor) -> torch.Tensor:
        """Logits η of p(x_i = 1 | x_<i) under the current mask, (N, D), for rows (N, D)."""
        h = rows
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))
        return self.layers[-1](h)

    def _log_prob(self, rows: torch.Tensor) -> torch.Tensor:
        """log p(x) of binary rows (N, D) under the equal-weight mixture of the masks, (N,)."""
        if self.num_masks == 1:
            return super()._log_prob(rows)
        current = self.mask_index
        try:
            parts = []
            for k in range(self.num_masks):
                self.set_mask(k)
                parts.append(super()._log_prob(rows))
        finally:
            self.set_mask(current)
        return torch.logsumexp(torch.stack(parts), 0) - math.log(self.num_masks)

    def _training_log_prob(self, rows: torch.Tensor) -> torch.Tensor:
        """log p(x) (N,) under the current mask; in training mode with several masks, the
        next call (the next batch of :meth:`loss`) uses the next mask."""
        log_p = super()._log_prob(rows)
        if self.training and self.num_masks > 1:
            self.set_mask((self.mask_index + 1) % self.num_masks)
        return log_p

    def _sample(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """n binary vectors (n, D), drawn one variable at a time in the mask's ordering.

        With several masks each row first picks a mask uniformly, so samples
        follow the same mixture that :meth:`log_prob` scores.
        """
        ref = self.layers[0].weight
        device = generator.device if generator is not None else ref.device
        which = torch.randint(self.num_masks, (n,), generator=generator, device=device).cpu()
        x = self._blank(n)
        current = self.mask_index
        try:
            for k in range(self.num_masks):
                rows = torch.nonzero(which == k).squeeze(1).to(ref.device)
                if len(rows) == 0:
                    continue
                self.set_mask(k)
                xk = x[rows]
                for i in self.ordering.tolist():  # D passes, each for all rows at once
                    xk[:, i] = draw_bernoulli(self._logits(xk)[:, i], generator)
                x[rows] = xk
        finally:
            self.set_mask(current)
        return x
