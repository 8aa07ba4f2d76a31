"""Several processes, one model: the few ``torch.distributed`` calls the package makes.

Everything here works without a process group: on one process ``rank()`` is 0,
``world_size()`` is 1 and the collectives return their input untouched, so code
written for several processes runs unchanged on one. A process group is
initialised by the caller (``torch.distributed.init_process_group``) or by
``torchrun``; nothing here starts one.

Used by the classical estimators (their sufficient statistics are summed over
the ranks' shards) and by the Trainer (which wraps the model for data
parallelism). No training code lives here.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialised in this process."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the process group; 0 without one."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """How many processes share the work; 1 without a process group."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (and on a single process): the one that prints and writes files."""
    return rank() == 0


def launched_distributed() -> bool:
    """Whether a launcher (``torchrun``) started this process as one of several.

    Read from the environment variables ``torchrun`` sets (``WORLD_SIZE`` > 1 and
    ``RANK``), whether or not a process group has been initialised yet.
    """
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return False
    return size > 1 and "RANK" in os.environ


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``, set by ``torchrun``); 0 without it."""
    try:
        return int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return 0


def _collective_device(tensor: torch.Tensor) -> torch.device:
    """Where the backend wants the tensor: NCCL reduces only CUDA tensors, gloo any."""
    if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return tensor.device


def _reduce(tensor: torch.Tensor, op: dist.ReduceOp) -> torch.Tensor:
    if not is_distributed() or world_size() == 1:
        return tensor
    device = _collective_device(tensor)
    buffer = tensor.detach().to(device).contiguous()
    dist.all_reduce(buffer, op=op)
    if buffer.data_ptr() != tensor.data_ptr():
        tensor.copy_(buffer)
    return tensor


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over every rank, in place, and return it (every rank gets the sum).

    Without a process group (or with one process) it returns ``tensor`` untouched.
    The dtype is kept: float64 sums are reduced as float64. A CPU tensor under the
    NCCL backend travels through the current CUDA device and comes back.
    """
    return _reduce(tensor, dist.ReduceOp.SUM)


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum of ``tensor`` over every rank, in place (a no-op on one process)."""
    return _reduce(tensor, dist.ReduceOp.MAX)


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Copy rank ``src``'s ``tensor`` into every rank's, in place; returns it.

    Every rank passes a tensor of the same shape and dtype. A no-op on one process.
    """
    if not is_distributed() or world_size() == 1:
        return tensor
    device = _collective_device(tensor)
    buffer = tensor.detach().to(device).contiguous()
    dist.broadcast(buffer, src=src)
    if buffer.data_ptr() != tensor.data_ptr():
        tensor.copy_(buffer)
    return tensor


def barrier() -> None:
    """Wait until every rank gets here (a no-op on one process)."""
    if is_distributed() and world_size() > 1:
        dist.barrier()
