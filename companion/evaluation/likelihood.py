"""Likelihood-based evaluation: exact negative log-likelihoods, bits per dimension, and
the VAE's importance-weighted bound, each with its standard error.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from companion._validation import check_positive_int

# one copy, with the models' likelihoods (their losses report bits/dim); re-exported here
from companion.models.likelihoods import nats_to_bits_per_dim as nats_to_bits_per_dim
from companion.models.vae import importance_weighted_nll


class Estimate(NamedTuple):
    """A mean over test examples and its standard error (std / √n)."""

    mean: float
    stderr: float


def _mean_stderr(values: torch.Tensor) -> Estimate:
    n = values.numel()
    stderr = float(values.std() / math.sqrt(n)) if n > 1 else float("nan")
    return Estimate(float(values.mean()), stderr)


@torch.no_grad()
def log_likelihoods(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """``model.log_prob`` over ``x`` in batches, in eval mode, on the model's device: (N,) nats."""
    if not hasattr(model, "log_prob"):
        raise TypeError(
            f"{type(model).__name__} has no log_prob(x); use vae_nll for a VAE, or a model "
            "with an exact likelihood such as MADE or PixelCNN."
        )
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a non-empty tensor (N, ...), got {shape}.")
    batch_size = check_positive_int(batch_size, name="batch_size")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        parts = [model.log_prob(xb.to(device)).cpu().double() for xb in x.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def nll_nats(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500) -> Estimate:
    """Mean negative log-likelihood of ``x`` (N, ...), nats per example, and its standard error."""
    return _mean_stderr(-log_likelihoods(model, x, batch_size=batch_size))


def bits_per_dim(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500) -> Estimate:
    """:func:`nll_nats` divided by (pixels per example · ln 2)."""
    nll = nll_nats(model, x, batch_size=batch_size)
    dim = math.prod(x.shape[1:])
    return Estimate(nats_to_bits_per_dim(nll.mean, dim), nats_to_bits_per_dim(nll.stderr, dim))


def vae_nll(model: nn.Module, x: torch.Tensor, *, k: int = 1000, **kwargs: Any) -> Estimate:
    """The importance-weighted NLL bound of a VAE (k samples), mean and standard error, nats.

    An upper bound on the NLL in expectation, so a VAE compared with an exact
    likelihood is, if anything, flattered less than it deserves. Keyword
    arguments go to :func:`companion.models.vae.importance_weighted_nll`.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        values = importance_weighted_nll(model, x.to(device), k=k, **kwargs)
    finally:
        model.train(was_training)
    return _mean_stderr(values.cpu().double())
