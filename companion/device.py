"""Choosing the torch device a model or estimator runs on."""

from __future__ import annotations

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
