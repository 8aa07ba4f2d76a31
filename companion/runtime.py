"""Where and how reproducibly code runs: the torch device (CUDA, MPS or CPU) and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"`` (or ``None``) into the best available device.

    ``"auto"`` picks CUDA, then Apple's MPS, then the CPU. Any other value is
    passed to :class:`torch.device` and checked to be usable here.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or 'mps'."
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for but CUDA is not available on this machine; "
            "use device='auto' to fall back to the CPU."
        )
    if resolved.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError(
            f"device={device!r} was asked for but MPS is not available on this machine; "
            "use device='auto' to fall back to the CPU."
        )
    return resolved


def available_devices() -> list[str]:
    """Names of the devices usable here, CPU first (for parametrising tests)."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy, and torch (CPU and every GPU).

    The hashing of ``str`` and ``bytes`` (the iteration order of a set of strings)
    is not seeded: Python fixes it when the interpreter starts, so only
    ``PYTHONHASHSEED`` set before Python starts changes it (e.g. ``PYTHONHASHSEED=0
    python train.py``). Setting the variable from a running program does nothing,
    and this function leaves ``os.environ`` alone.

    Parameters
    ----------
    seed : int
        A non-negative integer below 2**32.
    deterministic : bool
        Also ask torch for deterministic kernels (slower on GPU; CPU results
        are already deterministic for a fixed seed).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed={seed!r} must be an integer, e.g. seed_everything(0).")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed={seed} is outside [0, 2**32); pick a smaller non-negative seed.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeding the legacy global generator is the point
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_seed(random_state: int | None) -> int:
    """The seed an estimator uses: ``random_state`` itself, or one drawn from torch's global RNG.

    With ``random_state=None`` the seed comes from the global generator, as
    scikit-learn draws from NumPy's global state, so a run seeded by
    :func:`seed_everything` is reproducible and the global state is only
    advanced, never re-seeded.
    """
    if random_state is not None:
        return int(random_state)
    return int(torch.randint(0, 2**62, (1,)).item())
