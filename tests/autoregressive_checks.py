"""Helpers shared by the tests of the autoregressive models (MADE, PixelCNN, PixelRNN)."""

from __future__ import annotations

import itertools

import torch

F64 = torch.float64


def all_binary(d: int) -> torch.Tensor:
    """Every vector of {0, 1}^d, (2^d, d), float64, the first coordinate most significant."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)), dtype=F64)


def randomise(model: torch.nn.Module, seed: int = 0, scale: float = 1.0) -> torch.nn.Module:
    """Large random weights (times ``scale``), so that no logit is constant by accident."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def assert_samples_follow_log_prob(model: torch.nn.Module, n: int = 40_000) -> None:
    """Frequencies of n samples of a 2×2 image model match exp(log_prob), to 5 standard errors."""
    x = model.sample(n, generator=torch.Generator().manual_seed(0))
    assert x.shape == (n, 1, 2, 2)
    codes = (x.reshape(n, 4) * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=F64)).sum(1).long()
    counts = torch.bincount(codes, minlength=16).double()
    probs = model.log_prob(all_binary(4)).exp().detach()
    se = (n * probs * (1 - probs)).sqrt()
    assert torch.all((counts - n * probs).abs() < 5 * se + 1), (counts, n * probs)


def assert_completions_follow_the_conditional(model: torch.nn.Module, n: int = 20_000) -> None:
    """A 2×2 image model's completions of row 0 = (1, 0) keep it and follow p(row 1 | row 0)."""
    given = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=F64).expand(n, 4)
    out = model.complete(given, 1, generator=torch.Generator().manual_seed(3)).reshape(n, 4)
    assert torch.equal(out[:, :2], given[:, :2])
    joint = model.log_prob(all_binary(4)).exp().detach()  # codes 8a + 4b + 2c + d
    conditional = joint[8:12] / joint[8:12].sum()  # row 0 = (1, 0)
    counts = torch.bincount((out[:, 2] * 2 + out[:, 3]).long(), minlength=4).double()
    se = (n * conditional * (1 - conditional)).sqrt()
    assert torch.all((counts - n * conditional).abs() < 5 * se + 1), (counts, n * conditional)
    full = model.complete(given[:3], 2)
    assert torch.equal(full.reshape(3, 4), given[:3])
