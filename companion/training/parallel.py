"""Data parallelism for the trainer: several processes, one model, a shard of every batch each.

Started by ``torchrun`` (or in a process group the caller initialised), every
process builds the same model and trainer; the trainer then

* joins the process group ``torchrun`` describes (:func:`join_process_group`),
  NCCL for CUDA devices and gloo otherwise, each process on ``cuda:LOCAL_RANK``;
* splits every global batch of ``batch_size`` examples over the ranks
  (:func:`shard_indices`, a seeded :class:`~torch.utils.data.DistributedSampler`
  whose epoch is set each epoch), so that the union of the ranks' batches is
  the one-process batch;
* averages the gradients over the ranks after every backward pass: through
  :class:`~torch.nn.parallel.DistributedDataParallel` around the model's
  ``loss`` (:class:`LossModule`) in the default step, and through hooks on the
  parameters (:class:`GradientAverager`) for a model with its own ``train_step``
  (a GAN), whose backward passes the trainer does not make;
* adds the logged losses over the ranks, prints and writes on rank 0 only.

With the same global batch and seed, the ranks' averaged gradient is the
one-process gradient up to rounding, so a run on N processes follows the
one-process run (the random numbers a model draws, e.g. a VAE's noise, differ:
each rank draws its own). Nothing here imports a model.
"""

from __future__ import annotations

import atexit
import datetime
import warnings
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

import companion.distributed as distributed

SHUFFLE_SEED = 100_003  # the trainer's permutation of epoch e is seeded by seed * this + e


def join_process_group(device: torch.device) -> torch.device:
    """Join the process group ``torchrun`` describes if none is initialised; return the device.

    Without a launch of several processes nothing happens and ``device`` comes back.
    Under one, a CUDA device without an index becomes ``cuda:LOCAL_RANK`` (one GPU per
    process); the group uses NCCL for CUDA and gloo otherwise, and is destroyed at exit.
    """
    several = distributed.launched_distributed() or distributed.world_size() > 1
    if not several:
        return device
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", distributed.local_rank())
        torch.cuda.set_device(device)
    if not distributed.is_distributed():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
        atexit.register(_leave_process_group)
    return device


def _leave_process_group() -> None:
    if distributed.is_distributed():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int, epoch: int | None = None) -> int:
    """The seed of rank ``rank``'s random numbers: ``seed`` on rank 0, independent on the rest.

    With ``epoch`` (a resume under another number of processes), a seed of its own
    for every (seed, rank, epoch).
    """
    if rank == 0 and epoch is None:
        return seed
    entropy = [seed, rank] if epoch is None else [seed, rank, epoch]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def shard_indices(
    n: int, *, seed: int, epoch: int, shuffle: bool, world_size: int, rank: int
) -> torch.Tensor:
    """This rank's indices of an ``n``-example epoch, in order, (ceil(n / world_size),).

    The one-process trainer's permutation (``randperm`` seeded by ``seed * 100003 +
    epoch``) dealt out round-robin by a :class:`DistributedSampler`: taking
    ``batch_size / world_size`` of them at a time, the ranks' k-th batches together
    are the one-process k-th batch. When ``n`` is not a multiple of ``world_size`` the
    sampler repeats the first examples to even the shards.
    """
    sampler = DistributedSampler(
        range(n),
        num_replicas=world_size,
        rank=rank,
        shuffle=shuffle,
        seed=seed * SHUFFLE_SEED,
        drop_last=False,
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.long)


