"""What every exercise check shares: the error type and turning answers into tensors."""

from __future__ import annotations

import torch


class ExerciseError(AssertionError):
    """An exercise answer is wrong; the message says how and hints at the fix."""


def _as_tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64)
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ExerciseError(
            f"{what} should be a tensor or array of numbers, got {type(value).__name__}."
        ) from err


def _generator(seed: int) -> torch.Generator:
    """A CPU generator with a fixed seed: every check draws the same data each time."""
    return torch.Generator().manual_seed(seed)
