"""Batches for the trainer: tensor data (a tensor or a tuple of tensors sharing their
first dimension) cut into shuffled batches on a device, sharded over the processes
under ``torch.distributed``, or an iterable (a DataLoader) passed through."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from companion.training import parallel

Batch = Any  # a tensor or a tuple of tensors sharing their first dimension


def iterate(
    data: Any,
    *,
    batch_size: int,
    shuffle: bool,
    epoch: int,
    seed: int,
    world_size: int = 1,
    rank: int = 0,
    device: torch.device | None = None,
) -> Iterable[Batch]:
    """Yield the batches of one epoch; tensor data is shuffled by (``seed``, ``epoch``).

    Under several processes each yields its share (``batch_size // world_size`` rows)
    of every global batch (see :mod:`companion.training.parallel`). Tensor data stays
    where it is (the trainer moved it to the device once); the batches of an iterable
    are moved to ``device``.
    """
    if is_tensors(data) and world_size > 1:
        tensors = as_tuple(data)
        order = parallel.shard_indices(
            tensors[0].shape[0], seed=seed, epoch=epoch, shuffle=shuffle,
            world_size=world_size, rank=rank,
        ).to(tensors[0].device)  # fmt: skip
        for start in range(0, len(order), batch_size // world_size):
            idx = order[start : start + batch_size // world_size]
            batch = tuple(t[idx] for t in tensors)
            yield batch[0] if isinstance(data, torch.Tensor) else batch
    elif is_tensors(data):
        tensors = as_tuple(data)
        n = tensors[0].shape[0]
        if shuffle:
            generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
            order = torch.randperm(n, generator=generator).to(tensors[0].device)
        else:
            order = torch.arange(n, device=tensors[0].device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            batch = tuple(t[idx] for t in tensors)
            yield batch[0] if isinstance(data, torch.Tensor) else batch
    else:
        parallel.set_loader_epoch(data, epoch)
        for batch in data:
            yield to_device(batch, device) if device is not None else batch


def is_tensors(data: Any) -> bool:
    return isinstance(data, torch.Tensor) or is_tensor_tuple(data)


def as_tuple(data: Any) -> tuple[torch.Tensor, ...]:
    """Tensor data as a tuple of tensors: ``(data,)`` for one tensor."""
    return (data,) if isinstance(data, torch.Tensor) else tuple(data)


def is_tensor_tuple(data: Any) -> bool:
    return (
        isinstance(data, (tuple, list))
        and len(data) > 0
        and all(isinstance(t, torch.Tensor) for t in data)
    )


def to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    return batch


def batch_size(batch: Batch) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0])


def length(data: Any) -> int:
    return int((data if isinstance(data, torch.Tensor) else data[0]).shape[0])


def plain(data: Any, batch_size: int) -> Iterable[Batch]:
    """Tensor data in order, ``batch_size`` rows at a time."""
    for start in range(0, length(data), batch_size):
        if isinstance(data, torch.Tensor):
            yield data[start : start + batch_size]
        else:
            yield tuple(t[start : start + batch_size] for t in data)


def count(data: Any, batch_size: int, world_size: int = 1) -> int | str:
    """Batches per epoch (per rank: the shards are ceil(n / world_size) long)."""
    if is_tensors(data):
        return math.ceil(math.ceil(length(data) / world_size) / (batch_size // world_size))
    try:
        return len(data)
    except TypeError:
        return "?"
