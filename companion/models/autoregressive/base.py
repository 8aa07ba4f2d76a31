"""What MADE and PixelCNN share: binary inputs, Bernoulli log-likelihoods, seeded draws.

Both models factorise p(x) = Π_i p(x_i | x_<i) over binary pixels, each
conditional a Bernoulli whose logit the network computes, so

    log p(x) = Σ_i [x_i log σ(η_i) + (1 - x_i) log(1 - σ(η_i))]

exactly, in nats; no bound and no sampling is involved.
"""

from __future__ import annotations

import torch
from torch import nn

from companion._validation import check_finite
from companion.errors import CheckpointMismatchError
from companion.models.likelihoods import bernoulli_log_prob


class RecordedArchitecture(nn.Module):
    """A module whose state dict records what its weight shapes do not show.

    MADE's masks follow from a seed and PixelCNN's receptive field from its
    dilations; neither changes a weight's shape, so weights saved from one
    setting would load silently into another. Subclasses call
    :meth:`_record` with those settings as integers; loading a state dict
    saved with different ones raises :class:`CheckpointMismatchError`.
    """

    def _record(self, values: torch.Tensor) -> None:
        self.register_buffer("architecture", values.to(torch.long).flatten().clone())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "architecture")
        own = self.architecture
        if saved is not None and (saved.shape != own.shape or not torch.equal(saved.to(own), own)):
            raise CheckpointMismatchError(
                f"these {type(self).__name__} weights were saved with other settings "
                f"(seed, masks, ordering or dilations: saved {saved.flatten()[:6].tolist()}, "
                f"this model {own[:6].tolist()}); build the model with the settings it was "
                "trained with."
            )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def check_binary(x: torch.Tensor, *, name: str) -> None:
    """Raise a ``ValueError`` naming the first entry of ``x`` that is not 0 or 1."""
    if not x.is_floating_point():
        raise TypeError(
            f"{name} expects float inputs in {{0, 1}}, got {x.dtype}; convert with x.float()."
        )
    if x.numel() == 0:
        return
    check_finite(x, name=f"the {name} input")
    outside = (x != 0) & (x != 1)
    if bool(outside.any()):
        index = tuple(torch.nonzero(outside)[0].tolist())
        where = ", ".join(str(i) for i in index)
        raise ValueError(
            f"{name} models binary data, but x[{where}] = {x[index].item():.4g}; binarise the "
            "images first, e.g. companion.data.binarize(x) (a Bernoulli draw per pixel) "
            "or (x > 0.5).float()."
        )


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Σ over all but the first dimension of the Bernoulli log-probabilities, (N,), nats."""
    return bernoulli_log_prob(logits, x).reshape(x.shape[0], -1).sum(1)


def draw_bernoulli(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One 0/1 draw per logit, in the logits' dtype and device.

    The uniforms come from ``generator`` (on its own device, then moved), so
    a CPU generator gives the same draws whatever device the model is on.
    """
    device = generator.device if generator is not None else logits.device
    u = torch.rand(logits.shape, generator=generator, device=device).to(logits)
    return (u < torch.sigmoid(logits)).to(logits.dtype)
