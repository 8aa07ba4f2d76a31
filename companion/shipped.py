"""Read what ships inside the package: the weights in ``companion/weights/`` (made by the
scripts in ``scripts/``) and the records in ``companion/records/`` (the JSON files the
training scripts and the benchmarks write, which the notebooks show)."""

from __future__ import annotations

import json
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


def record_names() -> list[str]:
    """The names :func:`load_record` accepts: every ``companion/records/<name>.json``."""
    folder = resources.files("companion") / "records"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def load_record(name: str) -> dict:
    """The shipped record ``companion/records/<name>.json`` as a dict.

    ``name`` is a file stem such as ``"gan"`` or ``"vae_nll"`` (see :func:`record_names`).
    Records are written by ``scripts/train_*.py`` (training runs) and ``benchmarks/*.py``
    (benchmark tables); each says what made it. Works from an installed wheel: nothing is
    read from a clone of the repository.
    """
    if not isinstance(name, str) or not name or "/" in name or name.endswith(".json"):
        raise ValueError(f"name={name!r} is not a record name; use one of {record_names()}.")
    path = resources.files("companion") / "records" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no shipped record named {name!r}; the package has {record_names()}."
        )
    return json.loads(path.read_text())
