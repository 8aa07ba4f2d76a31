"""Fitting from chunks: the data as a stream of row blocks, one pass at a time.

PCA's covariance solver, k-means' Lloyd step and EM reduce the data to sums (a
mean and a scatter matrix; per-cluster sums and counts; responsibility-weighted
moments). A streaming fit reads the chunks, adds each one's sums, and never
holds more than one chunk. Under ``torch.distributed`` every rank reads its own
shard and the sums are added over the ranks (:mod:`companion.distributed`), so
every rank ends with the same model.

A *chunk source* is recognised by its type (see :func:`is_chunk_source`):

* a list or tuple of 2-D arrays, tensors or DataFrames (a list of 1-D rows is
  still an ordinary in-memory matrix);
* a ``torch.utils.data.DataLoader`` (a batch ``(x, y)`` counts as ``x``);
* a callable with no arguments that returns a fresh iterator of chunks;
* a one-shot iterator (a generator), for PCA only, which needs one pass.

The first chunk sets the dtype, device and kind (NumPy or torch) of the results,
as an in-memory X does. Chunks may have 0 rows; every chunk must have as many
columns as the first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import companion.distributed as distributed
from companion._validation import InputKind, batch_inputs

# Rows kept (over all ranks together) to start k-means and EM from a chunk source:
# k-means++ or random centres, and EM's first responsibilities, are drawn from this
# uniform reservoir sample. With n <= INIT_SAMPLE_ROWS the sample is the data, in
# order, so the start is the in-memory fit's.
INIT_SAMPLE_ROWS = 10_000
# Smaller chunks are concatenated into blocks of this many rows before the work.
BLOCK_ROWS = 4096


def is_chunk_source(X: Any) -> bool:
    """Whether ``X`` is a stream of chunks rather than one in-memory matrix."""
    if isinstance(X, (np.ndarray, torch.Tensor)) or hasattr(X, "__array__"):
        return False
    if isinstance(X, torch.utils.data.DataLoader) or isinstance(X, Iterator):
        return True
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and all(getattr(chunk, "ndim", None) == 2 for chunk in X)
    return callable(X)


class ChunkSource:
    """Re-iterable view of a chunk source: each ``iter()`` is one pass over the data."""

    def __init__(self, source: Any, *, estimator: str, passes: str = "many"):
        if isinstance(source, Iterator) and passes == "many":
            raise TypeError(
                f"{estimator} reads the data once per iteration, but X is a one-shot "
                f"iterator ({type(source).__name__}); pass a list of chunks, a DataLoader, or "
                "a function that returns a fresh iterator, e.g. fit(lambda: read_chunks(path))."
            )
        self.source = source
        self.estimator = estimator
        self._used = False

    def __iter__(self) -> Iterator[Any]:
        source = self.source
        if isinstance(source, Iterator):
            if self._used:
                raise TypeError("a one-shot iterator of chunks can be read only once.")
            self._used = True
            chunks: Iterable[Any] = source
        elif isinstance(source, (list, tuple, torch.utils.data.DataLoader)):
            chunks = source
        else:
            chunks = source()
            if not isinstance(chunks, Iterable):
                raise TypeError(
                    f"the chunk source {source!r} returned {type(chunks).__name__}, not an "
                    "iterator of chunks; make it return one, e.g. `lambda: iter(chunks)`."
                )
        for chunk in chunks:
            yield batch_inputs(chunk)


def shared_seed(random_state: int | None) -> int:
    """The estimator's seed, the same on every rank (rank 0's draw when ``random_state=None``)."""
    from companion.runtime import resolve_seed

    seed = torch.tensor([resolve_seed(random_state)], dtype=torch.int64)
    return int(distributed.broadcast(seed, src=0))


def agree(error: BaseException | None, what: str) -> None:
    """Raise on every rank when any rank failed, so that none waits for the others forever.

    Call it where every rank arrives, with the exception this rank caught (or None):
    the rank that failed raises its own error, the others a RuntimeError naming it.
    """
    if distributed.world_size() == 1:
        if error is not None:
            raise error
        return
    failed = torch.zeros(distributed.world_size(), dtype=torch.float64)
    failed[distributed.rank()] = float(error is not None)
    distributed.all_reduce_sum(failed)
    if error is not None:
        raise error
    if bool(failed.any()):
        ranks = torch.nonzero(failed).flatten().tolist()
        raise RuntimeError(f"{what} failed on rank(s) {ranks}; the error is in that rank's output.")


class Moments:
    """Count, mean (d,) and scatter Σ(x - mean)(x - mean)ᵀ of rows, in float64.

    Chunks are merged by Chan, Golub and LeVeque's update, so nothing cancels:
    each chunk is centred on its own mean first. ``full=False`` keeps only the
    diagonal of the scatter (per-feature sums of squares), (d,).
    """

    def __init__(self, n_features: int, device: torch.device, *, full: bool = True):
        self.n = 0
        self.full = full
        self.mean = torch.zeros(n_features, dtype=torch.float64, device=device)
        shape = (n_features, n_features) if full else (n_features,)
        self.scatter = torch.zeros(shape, dtype=torch.float64, device=device)

    def add(self, X: torch.Tensor) -> None:
        """Merge the rows of X (m, d) (any float dtype; summed in float64)."""
        m = X.shape[0]
        if m == 0:
            return
        Y = X.to(torch.float64)
        Y = Y.clone() if Y.data_ptr() == X.data_ptr() else Y  # centred in place below
        chunk_mean = Y.mean(0)
        Y -= chunk_mean
        delta = chunk_mean - self.mean
        total = self.n + m
        weight = self.n * m / total
        if self.full:
            self.scatter += Y.T @ Y
            self.scatter += weight * torch.outer(delta, delta)
        else:
            self.scatter += (Y * Y).sum(0) + weight * delta * delta
        self.mean += delta * (m / total)
        self.n = total

    def reduced(self) -> tuple[int, torch.Tensor, torch.Tensor]:
        """(n, mean, scatter) over every rank: sums of the ranks' moments about the global mean."""
        if distributed.world_size() == 1:
            return self.n, self.mean.clone(), self.scatter.clone()
        sums = torch.cat(
            [torch.tensor([float(self.n)], device=self.mean.device), self.n * self.mean]
        )
        distributed.all_reduce_sum(sums)
        n = int(round(float(sums[0])))
        mean = sums[1:] / max(n, 1)
        delta = self.mean - mean
        shift = torch.outer(delta, delta) if self.full else delta * delta
        scatter = distributed.all_reduce_sum(self.scatter + self.n * shift)
        return n, mean, scatter