def check_loader_sharded(data: Any, name: str, world_size: int) -> None:
    """Refuse a DataLoader that would give every rank the whole data set."""
    sampler = getattr(data, "sampler", None)
    batch_sampler = getattr(data, "batch_sampler", None)
    if not isinstance(sampler, DistributedSampler):
        sampler = getattr(batch_sampler, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        if sampler.num_replicas != world_size:
            raise ValueError(
                f"{name}'s DistributedSampler splits the data over {sampler.num_replicas} "
                f"processes but {world_size} are running; build it with "
                f"num_replicas={world_size} (the default inside the process group)."
            )
        return
    raise ValueError(
        f"{name} is a {type(data).__name__} without a DistributedSampler, so each of the "
        f"{world_size} processes would train on all of it; pass the data as tensors (the "
        "trainer shards them) or build the loader with sampler=DistributedSampler(dataset, "
        f"seed=...) and batch_size=global_batch // {world_size}."
    )


def set_loader_epoch(data: Any, epoch: int) -> None:
    """``set_epoch(epoch)`` on a loader's sampler that has it (a DistributedSampler)."""
    for sampler in (
        getattr(data, "sampler", None),
        getattr(getattr(data, "batch_sampler", None), "sampler", None),
    ):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
            return


class LossModule(nn.Module):
    """``forward(batch) = model.loss(batch)``, so that DDP sees the loss computed.

    DistributedDataParallel averages gradients only for outputs of its own forward
    call; wrapping the model's ``loss`` this way keeps the model's interface.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> Any:
        return self.model.loss(batch)


def wrap_loss(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    """``model.loss`` behind DDP (rank 0's parameters and buffers are copied to every rank)."""
    device_ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(LossModule(model), device_ids=device_ids)


class GradientAverager:
    """Average every parameter's gradient over the ranks at the end of each backward pass.

    For models with their own ``train_step``: whatever backward passes and optimiser
    steps the step makes, the gradients it clips or steps with are the ranks'
    averages, as DDP's would be. Parameters are reduced in a fixed order in one
    flattened all-reduce per dtype; every rank must run the same backward passes over
    the same parameters (the same step code does). ``remove()`` takes the hooks off.
    """

    def __init__(self, model: nn.Module):
        self.world = distributed.world_size()
        self.order = {id(p): i for i, p in enumerate(model.parameters())}
        self.ready: list[nn.Parameter] = []
        self.queued = False
        self.handles = [  # not on frozen copies (a moving average): they get no gradients
            p.register_post_accumulate_grad_hook(self._accumulated)
            for p in model.parameters()
            if p.requires_grad
        ]

    def _accumulated(self, param: nn.Parameter) -> None:
        self.ready.append(param)
        if not self.queued:
            self.queued = True
            torch.autograd.Variable._execution_engine.queue_callback(self._average)

    def _average(self) -> None:
        params = sorted(self.ready, key=lambda p: self.order[id(p)])
        self.ready, self.queued = [], False
        groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for p in params:
            groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
        for grads in groups.values():
            flat = torch.cat([g.reshape(-1) for g in grads])
            distributed.all_reduce_sum(flat)
            flat /= self.world
            at = 0
            for g in grads:
                g.copy_(flat[at : at + g.numel()].view_as(g))
                at += g.numel()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


def copy_from_rank0(model: nn.Module) -> None:
    """Broadcast rank 0's parameters and buffers to every rank (no-op on one process).

    After the first step of a fit, for models that set parameters from their first
    batch (ActNorm's data-dependent initialisation sees each rank's own shard).
    """
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            distributed.broadcast(tensor.data, src=0)


def broadcast_state(state: Any) -> Any:
    """Rank 0's ``state`` (any picklable object, e.g. a checkpoint) on every rank."""
    if distributed.world_size() == 1:
        return state
    box = [state]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_rng_states() -> list[dict[str, Any]]:
    """Every rank's random state, by rank (a collective: every rank must call it)."""
    own: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        own["cuda"] = torch.cuda.get_rng_state_all()
    if distributed.world_size() == 1:
        return [own]
    states: list[Any] = [None] * distributed.world_size()
    dist.all_gather_object(states, own)
    return states


def warn_other_world_size(path: Any, saved: int, now: int) -> None:
    warnings.warn(
        f"checkpoint {path} was written by {saved} process(es) and is resumed by {now}: "
        "the weights, optimiser state, history and data order carry over (batch_size is the "
        "global batch), but each process draws new random numbers, so the run will not be "
        "bit-identical to an uninterrupted one. Resume with the same number of processes "
        "for that.",
        RuntimeWarning,
        stacklevel=3,
    )
