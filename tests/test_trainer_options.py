"""Trainer options: what each one does, measured, and the combinations it refuses.

grad_clip clips to the norm asked for; checkpoints are written after exactly the
epochs asked for; callbacks see each epoch once with its history; options the trainer
would ignore are refused with a message naming them; the data are checked once per
fit (``model.check_input``) and the batches then skip their value scans.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from companion._validation import values_already_checked
from companion.errors import TrainingDivergedError
from companion.training import Trainer

SGD = functools.partial(torch.optim.SGD, lr=0.1)


class Linear(nn.Module):
    """loss = g · w + 0 · x: its gradient is g, whatever the batch."""

    def __init__(self, g=(3.0, 4.0)):
        super().__init__()
        self.g = torch.tensor(g)
        self.w = nn.Parameter(torch.zeros(len(g)))

    def loss(self, batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return {"loss": self.g @ self.w + 0.0 * x.sum()}


class OwnStep(Linear):
    def configure_optimizers(self, lr):
        return {"model": torch.optim.SGD(self.parameters(), lr=lr)}

    def train_step(self, batch, optimizers):
        optimizers["model"].zero_grad()
        out = self.loss(batch)
        out["loss"].backward()
        optimizers["model"].step()
        return out


def run(model=None, **kwargs):
    kwargs.setdefault("epochs", 1)
    kwargs.setdefault("batch_size", 8)
    return Trainer(model if model is not None else Linear(), device="cpu", progress=False, **kwargs)


# ------------------------------------------------------------------ grad_clip
@pytest.mark.parametrize("clip", [0.5, 2.0])
def test_grad_clip_scales_the_step_to_the_norm_asked_for(clip):
    """|g| = 5 > clip: one SGD step moves w by -lr · clip · g / |g|."""
    trainer = run(optimizer=SGD, grad_clip=clip)
    trainer.fit(torch.zeros(8, 1))  # one batch, one step
    g = torch.tensor([3.0, 4.0])
    assert torch.allclose(trainer.model.w.detach(), -0.1 * clip * g / 5.0, atol=1e-7)


def test_grad_clip_above_the_norm_leaves_the_step_alone():
    trainer = run(optimizer=SGD, grad_clip=50.0)
    trainer.fit(torch.zeros(8, 1))
    assert torch.allclose(trainer.model.w.detach(), -0.1 * torch.tensor([3.0, 4.0]))


@pytest.mark.parametrize("clip", [0, -1.0])
def test_grad_clip_must_be_positive(clip):
    with pytest.raises(ValueError, match=rf"grad_clip={clip} must be positive"):
        run(grad_clip=clip)


# ------------------------------------------------------------------ checkpoints
class Saves(Trainer):
    """Records the epoch count at every save."""

    def save(self, path):
        self.saved = [*getattr(self, "saved", []), self.epoch]
        super().save(path)


@pytest.mark.parametrize(
    ("every", "saved"),
    [(1, [1, 2, 3, 4, 5, 6, 7]), (3, [3, 6, 7]), (7, [7]), (10, [7]), (None, [7])],
)
def test_checkpoints_are_written_after_exactly_the_epochs_asked_for(tmp_path, every, saved):
    trainer = Saves(
        Linear(), epochs=7, batch_size=8, device="cpu", progress=False,
        checkpoint_path=tmp_path / "run.ckpt", checkpoint_every=every,
    )  # fmt: skip
    trainer.fit(torch.zeros(8, 1))
    assert trainer.saved == saved
    assert torch.load(tmp_path / "run.ckpt", weights_only=True)["epoch"] == 7


def test_a_resumed_run_saves_on_the_same_epochs(tmp_path):
    path = tmp_path / "run.ckpt"
    Saves(Linear(), epochs=4, device="cpu", progress=False, checkpoint_path=path,
          checkpoint_every=3).fit(torch.zeros(8, 1))  # fmt: skip
    resumed = Saves(Linear(), epochs=7, device="cpu", progress=False, checkpoint_path=path,
                    checkpoint_every=3)  # fmt: skip
    resumed.fit(torch.zeros(8, 1), resume=True)
    assert resumed.saved == [6, 7]


@pytest.mark.parametrize(
    ("every", "error"),
    [(0, ValueError), (-2, ValueError), (1.5, TypeError), (2.0, TypeError), (True, TypeError),
     ("3", TypeError)],
)  # fmt: skip
def test_checkpoint_every_must_be_a_positive_integer_or_none(tmp_path, every, error):
    with pytest.raises(
        error, match=rf"checkpoint_every={every!r} must be (an integer )?>= 1 \(save every"
    ):
        run(checkpoint_path=tmp_path / "run.ckpt", checkpoint_every=every)


@pytest.mark.parametrize("name", ["epochs", "batch_size"])
@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (2.0, TypeError), (True, TypeError)])
def test_counts_follow_the_package_rule_for_integers(name, value, error):
    with pytest.raises(error, match=rf"{name}={value!r} must be (an integer )?>= 1"):
        run(**{name: value})


def test_checkpoint_every_without_a_path_is_refused():
    with pytest.raises(ValueError, match=r"checkpoint_every=5 is given but checkpoint_path"):
        run(checkpoint_every=5)
    run(checkpoint_every=None)  # nothing asked, nothing ignored


# ------------------------------------------------------------------ callbacks
def test_callbacks_see_every_epoch_once_with_its_history():
    calls = []

    class Spy:
        def on_epoch_start(self, trainer, epoch):
            calls.append(("start", epoch, trainer.epoch))

        def on_epoch_end(self, trainer, epoch, logs):
            assert logs == {key: values[-1] for key, values in trainer.history.items()}
            calls.append(("end", epoch, trainer.epoch, len(trainer.history["loss"])))

    x = torch.randn(20, 1)
    trainer = run(epochs=4, callbacks=[Spy()], batch_size=8)
    history = trainer.fit(x, x[:5])
    assert calls == [c for e in range(4) for c in (("start", e, e), ("end", e, e + 1, e + 1))]
    assert set(history) == {"loss", "val_loss", "seconds"}


# ------------------------------------------------------------------ ignored options refused
def test_optimizer_for_a_model_with_its_own_optimizers_is_refused():
    with pytest.raises(
        ValueError,
        match=r"optimizer=functools.partial\(SGD, lr=0.1\) is given but OwnStep defines "
        r"configure_optimizers\(lr\), which the trainer uses instead; drop optimizer=",
    ):
        run(OwnStep(), optimizer=SGD)


def test_lr_with_an_optimizer_factory_is_refused():
    with pytest.raises(
        ValueError,
        match=r"lr=0.5 is given together with optimizer=functools.partial\(SGD, lr=0.1\), "
        r"which sets its own learning rate .*functools.partial\(torch.optim.SGD, lr=0.5\)",
    ):
        run(optimizer=SGD, lr=0.5)


def test_an_optimizer_factory_alone_is_accepted_and_its_rate_reported():
    trainer = run(optimizer=SGD)
    assert trainer.lr == 0.1 and type(trainer.optimizers["model"]) is torch.optim.SGD
    assert run().lr == 1e-3 and run(lr=None).lr == 1e-3
    assert run().optimizers["model"].param_groups[0]["lr"] == 1e-3


def test_grad_clip_for_a_model_with_its_own_step_is_refused():
    with pytest.raises(
        ValueError,
        match=r"grad_clip=1.0 is given but OwnStep defines its own train_step\(batch, "
        r"optimizers\), in which the trainer cannot clip; drop grad_clip=",
    ):
        run(OwnStep(), grad_clip=1.0)


def test_own_optimizers_without_own_step_must_name_the_model_optimizer():
    class Unnamed(Linear):
        def configure_optimizers(self, lr):
            return {"weights": torch.optim.SGD(self.parameters(), lr=lr)}

    with pytest.raises(ValueError, match=r"returned \['weights'\], but without a train_step"):
        run(Unnamed())


# ------------------------------------------------------------------ the rate in the message
class Diverges(Linear):
    def loss(self, batch):
        out = super().loss(batch)
        return {"loss": out["loss"] * float("nan")}


def test_divergence_reports_the_rate_in_use_after_a_schedule():
    class Halve:
        def on_epoch_start(self, trainer, epoch):
            for group in trainer.optimizers["model"].param_groups:
                group["lr"] = 0.25

    with pytest.raises(TrainingDivergedError, match=r"\(Diverges, lr=0.25\); lower the"):
        run(Diverges(), lr=0.5, callbacks=[Halve()]).fit(torch.zeros(8, 1))


def test_divergence_names_a_custom_optimizer():
    with pytest.raises(
        TrainingDivergedError, match=r"\(Diverges, lr=0.1 of the SGD given as optimizer=\)"
    ):
        run(Diverges(), optimizer=SGD).fit(torch.zeros(8, 1))


def test_divergence_with_an_own_step_names_every_rate_and_no_grad_clip():
    class TwoRates(OwnStep):
        def configure_optimizers(self, lr):
            return {
                "model": torch.optim.SGD([self.w], lr=lr),
                "other": torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=lr / 10),
            }

        def train_step(self, batch, optimizers):
            return {"loss": float("inf")}

    with pytest.raises(
        TrainingDivergedError,
        match=r"\(TwoRates, lr model=0.2, other=0.02\); lower the learning rate, clip the "
        r"gradients in TwoRates.train_step, or check",
    ):
        run(TwoRates(), lr=0.2).fit(torch.zeros(8, 1))


# ------------------------------------------------------------------ data checked once
class Checked(Linear):
    """Counts check_input calls and records whether each batch's scans may be skipped."""

    def __init__(self):
        super().__init__()
        self.checks = []
        self.seen = []

    def check_input(self, data):
        assert not values_already_checked()
        self.checks.append(tuple(data.shape) if isinstance(data, torch.Tensor) else len(data))

    def loss(self, batch):
        self.seen.append(("train" if self.training else "val", values_already_checked()))
        return super().loss(batch)