class Reservoir:
    """A uniform sample of at most ``size`` rows of a stream (Vitter's algorithm R).

    Row i (counting from 0) fills slot i while i < size, then replaces slot
    floor(u_i (i + 1)) when that is below size, u_i uniform from a NumPy generator
    that draws one number per row: the sample depends on the rows and the seed,
    not on how the stream is cut into chunks.
    """

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seen = 0
        self.rows: torch.Tensor | None = None
        self._rng = np.random.default_rng([seed, distributed.rank()])

    def add(self, X: torch.Tensor) -> None:
        m = X.shape[0]
        if m == 0 or self.size == 0:
            return
        if self.rows is None:
            self.rows = torch.empty(self.size, X.shape[1], dtype=X.dtype, device=X.device)
        index = np.arange(self.seen, self.seen + m)
        fill = index < self.size
        if fill.any():
            self.rows[index[fill]] = X[torch.from_numpy(np.nonzero(fill)[0]).to(X.device)]
        rest = np.nonzero(~fill)[0]
        if len(rest):
            slots = np.floor(self._rng.random(len(rest)) * (index[rest] + 1)).astype(np.int64)
            keep = slots < self.size
            slots, rows = slots[keep], rest[keep]
            # a slot hit twice in one chunk keeps the later row, as row-by-row replacement would
            _, last = np.unique(slots[::-1], return_index=True)
            chosen = len(slots) - 1 - last
            self.rows[torch.from_numpy(slots[chosen]).to(X.device)] = X[
                torch.from_numpy(rows[chosen]).to(X.device)
            ]
        self.seen += m

    def local(self) -> torch.Tensor | None:
        """This rank's sampled rows (None before any row)."""
        return None if self.rows is None else self.rows[: min(self.seen, self.size)]


def gather_rows(local: torch.Tensor) -> torch.Tensor:
    """Every rank's ``local`` rows, concatenated in rank order, on every rank."""
    if distributed.world_size() == 1:
        return local
    sizes = torch.zeros(distributed.world_size(), dtype=torch.float64)
    sizes[distributed.rank()] = local.shape[0]
    sizes = [int(c) for c in distributed.all_reduce_sum(sizes).tolist()]
    buffer = torch.zeros(sum(sizes), local.shape[1], dtype=local.dtype, device=local.device)
    start = sum(sizes[: distributed.rank()])
    buffer[start : start + local.shape[0]] = local
    return distributed.all_reduce_sum(buffer)


