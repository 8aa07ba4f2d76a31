"""The trainer's running means of the loss dict, read from the device in windows.

Reading a tensor into Python waits for the device (a host synchronisation on a
GPU), so a batch's losses stay on the device until a window of batches is read
in one transfer per dtype. Under several processes each window is then summed
over the ranks, batch by batch, before anything is checked or averaged: every
rank sees the values of the global batch, in the same order, and reports a
non-finite value at the same batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

import companion.distributed as distributed

# a batch's keys in order, its numbers, and its tensors stacked per (dtype, device) with their keys
_Snapshot = tuple[list[str], dict[str, float], list[tuple[list[str], torch.Tensor]]]
# one batch as read: (index, size, {key: value})
Row = tuple[int, int, dict[str, float]]


class LossTally:
    """Size-weighted sums of the entries of loss dicts, read from the device in windows.

    ``add`` keeps a batch's tensors on the device (copied, so that a model updating a
    buffer in place cannot change them); ``settle`` reads every pending batch in one
    transfer per dtype and folds them into the sums in batch order, exactly as
    ``float(value) * size`` per batch would, passing each value to ``check`` first.

    With ``per_batch_ranks=True`` and a process group of several ranks, each window's
    batches are first combined over the ranks (:func:`combine_over_ranks`); every rank
    must then add the same number of batches with the same keys, as the trainer's
    sharding guarantees. With ``at_end_ranks=True`` the sums and counts are added over
    the ranks once, in :meth:`means` (for shards of different lengths, as in validation).
    """

    def __init__(
        self,
        name: str,
        check: Callable[[str, float, int], None] | None = None,
        *,
        per_batch_ranks: bool = False,
        at_end_ranks: bool = False,
    ):
        self.name, self.check = name, check
        self.per_batch_ranks = per_batch_ranks and distributed.world_size() > 1
        self.at_end_ranks = at_end_ranks and distributed.world_size() > 1
        self.sums: dict[str, float] = {}
        self.count = 0
        self.pending: list[tuple[int, int, _Snapshot]] = []

    def add(self, index: int, size: int, out: dict[str, Any]) -> None:
        self.pending.append((index, size, _snapshot(out, self.name)))

    def settle(self, *, local: bool = False) -> None:
        """Read the pending batches and fold them in; ``local`` skips the ranks (error paths)."""
        pending, self.pending = self.pending, []
        values = _read([p[2] for p in pending])
        rows = [(index, size, v) for (index, size, _), v in zip(pending, values, strict=True)]
        if self.per_batch_ranks and not local and rows:
            rows = combine_over_ranks(rows)
        for index, size, batch_values in rows:
            for key, value in batch_values.items():
                if self.check is not None:
                    self.check(key, value, index)
                self.sums[key] = self.sums.get(key, 0.0) + value * size
            self.count += size

    def means(self) -> dict[str, float]:
        self.settle()
        if self.at_end_ranks:
            keys = list(self.sums)
            totals = torch.tensor([*(self.sums[k] for k in keys), self.count], dtype=torch.float64)
            distributed.all_reduce_sum(totals)
            self.sums = dict(zip(keys, totals[:-1].tolist(), strict=True))
            self.count = int(totals[-1].item())
        return {key: total / self.count for key, total in self.sums.items()}


def combine_over_ranks(rows: list[Row]) -> list[Row]:
    """Each batch's values over every rank's shard: size-weighted means, sizes added.

    One all-reduce of a float64 (batches, keys + 1) table per window. A batch whose
    value is NaN or inf on any rank is non-finite in the result.
    """
    keys = list(rows[0][2])
    table = torch.tensor(
        [[values[k] * size for k in keys] + [size] for _, size, values in rows],
        dtype=torch.float64,
    )
    distributed.all_reduce_sum(table)
    combined = []
    for (index, _, _), line in zip(rows, table.tolist(), strict=True):
        size = line[-1]
        combined.append((index, int(size), {k: v / size for k, v in zip(keys, line, strict=False)}))
    return combined


def _snapshot(out: dict[str, Any], name: str) -> _Snapshot:
    groups: dict[tuple[torch.dtype, torch.device], list[str]] = {}
    numbers = {}
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(
                    f"{name} returned {key!r} of shape {tuple(value.shape)}; every entry of "
                    "the loss dict must be a scalar, e.g. its .mean()."
                )
            groups.setdefault((value.dtype, value.device), []).append(key)
        else:
            numbers[key] = float(value)
    stacked = [
        (keys, torch.stack([out[k].detach().reshape(()) for k in keys])) for keys in groups.values()
    ]
    return list(out), numbers, stacked


def _read(snapshots: list[_Snapshot]) -> list[dict[str, float]]:
    """The snapshots' values as floats, each key in its batch's order; one transfer per group."""
    values = [dict(numbers) for _, numbers, _ in snapshots]
    groups: dict[tuple[torch.dtype, torch.device], list[tuple[int, list[str], torch.Tensor]]] = {}
    for i, (_, _, stacked) in enumerate(snapshots):
        for keys, tensor in stacked:
            groups.setdefault((tensor.dtype, tensor.device), []).append((i, keys, tensor))
    for items in groups.values():
        flat = iter(torch.cat([tensor for _, _, tensor in items]).tolist())
        for i, keys, _ in items:
            for key in keys:
                values[i][key] = float(next(flat))
    return [{key: values[i][key] for key in keys} for i, (keys, _, _) in enumerate(snapshots)]
