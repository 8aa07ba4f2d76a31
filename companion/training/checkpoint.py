"""Saving and restoring training state with plain state dicts.

Checkpoints hold only tensors, numbers, strings, lists and dicts, so they load
with ``torch.load(..., weights_only=True)``: no pickled code runs on load.
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion.errors import CheckpointMismatchError

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a crash never leaves half a file).

    The state goes to a temporary ``.<name>.<random>.tmp`` beside ``path`` and is then
    renamed over it. A process killed during the write (SIGKILL, a preempted job)
    leaves that temporary behind; the next save of the same checkpoint removes it
    first (:func:`remove_stale_temporaries`), so repeated kills do not fill the disk.
    One process writes a given checkpoint at a time (the trainer's rank 0).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporaries ``.<name>.*.tmp`` that an interrupted save of ``path`` left.

    Called by :func:`save_checkpoint` before it writes and by the trainer when it
    resumes; returns the files removed. Another checkpoint's temporaries (another
    name in the same folder) are left alone.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    # mkstemp's names: the prefix, 8 random characters, the suffix
    for stale in path.parent.glob(f".{glob.escape(path.name)}.????????.tmp"):
        try:
            stale.unlink()
        except FileNotFoundError:  # removed meanwhile
            continue
        removed.append(stale)
    return removed


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train without resume=True first, or fix the path."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointMismatchError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {err}); delete it "
            "and train from scratch."
        ) from err
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointMismatchError(
            f"{path} was not written by companion's trainer (format "
            f"{state.get('format_version') if isinstance(state, dict) else type(state).__name__});"
            " delete it and train from scratch."
        )
    return state


def load_model_state(model: nn.Module, state: dict[str, Any], *, source: str) -> None:
    """Load ``state["model_state"]`` into ``model``, explaining any architecture mismatch."""
    saved_class = state.get("model_class", "?")
    own_class = type(model).__name__
    target = model.state_dict()
    saved = state["model_state"]
    missing = [k for k in target if k not in saved]
    unexpected = [k for k in saved if k not in target]
    reshaped = [
        f"{k}: saved {tuple(saved[k].shape)}, model {tuple(target[k].shape)}"
        for k in target
        if k in saved and tuple(saved[k].shape) != tuple(target[k].shape)
    ]
    if missing or unexpected or reshaped or saved_class != own_class:
        details = "; ".join(
            part
            for part in (
                f"saved from {saved_class}, loading into {own_class}"
                if saved_class != own_class
                else "",
                f"missing {missing[:3]}" if missing else "",
                f"unexpected {unexpected[:3]}" if unexpected else "",
                f"shape mismatch {reshaped[:3]}" if reshaped else "",
            )
            if part
        )
        raise CheckpointMismatchError(
            f"checkpoint {source} does not fit this model ({details}); build the model with "
            "the architecture it was saved from, or train from scratch without resume."
        )
    model.load_state_dict(saved)
