"""One trainer for every deep model of the book.

A model is an ``nn.Module`` with ``loss(batch) -> dict`` whose ``"loss"``
entry is the scalar to minimise; other entries (reconstruction, KL, ...) are
averaged per epoch into the history. Models that need their own update, such
as GANs with two optimisers, define

* ``configure_optimizers(lr) -> dict[str, torch.optim.Optimizer]`` and
* ``train_step(batch, optimizers) -> dict[str, Tensor | float]``,

and the trainer calls those instead of its default single-optimiser step.
The trainer owns devices, seeding, batching, progress, history, checkpoints
and the NaN check; it never imports a model.

A model may also define ``check_input(data)``: the trainer calls it once per
fit on the whole training and validation data (in the form of a batch: a
tensor or a tuple of tensors) and then runs the batches inside
:func:`companion._validation.values_checked`, so that the model's per-batch
value scans, each a host synchronisation on a GPU, are skipped.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

import companion.distributed as distributed
from companion._validation import check_finite, check_positive_int, values_checked
from companion.errors import TrainingDivergedError
from companion.runtime import resolve_device, seed_everything
from companion.training import batches as batching
from companion.training import parallel
from companion.training.batches import Batch
from companion.training.checkpoint import (
    load_checkpoint,
    load_model_state,
    remove_stale_temporaries,
    save_checkpoint,
)
from companion.training.tally import LossTally

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]

DEFAULT_LR = 1e-3
READ_EVERY = 50  # batches between two reads of the losses from the device (host syncs)


class Trainer:
    """Fit a model by minibatch gradient descent.

    Parameters
    ----------
    model : nn.Module
        Defines ``loss(batch) -> {"loss": scalar, ...}`` (or its own step, see above).
    epochs : int
        Total number of passes over the data (a resumed run continues up to it).
    batch_size : int
    lr : float, optional
        Learning rate of the default Adam optimiser, or the one passed to the
        model's ``configure_optimizers(lr)``; None means 1e-3. Kept as
        ``trainer.lr``; with ``optimizer=``, ``trainer.lr`` is read from the
        optimiser built (its first parameter group).
    optimizer : callable, optional
        ``params -> Optimizer`` to use instead of Adam, e.g.
        ``functools.partial(torch.optim.SGD, lr=0.1)``; it sets its own
        learning rate.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), or any torch device.
    seed : int
        Seeds every generator at the start of ``fit``; the data order of
        epoch ``e`` depends only on ``(seed, e)``.
    checkpoint_path : path, optional
        Where to save the state after every ``checkpoint_every`` epochs.
    checkpoint_every : int or None
        Save after epochs ``checkpoint_every``, ``2 * checkpoint_every``, ...
        (counted from 1) and after the last; None saves after the last only.
    batch_transform : callable, optional
        Applied to every training batch on the device (e.g. dynamic binarisation).
    callbacks : sequence
        Objects with optional ``on_epoch_start(trainer, epoch)`` and
        ``on_epoch_end(trainer, epoch, logs)`` methods (e.g. KL warm-up).
    grad_clip : float, optional
        Clip the norm of all the gradients together to this value in the
        default step, before the optimiser's step.
    progress : bool
        Show a tqdm progress bar over epochs.

    Raises
    ------
    ValueError
        For options the trainer would otherwise ignore, with the fix:

        * ``optimizer=`` for a model that defines ``configure_optimizers``
          (the trainer uses the model's optimisers);
        * ``lr=`` together with ``optimizer=`` (the factory sets its own rate);
        * ``grad_clip=`` for a model that defines its own ``train_step``
          (the trainer does not step it, so it cannot clip);
        * ``checkpoint_every`` other than 1 or None without ``checkpoint_path``;

        and for values it cannot use: ``epochs``, ``batch_size`` or
        ``checkpoint_every`` below 1, a ``lr`` or ``grad_clip`` that is not
        positive, and a ``configure_optimizers`` without ``train_step`` that
        returns no ``"model"`` optimiser (the one the default step uses).
    TypeError
        For ``epochs``, ``batch_size`` or ``checkpoint_every`` that are not
        integers (a float or a bool included; ``checkpoint_every`` may be
        None), and an ``optimizer`` that is not callable.

    Notes
    -----
    The losses stay on the device during an epoch: the trainer reads them
    every 50 batches and at the end of the epoch, not after every batch (a
    host synchronisation each on a GPU). A non-finite value is still
    reported with the epoch and batch where it first appeared, but the
    batches up to that read have run (and updated the weights) by then.

    Under ``torchrun`` (or in a process group the caller initialised) every
    process runs the same code: ``batch_size`` is the global batch, split over
    the processes; gradients are averaged, losses summed over the processes,
    and only rank 0 shows progress and writes checkpoints
    (:mod:`companion.training.parallel`). ``fit``, ``evaluate`` and ``save``
    must then be called on every rank.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        epochs: int = 10,
        batch_size: int = 128,
        lr: float | None = None,
        optimizer: OptimizerFactory | None = None,
        device: str | torch.device = "auto",
        seed: int = 0,
        checkpoint_path: str | Path | None = None,
        checkpoint_every: int | None = 1,
        batch_transform: Callable[[Batch], Batch] | None = None,
        callbacks: Sequence[Any] = (),
        grad_clip: float | None = None,
        progress: bool = True,
    ):
        if not hasattr(model, "loss") and not hasattr(model, "train_step"):
            raise TypeError(
                f"{type(model).__name__} has neither loss(batch) nor train_step(batch, "
                "optimizers); define loss(batch) returning {'loss': scalar, ...}."
            )
        check_positive_int(epochs, name="epochs")
        check_positive_int(batch_size, name="batch_size")
        if checkpoint_every is not None:
            check_positive_int(
                checkpoint_every,
                name="checkpoint_every",
                hint=" (save every that many epochs) or None (save after the last epoch only)",
            )
        if lr is not None and not lr > 0:
            raise ValueError(f"lr={lr} must be positive, e.g. lr=1e-3.")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(
                f"grad_clip={grad_clip} must be positive (the largest gradient norm), or None."
            )
        if optimizer is not None and not callable(optimizer):
            raise TypeError(
                f"optimizer must be a callable params -> Optimizer, got "
                f"{type(optimizer).__name__}; e.g. functools.partial(torch.optim.SGD, lr=0.1)."
            )
        _reject_ignored_options(
            model,
            lr=lr,
            optimizer=optimizer,
            grad_clip=grad_clip,
            checkpoint_path=checkpoint_path,
            checkpoint_every=checkpoint_every,
        )
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = DEFAULT_LR if lr is None else lr
        self.device = parallel.join_process_group(resolve_device(device))
        self.world_size, self.rank = distributed.world_size(), distributed.rank()
        if batch_size % self.world_size:
            raise ValueError(
                f"batch_size={batch_size} cannot be split evenly over {self.world_size} "
                f"processes; batch_size is the global batch (each process takes "
                f"batch_size / {self.world_size}), so use a multiple of {self.world_size}, "
                f"e.g. {batch_size + self.world_size - batch_size % self.world_size}."
            )
        self.seed = seed
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.checkpoint_every = checkpoint_every
        self.batch_transform = batch_transform
        self.callbacks = list(callbacks)
        self.grad_clip = grad_clip
        self.progress = progress
        self.model.to(self.device)
        self._custom_optimizer = optimizer is not None
        if hasattr(model, "configure_optimizers"):
            self.optimizers = dict(model.configure_optimizers(self.lr))
            if "model" not in self.optimizers and not hasattr(model, "train_step"):
                raise ValueError(
                    f"{type(model).__name__}.configure_optimizers() returned "
                    f"{sorted(self.optimizers)}, but without a train_step of its own the "
                    "trainer steps the optimiser named 'model'; return {'model': optimizer} "
                    "or define train_step(batch, optimizers)."
                )
        elif optimizer is not None:
            self.optimizers = {"model": optimizer(model.parameters())}
            self.lr = _first_lr(self.optimizers["model"])
        else:
            self.optimizers = {"model": torch.optim.Adam(model.parameters(), lr=self.lr)}
        self.history: dict[str, list[float]] = {}
        self.epoch = 0  # epochs completed
        self._loss = model.loss if hasattr(model, "loss") else None  # DDP's forward in a fit

    @property
    def is_main_process(self) -> bool:
        """True on rank 0 (and on one process): the process that prints and writes files."""
        return self.rank == 0

    # ------------------------------------------------------------------ data
    def _batches(self, data: Any, *, shuffle: bool, epoch: int) -> Iterable[Batch]:
        """Yield batches on the device; tensors are shuffled by (seed, epoch)."""
        return batching.iterate(
            data, batch_size=self.batch_size, shuffle=shuffle, epoch=epoch, seed=self.seed,
            world_size=self.world_size, rank=self.rank, device=self.device,
        )  # fmt: skip

    def _prepare(self, data: Any, name: str, *, model_check: bool = True) -> Any:
        """Move tensor data to the device once and reject NaN/inf before training.

        Then, with ``model_check``, ``model.check_input(data)`` on the moved data where
        the model has one (not for training data that ``batch_transform`` changes).
        """
        if batching.is_tensors(data):
            tensors = batching.as_tuple(data)
            n = tensors[0].shape[0]
            if n == 0:
                raise ValueError(f"{name} is empty; give at least one example.")
            for i, t in enumerate(tensors):
                if t.shape[0] != n:
                    raise ValueError(
                        f"{name}[{i}] has {t.shape[0]} rows but {name}[0] has {n}; "
                        "the tensors of a data tuple must have the same length."
                    )
                if t.is_floating_point():
                    check_finite(t, name=name if len(tensors) == 1 else f"{name}[{i}]")
            moved = tuple(t.to(self.device) for t in tensors)
            prepared = moved[0] if isinstance(data, torch.Tensor) else moved
            check_input = getattr(self.model, "check_input", None)
            if model_check and callable(check_input):
                check_input(prepared)
            return prepared
        if isinstance(data, Iterable) and not isinstance(data, (str, bytes, np.ndarray)):
            return data
        if isinstance(data, np.ndarray):
            raise TypeError(
                f"{name} is a NumPy array; convert it with torch.from_numpy({name}) or "
                f"torch.as_tensor({name}, dtype=torch.float32)."
            )
        raise TypeError(
            f"{name} must be a tensor, a tuple of tensors or an iterable of batches "
            f"(e.g. a DataLoader), got {type(data).__name__}."
        )

    # ------------------------------------------------------------------ steps
    def train_step(self, batch: Batch) -> dict[str, Any]:
        """One update; the model's own ``train_step`` replaces this when it has one.

        A non-finite loss is not looked at here (on a GPU that would wait for the
        device): ``fit`` reports it with its epoch and batch.
        """
        if hasattr(self.model, "train_step"):
            return self.model.train_step(batch, self.optimizers)
        optimizer = self.optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        out = _check_loss_dict(self._loss(batch), type(self.model).__name__)
        out["loss"].backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        optimizer.step()
        return out

    def evaluate(self, data: Any) -> dict[str, float]:
        """Average of ``model.loss`` over ``data`` in eval mode (no transform, no shuffle).

        Under several processes every rank must call it: each evaluates a shard of
        tensor data and the sums are added over the ranks.
        """
        return self._evaluate(self._prepare(data, "val_data"))

    @torch.no_grad()
    def _evaluate(self, data: Any) -> dict[str, float]:
        """:meth:`evaluate` on data already through :meth:`_prepare` (read once at the end)."""
        name = type(self.model).__name__
        was_training = self.model.training
        self.model.eval()
        sharded = batching.is_tensors(data) and 1 < self.world_size <= batching.length(data)
        if sharded:  # rank r takes examples r, r + W, ...: no example twice
            tensors = batching.as_tuple(data)
            shard = tuple(t[self.rank :: self.world_size] for t in tensors)
            data = shard[0] if isinstance(data, torch.Tensor) else shard
        tally = LossTally(name, at_end_ranks=sharded)
        try:
            with _values_checked_if(batching.is_tensors(data)):
                batches = (
                    self._batches(data, shuffle=False, epoch=0)
                    if not sharded
                    else (batching.plain(data, self.batch_size))
                )
                for index, batch in enumerate(batches):
                    tally.add(
                        index,
                        batching.batch_size(batch),
                        _check_loss_dict(self.model.loss(batch), name),
                    )
        finally:
            self.model.train(was_training)
        return tally.means()

    # ------------------------------------------------------------------ loop
    def fit(self, train_data: Any, val_data: Any = None, *, resume: bool = False) -> dict:
        """Train up to ``epochs`` and return the history (also kept in ``self.history``).

        ``history[key][e]`` is the mean of ``key`` over epoch ``e``'s batches;
        validation entries are prefixed with ``val_``. With ``resume=True``
        and an existing checkpoint, training continues exactly where it
        stopped (same data order, same random numbers).

        Tensor data (training and validation) is moved to the device and
        checked once per fit: a NaN/inf scan, then ``model.check_input(data)``
        where the model defines it; its batches then run inside
        ``values_checked()``, so the model skips its per-batch value scans.
        Training data changed by ``batch_transform`` is scanned for NaN/inf
        only, and its batches are checked by the model as they come, as are
        the batches of an iterable (a DataLoader).
        """
        train_data = self._prepare(
            train_data, "train_data", model_check=self.batch_transform is None
        )
        if val_data is not None:
            val_data = self._prepare(val_data, "val_data")  # once, not every epoch
        if self.world_size > 1 and not batching.is_tensors(train_data):
            parallel.check_loader_sharded(train_data, "train_data", self.world_size)
        # The whole data set was checked: batches need no value scans of their own, unless
        # batch_transform makes them something else than the data checked.
        train_checked = batching.is_tensors(train_data) and self.batch_transform is None
        state = self._read_for_resume() if resume and self.checkpoint_path is not None else None
        if state is not None:
            self._restore(state, self.checkpoint_path)
        else:
            seed_everything(parallel.rank_seed(self.seed, self.rank))
        name = type(self.model).__name__
        bar = tqdm(
            range(self.epoch, self.epochs),
            initial=self.epoch,
            total=self.epochs,
            desc=f"training {name}",
            disable=not (self.progress and self.is_main_process),
        )
        self._join_ranks()
        try:
            for epoch in bar:
                logs = self._epoch(epoch, train_data, val_data, train_checked)
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "seconds"})
                for callback in self.callbacks:
                    if hasattr(callback, "on_epoch_end"):
                        callback.on_epoch_end(self, epoch, logs)
                if self.checkpoint_path is not None and (
                    self.epoch == self.epochs
                    or (
                        self.checkpoint_every is not None
                        and self.epoch % self.checkpoint_every == 0
                    )
                ):
                    self.save(self.checkpoint_path)
        finally:
            self._leave_ranks()
        bar.close()
        return self.history

    def _epoch(self, epoch: int, train_data: Any, val_data: Any, train_checked: bool) -> dict:
        """One pass over the training data (and the validation data); returns its logs."""
        for callback in self.callbacks:
            if hasattr(callback, "on_epoch_start"):
                callback.on_epoch_start(self, epoch)
        self.model.train()
        started = time.perf_counter()
        n_batches = batching.count(train_data, self.batch_size, self.world_size)
        tally = LossTally(
            type(self.model).__name__,
            check=self._divergence_check(epoch, n_batches),
            per_batch_ranks=True,
        )
        batches = self._batches(train_data, shuffle=True, epoch=epoch)
        index = 0
        try:
            with _values_checked_if(train_checked):
                for index, batch in enumerate(batches):
                    if self.batch_transform is not None:
                        batch = self.batch_transform(batch)
                    tally.add(index, batching.batch_size(batch), self.train_step(batch))
                    if index == 0 and self._first_step_pending:
                        parallel.copy_from_rank0(self.model)  # data-dependent initialisations
                        self._first_step_pending = False
                    if len(tally.pending) >= READ_EVERY:
                        tally.settle()  # one host synchronisation per READ_EVERY batches
        except TrainingDivergedError:
            raise
        except Exception as error:
            try:  # an earlier batch of the window diverged: that came first
                tally.settle(local=True)  # no collective: the other ranks may be elsewhere
            except TrainingDivergedError as diverged:
                raise diverged from error
            except Exception:
                pass
            if self.world_size > 1:
                error.add_note(
                    f"rank {self.rank} of {self.world_size} stopped at epoch {epoch + 1}, batch "
                    f"{index + 1}; if another rank failed first, its error is the cause "
                    "(torchrun prints it as the root cause)."
                )
            raise
        logs = tally.means()
        if val_data is not None:
            logs.update({f"val_{k}": v for k, v in self._evaluate(val_data).items()})
        logs["seconds"] = time.perf_counter() - started
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        self.epoch = epoch + 1
        return logs

    def _join_ranks(self) -> None:
        """Under several processes: average the gradients over the ranks during this fit."""
        self._first_step_pending = False
        self._averager = None
        self._loss = self.model.loss if hasattr(self.model, "loss") else None
        if self.world_size == 1:
            return
        self._first_step_pending = self.epoch < self.epochs
        if hasattr(self.model, "train_step"):
            parallel.copy_from_rank0(self.model)
            self._averager = parallel.GradientAverager(self.model)
        else:
            self._loss = parallel.wrap_loss(self.model, self.device)

    def _leave_ranks(self) -> None:
        if self._averager is not None:
            self._averager.remove()
        self._averager = None
        self._loss = self.model.loss if hasattr(self.model, "loss") else None

    def _divergence_check(
        self, epoch: int, n_batches: int | str
    ) -> Callable[[str, float, int], None]:
        """A check of one value read from the device, naming its epoch and batch."""
        name = type(self.model).__name__
        if hasattr(self.model, "train_step"):
            advice = f"lower the learning rate, clip the gradients in {name}.train_step"
        else:
            advice = "lower the learning rate, set grad_clip"

        def check(key: str, value: float, index: int) -> None:
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"{key} became {value} at epoch {epoch + 1} of {self.epochs}, "
                    f"batch {index + 1} of {n_batches} ({name}, {self._rates_in_use()}); "
                    f"{advice}, or check the data for NaN/inf."
                )

        return check

    def _rates_in_use(self) -> str:
        """The optimisers' learning rates now, e.g. ``lr=0.001`` (a schedule may move them)."""
        rates = {}
        for key, optimizer in self.optimizers.items():
            found = dict.fromkeys(float(g["lr"]) for g in optimizer.param_groups if "lr" in g)
            rates[key] = "/".join(f"{r:g}" for r in found) or "?"
        if self._custom_optimizer:
            kind = type(self.optimizers["model"]).__name__
            return f"lr={rates['model']} of the {kind} given as optimizer="
        if list(rates) == ["model"]:
            return f"lr={rates['model']}"
        return "lr " + ", ".join(f"{key}={rate}" for key, rate in rates.items())

    # ------------------------------------------------------------ checkpoints
    def save(self, path: str | Path) -> None:
        """Save model, optimisers, history, epoch and random state to ``path``.

        Under several processes every rank must call it (``fit`` does): the ranks'
        random states are gathered and rank 0 writes the file.
        """
        rng = parallel.gather_rng_states()
        if not self.is_main_process:
            return
        state = {
            "model_class": type(self.model).__name__,
            "model_state": self.model.state_dict(),
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "epoch": self.epoch,
            "history": self.history,
            "rng_cpu": rng[0]["cpu"],
            "seed": self.seed,
            "world_size": self.world_size,
        }
        if "cuda" in rng[0]:
            state["rng_cuda"] = rng[0]["cuda"]
        if self.world_size > 1:
            state["rng_by_rank"] = rng
        save_checkpoint(path, state)

    def _read_for_resume(self) -> dict | None:
        """The checkpoint to resume from, or None; rank 0 reads it and sends it to the others.

        Rank 0 also removes the temporaries that a kill during a save left behind.
        """
        state = None
        if self.is_main_process:
            remove_stale_temporaries(self.checkpoint_path)
            if self.checkpoint_path.exists():
                state = load_checkpoint(self.checkpoint_path)
        return parallel.broadcast_state(state)

    def _restore(self, state: dict, path: Path) -> None:
        load_model_state(self.model, state, source=str(path))
        if set(state["optimizers"]) != set(self.optimizers):
            raise ValueError(
                f"checkpoint {path} has optimisers {sorted(state['optimizers'])} but this "
                f"trainer has {sorted(self.optimizers)}; resume with the same model type."
            )
        for key, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][key])
        self.epoch = int(state["epoch"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.world_size:
            parallel.warn_other_world_size(path, saved_world, self.world_size)
            seed_everything(parallel.rank_seed(self.seed, self.rank, self.epoch))
            return
        own = state["rng_by_rank"][self.rank] if self.world_size > 1 else None
        torch.set_rng_state(own["cpu"] if own else state["rng_cpu"])
        cuda = own.get("cuda") if own else state.get("rng_cuda")
        if cuda is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)


def _reject_ignored_options(
    model: nn.Module,
    *,
    lr: float | None,
    optimizer: OptimizerFactory | None,
    grad_clip: float | None,
    checkpoint_path: str | Path | None,
    checkpoint_every: int | None,
) -> None:
    """Refuse options that, with this model, the trainer would silently ignore."""
    name = type(model).__name__
    if optimizer is not None and hasattr(model, "configure_optimizers"):
        raise ValueError(
            f"optimizer={_describe(optimizer)} is given but {name} defines "
            "configure_optimizers(lr), which the trainer uses instead; drop optimizer= "
            f"(set the learning rate with lr=) or change {name}.configure_optimizers."
        )
    if optimizer is not None and lr is not None:
        raise ValueError(
            f"lr={lr} is given together with optimizer={_describe(optimizer)}, which sets its "
            "own learning rate (the trainer does not pass lr to it); drop lr= and set the rate "
            f"in the factory, e.g. optimizer=functools.partial(torch.optim.SGD, lr={lr})."
        )
    if grad_clip is not None and hasattr(model, "train_step"):
        raise ValueError(
            f"grad_clip={grad_clip} is given but {name} defines its own train_step(batch, "
            "optimizers), in which the trainer cannot clip; drop grad_clip= or clip inside "
            f"{name}.train_step (torch.nn.utils.clip_grad_norm_ before each optimiser step)."
        )
    if checkpoint_path is None and checkpoint_every not in (1, None):
        raise ValueError(
            f"checkpoint_every={checkpoint_every} is given but checkpoint_path is not, so "
            "nothing would be saved; give checkpoint_path= or drop checkpoint_every=."
        )


def _describe(factory: Any) -> str:
    """A short name for an optimiser factory: ``functools.partial(SGD, lr=0.1)``, ``make_opt``."""
    if isinstance(factory, functools.partial):
        args = [getattr(factory.func, "__name__", repr(factory.func))]
        args += [repr(a) for a in factory.args]
        args += [f"{k}={v!r}" for k, v in factory.keywords.items()]
        return f"functools.partial({', '.join(args)})"
    return getattr(factory, "__name__", type(factory).__name__)


def _first_lr(optimizer: torch.optim.Optimizer) -> float | None:
    groups = [g for g in optimizer.param_groups if "lr" in g]
    return float(groups[0]["lr"]) if groups else None


@contextlib.contextmanager
def _values_checked_if(checked: bool):
    """``values_checked()`` when the whole data set was checked, else nothing."""
    if checked:
        with values_checked():
            yield
    else:
        yield


def _check_loss_dict(out: Any, name: str) -> dict[str, Any]:
    if not isinstance(out, dict) or "loss" not in out:
        raise TypeError(
            f"{name}.loss(batch) must return a dict with a 'loss' entry, got "
            f"{type(out).__name__}; return {{'loss': total, 'part': value, ...}}."
        )
    return out
