"""What every exercise check shares: the error type, turning answers into tensors, comparing."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch


class ExerciseError(AssertionError):
    """An exercise answer is wrong; the message says how and hints at the fix."""


# What autograd says when an answer gets in its way, and the mistake behind it.
_AUTOGRAD_MISTAKES = (
    (
        "in-place operation",
        "your function changes an input that carries a gradient in place (+=, *=, add_, "
        "x[...] = ...), which autograd forbids: build a new tensor instead.",
    ),
    (
        "modified by an inplace operation",
        "your function changes in place a tensor that autograd still needs (+=, add_, "
        "x[...] = ... after using x): build a new tensor instead.",
    ),
    (
        "numpy() on Tensor that requires grad",
        "your function turns a tensor that carries a gradient into NumPy; stay with torch "
        "operations so that the gradient can flow back to the inputs.",
    ),
    (
        "does not require grad",
        "your function asks autograd for a gradient of something that does not depend on a "
        "tensor with requires_grad=True (the check's inputs carry none): write the derivative "
        "out, or differentiate with respect to a copy made with .clone().requires_grad_().",
    ),
    (
        "backward through the graph a second time",
        "your function calls backward() (or autograd.grad) twice on the same graph; compute "
        "the gradient once, or pass retain_graph=True.",
    ),
)


def _call(fn: Callable, *args):
    """``fn(*args)``, the student's function, run so that it cannot cost points unfairly.

    nbgrader gives 0 to a check cell that writes to stderr: a warning raised by the
    student's code (a deprecation, a copy construct) is shown on stdout instead. A
    RuntimeError from autograd becomes an :class:`ExerciseError` naming the likely
    mistake, instead of torch's message about leaf variables and grad_fn.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn(*args)
        except RuntimeError as err:
            text = str(err)
            for needle, explanation in _AUTOGRAD_MISTAKES:
                if needle in text:
                    raise ExerciseError(
                        f"{explanation} (torch said: {text.splitlines()[0]})"
                    ) from None
            raise
    for warning in caught:
        print(f"note, a warning from your code: {warning.category.__name__}: {warning.message}")
    return result


