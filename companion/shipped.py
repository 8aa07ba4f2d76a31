"""Read the weights that ship in ``companion/weights/`` (made by the scripts in ``scripts/``)."""

from __future__ import annotations

from importlib import resources

import torch


def load_shipped_file(filename: str, script: str) -> dict:
    """``torch.load`` of ``companion/weights/<filename>`` with ``weights_only=True``, on the CPU.

    A missing file raises ``FileNotFoundError`` naming ``scripts/<script>``, which makes it.
    """
    path = resources.files("companion") / "weights" / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; create it with `python scripts/{script}`.")
    with resources.as_file(path) as local:
        return torch.load(local, map_location="cpu", weights_only=True)


def load_shipped_state(filename: str, script: str) -> dict[str, torch.Tensor]:
    """A shipped state dict, every tensor as float32 (some are stored in float16)."""
    state = load_shipped_file(filename, script)
    return {key: value.float() for key, value in state.items()}
