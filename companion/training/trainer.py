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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from companion._validation import check_finite
from companion.errors import TrainingDivergedError
from companion.runtime import resolve_device, seed_everything
from companion.training.checkpoint import load_checkpoint, load_model_state, save_checkpoint

Batch = Any  # a tensor or a tuple of tensors sharing their first dimension
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class Trainer:
    """Fit a model by minibatch gradient descent.

    Parameters
    ----------
    model : nn.Module
        Defines ``loss(batch) -> {"loss": scalar, ...}`` (or its own step, see above).
    epochs : int
        Total number of passes over the data (a resumed run continues up to it).
    batch_size : int
    lr : float
        Learning rate of the default Adam optimiser.
    optimizer : callable, optional
        ``params -> Optimizer`` to use instead of Adam, e.g.
        ``functools.partial(torch.optim.SGD, lr=0.1)``.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), or any torch device.
    seed : int
        Seeds every generator at the start of ``fit``; the data order of
        epoch ``e`` depends only on ``(seed, e)``.
    checkpoint_path : path, optional
        Where to save the state after every ``checkpoint_every`` epochs.
    batch_transform : callable, optional
        Applied to every training batch on the device (e.g. dynamic binarisation).
    callbacks : sequence
        Objects with optional ``on_epoch_start(trainer, epoch)`` and
        ``on_epoch_end(trainer, epoch, logs)`` methods (e.g. KL warm-up).
    grad_clip : float, optional
        Clip the gradient norm to this value in the default step.
    progress : bool
        Show a tqdm progress bar over epochs.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        epochs: int = 10,
        batch_size: int = 128,
        lr: float = 1e-3,
        optimizer: OptimizerFactory | None = None,
        device: str | torch.device = "auto",
        seed: int = 0,
        checkpoint_path: str | Path | None = None,
        checkpoint_every: int = 1,
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
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer.")
        if not lr > 0:
            raise ValueError(f"lr={lr} must be positive, e.g. lr=1e-3.")
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.device = resolve_device(device)
        self.seed = seed
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.checkpoint_every = checkpoint_every
        self.batch_transform = batch_transform
        self.callbacks = list(callbacks)
        self.grad_clip = grad_clip
        self.progress = progress
        self.model.to(self.device)
        if hasattr(model, "configure_optimizers"):
            self.optimizers = dict(model.configure_optimizers(lr))
        else:
            factory = optimizer or (lambda params: torch.optim.Adam(params, lr=lr))
            self.optimizers = {"model": factory(model.parameters())}
        self.history: dict[str, list[float]] = {}
        self.epoch = 0  # epochs completed

    # ------------------------------------------------------------------ data
    def _batches(self, data: Any, *, shuffle: bool, epoch: int) -> Iterable[Batch]:
        """Yield batches on the device; tensors are shuffled by (seed, epoch)."""
        if isinstance(data, torch.Tensor) or _is_tensor_tuple(data):
            tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
            n = tensors[0].shape[0]
            if shuffle:
                generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
                order = torch.randperm(n, generator=generator).to(tensors[0].device)
            else:
                order = torch.arange(n, device=tensors[0].device)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = tuple(t[idx] for t in tensors)
                yield batch[0] if isinstance(data, torch.Tensor) else batch
        else:
            for batch in data:
                yield _to_device(batch, self.device)

    def _prepare(self, data: Any, name: str) -> Any:
        """Move tensor data to the device once and reject NaN/inf before training."""
        if isinstance(data, torch.Tensor) or _is_tensor_tuple(data):
            tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
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
            return moved[0] if isinstance(data, torch.Tensor) else moved
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
        """One update; the model's own ``train_step`` replaces this when it has one."""
        if hasattr(self.model, "train_step"):
            return self.model.train_step(batch, self.optimizers)
        optimizer = self.optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        out = _check_loss_dict(self.model.loss(batch), type(self.model).__name__)
        if not torch.isfinite(out["loss"]):
            return out  # reported by fit with the epoch and batch
        out["loss"].backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        optimizer.step()
        return out

    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, float]:
        """Average of ``model.loss`` over ``data`` in eval mode (no transform, no shuffle)."""
        data = self._prepare(data, "val_data")
        was_training = self.model.training
        self.model.eval()
        try:
            sums, count = {}, 0
            for batch in self._batches(data, shuffle=False, epoch=0):
                out = _check_loss_dict(self.model.loss(batch), type(self.model).__name__)
                size = _batch_size(batch)
                for key, value in out.items():
                    sums[key] = sums.get(key, 0.0) + _scalar(value) * size
                count += size
        finally:
            self.model.train(was_training)
        return {key: total / count for key, total in sums.items()}

    # ------------------------------------------------------------------ loop
    def fit(self, train_data: Any, val_data: Any = None, *, resume: bool = False) -> dict:
        """Train up to ``epochs`` and return the history (also kept in ``self.history``).

        ``history[key][e]`` is the mean of ``key`` over epoch ``e``'s batches;
        validation entries are prefixed with ``val_``. With ``resume=True``
        and an existing checkpoint, training continues exactly where it
        stopped (same data order, same random numbers).
        """
        train_data = self._prepare(train_data, "train_data")
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            self._restore(self.checkpoint_path)
        else:
            seed_everything(self.seed)
        name = type(self.model).__name__
        bar = tqdm(
            range(self.epoch, self.epochs),
            initial=self.epoch,
            total=self.epochs,
            desc=f"training {name}",
            disable=not self.progress,
        )
        for epoch in bar:
            for callback in self.callbacks:
                if hasattr(callback, "on_epoch_start"):
                    callback.on_epoch_start(self, epoch)
            self.model.train()
            started = time.perf_counter()
            sums, count = {}, 0
            batches = self._batches(train_data, shuffle=True, epoch=epoch)
            n_batches = _count_batches(train_data, self.batch_size)
            for index, batch in enumerate(batches):
                if self.batch_transform is not None:
                    batch = self.batch_transform(batch)
                out = self.train_step(batch)
                size = _batch_size(batch)
                for key, value in out.items():
                    value = _scalar(value)
                    if not math.isfinite(value):
                        raise TrainingDivergedError(
                            f"{key} became {value} at epoch {epoch + 1} of {self.epochs}, "
                            f"batch {index + 1} of {n_batches} ({name}, lr={self.lr}); "
                            "lower the learning rate, set grad_clip, or check the data "
                            "for NaN/inf."
                        )
                    sums[key] = sums.get(key, 0.0) + value * size
                count += size
            logs = {key: total / count for key, total in sums.items()}
            if val_data is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(val_data).items()})
            logs["seconds"] = time.perf_counter() - started
            for key, value in logs.items():
                self.history.setdefault(key, []).append(value)
            self.epoch = epoch + 1
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "seconds"})
            for callback in self.callbacks:
                if hasattr(callback, "on_epoch_end"):
                    callback.on_epoch_end(self, epoch, logs)
            if self.checkpoint_path is not None and (
                self.epoch % self.checkpoint_every == 0 or self.epoch == self.epochs
            ):
                self.save(self.checkpoint_path)
        bar.close()
        return self.history

    # ------------------------------------------------------------ checkpoints
    def save(self, path: str | Path) -> None:
        """Save model, optimisers, history, epoch and random state to ``path``."""
        state = {
            "model_class": type(self.model).__name__,
            "model_state": self.model.state_dict(),
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "epoch": self.epoch,
            "history": self.history,
            "rng_cpu": torch.get_rng_state(),
            "seed": self.seed,
        }
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        save_checkpoint(path, state)

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path)
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
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])


def _is_tensor_tuple(data: Any) -> bool:
    return (
        isinstance(data, (tuple, list))
        and len(data) > 0
        and all(isinstance(t, torch.Tensor) for t in data)
    )


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device) for b in batch)
    return batch


def _batch_size(batch: Batch) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0])


def _count_batches(data: Any, batch_size: int) -> int | str:
    if isinstance(data, torch.Tensor):
        return math.ceil(data.shape[0] / batch_size)
    if _is_tensor_tuple(data):
        return math.ceil(data[0].shape[0] / batch_size)
    try:
        return len(data)
    except TypeError:
        return "?"


def _scalar(value: Any) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _check_loss_dict(out: Any, name: str) -> dict[str, Any]:
    if not isinstance(out, dict) or "loss" not in out:
        raise TypeError(
            f"{name}.loss(batch) must return a dict with a 'loss' entry, got "
            f"{type(out).__name__}; return {{'loss': total, 'part': value, ...}}."
        )
    return out