def _as_tensor(value, what: str) -> torch.Tensor:
    """The answer as a float64 tensor, quietly: a check must write nothing to stderr.

    A complex answer whose imaginary parts are rounding noise (a square root taken with
    ``torch.linalg.eigvals`` or ``scipy.linalg.sqrtm``) counts as its real part; torch
    would warn on the cast and nbgrader would give the cell 0. Any other complex answer
    is refused with the reason.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a read-only NumPy array, a complex cast
        if isinstance(value, torch.Tensor):
            got = value.detach()
        else:
            try:
                got = torch.as_tensor(value)
            except (TypeError, ValueError, RuntimeError) as err:
                raise ExerciseError(
                    f"{what} should be a tensor or array of numbers, got {type(value).__name__}."
                ) from err
        if got.is_complex():
            imaginary = got.imag.abs().max().item() if got.numel() else 0.0
            scale = got.real.abs().max().item() if got.numel() else 0.0
            if imaginary > 1e-8 * (1 + scale):
                raise ExerciseError(
                    f"{what} is complex, with imaginary parts up to {imaginary:.3g}: a square "
                    "root or a logarithm of a negative number, or eigenvalues of a matrix that "
                    "is not symmetric. The answer is real."
                )
            got = got.real
        try:
            return got.to(torch.float64)
        except (TypeError, RuntimeError) as err:
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


def _numbers(value, keys: tuple[str, ...], what: str) -> dict[str, float]:
    """The answer as a dict of finite floats with exactly ``keys``, or an error naming why."""
    if not isinstance(value, dict):
        raise ExerciseError(
            f"{what} is a {type(value).__name__}; return a dict with the keys "
            f"{', '.join(map(repr, keys))}."
        )
    missing = [k for k in keys if k not in value]
    if missing:
        raise ExerciseError(
            f"{what} has the keys {sorted(map(str, value))}, but not "
            f"{', '.join(map(repr, missing))}."
        )
    numbers = {k: _scalar(value[k], f"{what}[{k!r}]") for k in keys}
    bad = [k for k, v in numbers.items() if v != v or abs(v) == float("inf")]
    if bad:
        raise ExerciseError(
            f"{what}[{bad[0]!r}] is {numbers[bad[0]]}: the training diverged or a measurement "
            "divides by zero."
        )
    return numbers


def _sweep(
    fn: Callable,
    settings,
    arguments: Callable[[object], tuple],
    keys: tuple[str, ...],
    name: Callable[[object], str],
    describe: Callable[[object, dict[str, float]], str],
) -> tuple[dict, str]:
    """Run a "modify, train and compare" answer once per setting.

    ``fn(*arguments(setting))`` must return a dict of finite numbers with ``keys``;
    returns ``({setting: numbers}, shown)``, where ``shown`` lists the measurements with
    ``describe(setting, numbers)`` for the messages that judge them.
    """
    runs = {
        s: _numbers(_call(fn, *arguments(s)), keys, f"your result for {name(s)}") for s in settings
    }
    return runs, "; ".join(describe(s, runs[s]) for s in settings)


def _nll_sweep(
    fn: Callable,
    x_train: torch.Tensor,
    x_test: torch.Tensor,
    settings: tuple[int, ...],
    seed: int,
    *,
    setting: str,
    every: str,
    unit: str,
    per: str,
    passes: str,
    diverged: str,
    negative: str,
) -> tuple[dict[int, float], str]:
    """Run a "train at each size, report the held-out NLL" answer and check the basics.

    ``fn(x_train, x_test, size, seed)`` for each size in ``settings`` must return one
    finite, positive number that changes with the size; returns ``({size: nll}, shown)``
    with ``shown`` listing them as "nll (size ``unit``)". In the messages ``setting``
    names the argument and ``every`` what it sets ("width"), ``per`` what one NLL is
    measured on, ``passes`` what a constant answer fails to do, ``diverged`` and
    ``negative`` the hints for those mistakes.
    """
    nll = {
        size: _scalar(
            _call(fn, x_train.clone(), x_test.clone(), size, seed),
            f"your result for {setting}={size}",
            f", the mean negative log-likelihood per test {per}",
        )
        for size in settings
    }
    shown = ", ".join(f"{nll[size]:.3f} ({size} {unit})" for size in settings)
    values = list(nll.values())
    if any(not math.isfinite(v) for v in values):
        raise ExerciseError(f"your NLLs are {shown}: {diverged}")
    if max(values) - min(values) < 1e-9:
        raise ExerciseError(
            f"your NLL is {values[0]:.4g} for every {every}: your function does not pass "
            f"{setting} to the model {passes}."
        )
    if max(values) < 0:
        raise ExerciseError(f"your values ({shown}) are negative: {negative}")
    return nll, shown


def _bars(n: int, seed: int, side: int = 6) -> torch.Tensor:
    """n binary ``side``×``side`` images of random horizontal and vertical bars, (n, side²).

    Each row and each column is on with probability 0.2, and 2 % of the pixels are
    flipped: strongly dependent pixels that a few latent variables explain.
    """
    g = _generator(seed)
    rows = (torch.rand(n, side, 1, generator=g) < 0.2).float()
    cols = (torch.rand(n, 1, side, generator=g) < 0.2).float()
    images = torch.maximum(rows.expand(n, side, side), cols.expand(n, side, side))
    flips = (torch.rand(n, side, side, generator=g) < 0.02).float()
    return ((images + flips) % 2).reshape(n, side * side)


def _independent_nll(x_train: torch.Tensor, x_test: torch.Tensor) -> float:
    """Mean test NLL (nats) of independent Bernoulli pixels fitted to the training set."""
    p = x_train.double().mean(0).clamp(1e-3, 1 - 1e-3)
    x = x_test.double()
    return -(x * p.log() + (1 - x) * (1 - p).log()).sum(1).mean().item()