class Blocks:
    """The checked chunks of one pass, gathered into blocks of at least ``BLOCK_ROWS`` rows.

    Each chunk is checked on its own (errors name it), converted to the first
    chunk's dtype and device, and small chunks are concatenated, so that a stream
    of single rows costs what a stream of blocks does: per-call overheads (and
    thread wake-ups) are paid per block. A chunk of ``BLOCK_ROWS`` rows or more
    passes through uncopied. ``kind``, ``n_features`` and ``rows`` are known
    once the pass has started / ended.
    """

    def __init__(self, chunks: ChunkSource, check: Callable, kind: InputKind | None = None):
        self.chunks, self.check, self.kind = chunks, check, kind
        self.n_features, self.rows = 0, 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        pending: list[torch.Tensor] = []
        waiting = 0
        first = self.kind is None
        for index, raw in enumerate(self.chunks):
            X, kind = self.check(raw, f"chunk {index} of X", first)
            if first:
                self.kind, self.n_features, first = kind, X.shape[1], False
            X = X.to(dtype=self.kind.dtype, device=self.kind.device)
            self.rows += X.shape[0]
            if X.shape[0] >= BLOCK_ROWS:
                if pending:
                    yield torch.cat(pending)
                    pending, waiting = [], 0
                yield X
                continue
            pending.append(X)
            waiting += X.shape[0]
            if waiting >= BLOCK_ROWS:
                yield torch.cat(pending)
                pending, waiting = [], 0
        if pending:
            yield torch.cat(pending)


@dataclass
class Survey:
    """What a first pass over the chunks learned."""

    n_samples: int  # over every rank
    n_local: int  # this rank's
    n_features: int
    kind: InputKind
    moments: Moments | None  # this rank's; ``moments.reduced()`` sums over the ranks
    sample: torch.Tensor | None  # the reservoir sample of every rank (None if not asked for)


def survey(
    chunks: ChunkSource,
    check: Callable[[Any, str, bool], tuple[torch.Tensor, InputKind]],
    *,
    moments: str | None = None,
    sample_rows: int = 0,
    seed: int = 0,
) -> Survey:
    """One pass: validate every chunk, count the rows, and gather moments and a sample.

    ``check(raw_chunk, name, first)`` validates one chunk (``first`` for the first
    chunk of the stream, which sets the estimator's ``n_features_in_``). Errors on
    any rank are raised on every rank (:func:`agree`).
    """
    stats, error = None, None
    reservoir = Reservoir(math.ceil(sample_rows / distributed.world_size()), seed)
    blocks = Blocks(chunks, check)
    try:
        for X in blocks:
            if stats is None and moments is not None:
                stats = Moments(X.shape[1], X.device, full=moments == "full")
            if stats is not None:
                stats.add(X)
            reservoir.add(X)
        if blocks.kind is None:
            raise ValueError(
                f"X gave no chunks{_on_rank()}; a chunk source must yield at least one "
                "chunk of shape (n_rows, n_features)."
            )
    except Exception as err:  # every rank must learn of it, or the others wait forever
        error = err
    agree(error, "reading the chunks")
    n, d, kind = blocks.rows, blocks.n_features, blocks.kind
    sizes = torch.tensor([d, -d], dtype=torch.float64)
    distributed.all_reduce_max(sizes)
    if sizes[0] != -sizes[1]:
        raise ValueError(
            f"the ranks' chunks have different widths (from {int(-sizes[1])} to "
            f"{int(sizes[0])} features); every rank must read the same columns."
        )
    total = int(distributed.all_reduce_sum(torch.tensor([float(n)], dtype=torch.float64)))
    sample = None
    if sample_rows:
        local = reservoir.local()
        if local is None:
            local = torch.empty(0, d, dtype=kind.dtype, device=kind.device)
        sample = gather_rows(local)
    return Survey(total, n, d, kind, stats, sample)


def _on_rank() -> str:
    return f" on rank {distributed.rank()}" if distributed.world_size() > 1 else ""


def read_pass(
    chunks: ChunkSource,
    check: Callable[[Any, str, bool], tuple[torch.Tensor, InputKind]],
    found: Survey,
    step: Callable[[torch.Tensor], None],
) -> None:
    """A later pass: ``step(X)`` on every chunk, checked and in the first chunk's dtype and device.

    The pass must read as many rows as the survey did (the source must not change
    between passes). Errors on any rank are raised on every rank.
    """
    blocks, error = Blocks(chunks, check, found.kind), None
    try:
        for X in blocks:
            step(X)
        if blocks.rows != found.n_local:
            raise ValueError(
                f"the chunk source gave {found.n_local} rows{_on_rank()} on the first pass but "
                f"{blocks.rows} on a later one; a streaming fit reads the data once per "
                "iteration and needs the same rows every time."
            )
    except Exception as err:  # every rank must learn of it, or the others wait forever
        error = err
    agree(error, "a pass over the chunks")