def test_check_input_runs_once_per_fit_and_batches_skip_their_scans():
    model = Checked()
    x = torch.randn(40, 1)
    trainer = run(model, epochs=3, batch_size=8)
    trainer.fit(x, x[:12])
    assert model.checks == [(40, 1), (12, 1)]  # training data, validation data, once
    assert model.seen == ([("train", True)] * 5 + [("val", True)] * 2) * 3
    assert not values_already_checked()
    trainer.evaluate(x[:3])
    assert model.checks[-1] == (3, 1)


def test_check_input_gets_a_data_tuple_as_the_batches_come():
    model = Checked()
    run(model).fit((torch.randn(16, 1), torch.arange(16)))
    assert model.checks == [2] and model.seen == [("train", True)] * 2


def test_batch_transform_and_loaders_leave_the_checks_to_the_model():
    """Transformed batches are not the data checked; a loader's batches are not known
    before they come: the model checks those batches itself."""
    model = Checked()
    x = torch.randn(16, 1)
    run(model, batch_transform=lambda b: b * 2).fit(x, x[:8])
    assert model.checks == [(8, 1)]  # the validation data only
    assert model.seen == [("train", False)] * 2 + [("val", True)]

    model = Checked()
    loader = torch.utils.data.DataLoader(x, batch_size=8)
    run(model).fit(loader, loader)
    assert model.checks == [] and {checked for _, checked in model.seen} == {False}


def test_a_nan_in_the_validation_data_is_caught_before_training():
    model = Checked()
    val = torch.zeros(4, 1)
    val[2, 0] = float("inf")
    with pytest.raises(ValueError, match=r"val_data contains 1 non-finite value"):
        run(model).fit(torch.zeros(8, 1), val)
    assert model.seen == []


def test_validation_data_is_prepared_once_per_fit(monkeypatch):
    trainer = run(epochs=4)
    prepared = []
    original = trainer._prepare
    monkeypatch.setattr(
        trainer, "_prepare", lambda d, n, **k: prepared.append(n) or original(d, n, **k)
    )
    x = torch.randn(16, 1)
    trainer.fit(x, x[:4])
    assert prepared == ["train_data", "val_data"]
