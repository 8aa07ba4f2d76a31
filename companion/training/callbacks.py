"""Trainer callbacks: objects with ``on_epoch_start(trainer, epoch)`` and/or
``on_epoch_end(trainer, epoch, logs)``; ``epoch`` counts from 0."""

from __future__ import annotations

from typing import Any

from companion._validation import check_positive_int


class KLWarmup:
    """Raise a model's KL weight linearly from ``start`` to 1 over ``epochs`` epochs.

    Epoch e (from 0) trains with weight ``start + (1 - start) · min(1, e / epochs)``,
    so the first epochs fit the reconstruction term before the KL term pulls
    the posteriors towards the prior (Bowman et al., 2016; Sønderby et al.,
    2016). The weight is computed from the epoch number alone, so a resumed
    run sets the same weights as an uninterrupted one. ``epochs=0`` keeps the
    weight at 1. The model keeps the last weight set after training.

    >>> Trainer(vae, epochs=50, callbacks=[KLWarmup(10)])  # doctest: +SKIP
    """

    def __init__(self, epochs: int, *, start: float = 0.0, attribute: str = "kl_weight"):
        epochs = check_positive_int(epochs, name="epochs", minimum=0)
        if not 0 <= start <= 1:
            raise ValueError(f"start={start} must lie in [0, 1].")
        self.epochs, self.start, self.attribute = epochs, float(start), attribute

    def weight(self, epoch: int) -> float:
        """The KL weight used during epoch ``epoch`` (counted from 0)."""
        if self.epochs == 0:
            return 1.0
        return self.start + (1.0 - self.start) * min(1.0, epoch / self.epochs)

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        model = trainer.model
        if not hasattr(model, self.attribute):
            raise AttributeError(
                f"KLWarmup sets {type(model).__name__}.{self.attribute}, which does not exist; "
                "use it with a model that weights its KL term by that attribute (e.g. VAE)."
            )
        setattr(model, self.attribute, self.weight(epoch))


class StepDecay:
    """Learning rate ``lr`` before epoch ``at`` and ``lr * factor`` from it on.

    Set at the start of every epoch in every optimiser of the trainer, so a
    resumed run follows the same schedule. ``at=None`` keeps ``lr`` throughout.

    >>> Trainer(model, epochs=150, callbacks=[StepDecay(1e-3, at=130)])  # doctest: +SKIP
    """

    def __init__(self, lr: float, at: int | None, factor: float = 0.1):
        if not lr > 0 or not factor > 0:
            raise ValueError(f"lr={lr} and factor={factor} must be positive.")
        if at is not None:
            at = check_positive_int(at, name="at", minimum=0)  # an epoch number, or None
        self.lr, self.at, self.factor = lr, at, factor

    def rate(self, epoch: int) -> float:
        """The learning rate used during epoch ``epoch`` (counted from 0)."""
        return self.lr * self.factor if self.at is not None and epoch >= self.at else self.lr

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        for optimizer in trainer.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = self.rate(epoch)
