"""What every exercise check shares: the error type, turning answers into tensors, comparing."""

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


def _close(got: torch.Tensor, expected: torch.Tensor, tol: float = 1e-6) -> bool:
    """Same shape and every entry within ``tol`` relative (plus ``tol`` absolute)."""
    return got.shape == expected.shape and bool(
        ((got - expected).abs() <= tol * (1 + expected.abs())).all()
    )


def _scalar(value, what: str, hint: str = "") -> float:
    """The answer as one float, or an error naming the shape it had."""
    got = _as_tensor(value, what)
    if got.numel() != 1:
        raise ExerciseError(f"{what} has shape {tuple(got.shape)}; return one number{hint}.")
    return got.item()


def _shape(got: torch.Tensor, shape: tuple[int, ...], what: str, hint: str = "") -> None:
    """An error naming ``what``'s shape unless it is ``shape``."""
    if tuple(got.shape) != shape:
        raise ExerciseError(f"{what} has shape {tuple(got.shape)}, expected {shape}.{hint}")


def _near(got: float, value: float) -> bool:
    """Two numbers equal to about 1e-9, relative."""
    return abs(got - value) <= 1e-9 * (1 + abs(value))
