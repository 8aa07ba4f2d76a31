"""The shared trainer: learning, reproducibility, resume, NaN handling, custom steps."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from companion.errors import CheckpointMismatchError, TrainingDivergedError
from companion.training import Trainer


class NoisyRegressor(nn.Module):
    """A tiny model whose loss uses random numbers (like a VAE), to test RNG handling."""

    def __init__(self, d_in: int = 3, hidden: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def loss(self, batch):
        x, y = batch  # (B, d_in), (B,)
        noise = 0.01 * torch.randn_like(x) if self.training else 0.0
        pred = self.net(x + noise).squeeze(1)
        mse = ((pred - y) ** 2).mean()
        return {"loss": mse, "mse": mse.detach(), "mean_pred": pred.mean().detach()}


def regression_data(n: int = 256, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = torch.sin(x[:, 0]) + 0.5 * x[:, 1] ** 2 - x[:, 2]
    return x, y


def make_trainer(epochs=6, **kwargs):
    torch.manual_seed(123)
    model = NoisyRegressor()
    kwargs.setdefault("progress", False)
    kwargs.setdefault("device", "cpu")
    if "optimizer" not in kwargs:  # an optimizer factory sets its own learning rate
        kwargs.setdefault("lr", 1e-2)
    return Trainer(model, epochs=epochs, batch_size=32, **kwargs)


def test_loss_decreases_below_the_constant_baseline():
    x, y = regression_data()
    trainer = make_trainer(epochs=30)
    history = trainer.fit((x, y))
    baseline = y.var(unbiased=False).item()  # MSE of predicting the mean
    assert history["loss"][-1] < 0.2 * baseline
    assert history["loss"][-1] < history["loss"][0]
    assert set(history) == {"loss", "mse", "mean_pred", "seconds"}
    assert len(history["loss"]) == 30


def test_validation_history_and_parts():
    x, y = regression_data()
    history = make_trainer(epochs=3).fit((x[:200], y[:200]), (x[200:], y[200:]))
    assert {"val_loss", "val_mse", "val_mean_pred"} <= set(history)
    assert len(history["val_loss"]) == 3


def test_same_seed_same_run_other_seed_other_run(device):
    x, y = regression_data()
    a = make_trainer(seed=7, device=device).fit((x, y))
    b = make_trainer(seed=7, device=device).fit((x, y))
    c = make_trainer(seed=8, device=device).fit((x, y))
    assert a["loss"] == b["loss"]
    assert a["loss"] != c["loss"]


def test_resume_continues_bit_identically(tmp_path):
    x, y = regression_data()
    full = make_trainer(epochs=6, seed=3)
    full.fit((x, y))

    path = tmp_path / "run.ckpt"
    first = make_trainer(epochs=3, seed=3, checkpoint_path=path)
    first.fit((x, y))
    torch.manual_seed(999)  # whatever happens in between must not matter
    resumed = make_trainer(epochs=6, seed=3, checkpoint_path=path)
    history = resumed.fit((x, y), resume=True)

    assert resumed.epoch == 6
    for key in ("loss", "mse", "mean_pred"):
        assert history[key] == full.history[key], key
    for p, q in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_checkpoint_loads_with_weights_only(tmp_path):
    x, y = regression_data()
    path = tmp_path / "run.ckpt"
    make_trainer(epochs=1, checkpoint_path=path).fit((x, y))
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 1 and state["model_class"] == "NoisyRegressor"


def test_checkpoint_from_another_architecture_is_explained(tmp_path):
    x, y = regression_data()
    path = tmp_path / "run.ckpt"
    make_trainer(epochs=1, checkpoint_path=path).fit((x, y))
    wider = Trainer(
        NoisyRegressor(hidden=16), epochs=2, device="cpu", progress=False, checkpoint_path=path
    )
    with pytest.raises(
        CheckpointMismatchError,
        match=r"shape mismatch .*net\.0\.weight: saved "
        r"\(8, 3\), model \(16, 3\).*architecture it was saved from",
    ):
        wider.fit((x, y), resume=True)


def test_nan_loss_names_epoch_and_batch():
    x, y = regression_data(n=128)
    trainer = make_trainer(epochs=5, optimizer=functools.partial(torch.optim.SGD, lr=1e6))
    with pytest.raises(
        TrainingDivergedError,
        match=r"loss became (nan|inf) at epoch \d+ of 5, "
        r"batch \d+ of 4 \(NoisyRegressor.*lower the learning rate",
    ):
        trainer.fit((x, y))


def test_nan_in_data_is_caught_before_training(device):
    x, y = regression_data()
    x[17, 2] = float("nan")
    with pytest.raises(
        ValueError,
        match=r"train_data\[0\] contains 1 non-finite value "
        r"\(first: nan at index \[17, 2\]\)",
    ):
        make_trainer().fit((x.to(device), y.to(device)))


def test_model_without_loss_is_refused():
    with pytest.raises(TypeError, match="neither loss"):
        Trainer(nn.Linear(2, 2), progress=False)


def test_loss_must_return_a_dict_with_loss():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def loss(self, batch):
            return (self.w - batch).pow(2).mean()

    with pytest.raises(TypeError, match=r"Bad.loss\(batch\) must return a dict with a 'loss'"):
        Trainer(Bad(), epochs=1, device="cpu", progress=False).fit(torch.ones(4, 1))


def test_custom_train_step_and_optimizers_are_used():
    """The GAN-style override: the model owns its step and its optimisers."""

    class TwoPlayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.tensor([3.0]))
            self.b = nn.Parameter(torch.tensor([-3.0]))
            self.calls = 0

        def configure_optimizers(self, lr):
            return {
                "a": torch.optim.SGD([self.a], lr=lr),
                "b": torch.optim.SGD([self.b], lr=lr),
            }

        def train_step(self, batch, optimizers):
            self.calls += 1
            for name, param in (("a", self.a), ("b", self.b)):
                optimizers[name].zero_grad()
                loss = ((param - batch.mean()) ** 2).sum()
                loss.backward()
                optimizers[name].step()
            return {"loss": loss.item(), "gap": (self.a - self.b).abs().item()}

        def loss(self, batch):
            return {"loss": ((self.a - batch.mean()) ** 2).sum()}

    model = TwoPlayer()
    trainer = Trainer(model, epochs=20, batch_size=8, lr=0.1, device="cpu", progress=False)
    assert set(trainer.optimizers) == {"a", "b"}
    history = trainer.fit(torch.ones(16, 1))
    assert model.calls == 40
    assert history["gap"][-1] < 1e-3 < history["gap"][0]


def test_batch_transform_and_dataloader_input():
    x, y = regression_data(n=64)
    seen = []
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)

    def transform(batch):
        seen.append(batch[0].shape[0])
        return batch

    make_trainer(epochs=2, batch_transform=transform).fit(loader)
    assert seen == [16] * 8


def test_bad_hyperparameters_are_named():
    with pytest.raises(ValueError, match=r"epochs=0 must be >= 1"):
        Trainer(NoisyRegressor(), epochs=0)
    with pytest.raises(ValueError, match=r"lr=-1 must be positive"):
        Trainer(NoisyRegressor(), lr=-1)


# ---------------------------------------------- history and divergence, pinned exactly
class Recorder(nn.Module):
    """Reports parts of several kinds (a float32 tensor, a float64 tensor, an int tensor,
    a Python float) and keeps what it reported, batch by batch, to recompute the means."""

    def __init__(self, nan_at: int | None = None, inf_part_at: int | None = None):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.5, -0.25]))
        self.nan_at, self.inf_part_at = nan_at, inf_part_at
        self.calls = 0
        self.reported: list[tuple[int, dict[str, float]]] = []

    def loss(self, batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if self.training:
            self.calls += 1
        loss = ((x @ self.w) ** 2).mean() + 0.1 * x.sum() / 7
        part = x[:, 0].mean().detach()
        if self.training and self.calls == self.nan_at:
            loss = loss * float("nan")
        if self.training and self.calls == self.inf_part_at:
            part = part + float("inf")
        out = {
            "loss": loss,
            "part": part,
            "wide": (x.double() ** 3).mean(),
            "count": torch.tensor(int(x.shape[0]) * 3),
            "host": float(x.shape[0]) / 3.0,
        }
        self.reported.append(
            (
                int(x.shape[0]),
                {
                    k: float(v.detach() if isinstance(v, torch.Tensor) else v)
                    for k, v in out.items()
                },
            )
        )
        return out


def expected_means(reported):
    """Today's arithmetic: per batch, ``float(value) * size`` summed in Python, / count."""
    sums, count = {}, 0
    for size, values in reported:
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * size
        count += size
    return {key: total / count for key, total in sums.items()}


def test_history_is_the_exact_size_weighted_mean_of_every_part():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(173, 2, generator=g)  # 173 = 2 * 64 + 45: an uneven last batch
    model = Recorder()
    epochs, per_epoch = 3, 3
    trainer = Trainer(model, epochs=epochs, batch_size=64, device="cpu", progress=False)
    history = trainer.fit(x, x[:50])
    calls = model.reported  # training and validation batches, in order
    expected = {k: [] for k in ("loss", "part", "wide", "count", "host")}
    val_expected = {f"val_{k}": [] for k in expected}
    at = 0
    for _ in range(epochs):
        epoch_means = expected_means(calls[at : at + per_epoch])
        val_means = expected_means(calls[at + per_epoch : at + per_epoch + 1])
        at += per_epoch + 1
        for key, value in epoch_means.items():
            expected[key].append(value)
        for key, value in val_means.items():
            val_expected[f"val_{key}"].append(value)
    for key in expected:
        assert history[key] == expected[key], key  # bit for bit
    for key in val_expected:
        assert history[key] == val_expected[key], key
    assert list(history) == [*expected, *val_expected, "seconds"]


def test_custom_step_history_is_exact():
    """A model's own train_step may return floats (already on the host) or tensors."""

    class OwnStep(Recorder):
        def train_step(self, batch, optimizers):
            optimizers["model"].zero_grad()
            out = self.loss(batch)
            out["loss"].backward()
            optimizers["model"].step()
            return {**out, "loss": out["loss"].detach()}

    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(1))
    model = OwnStep()
    history = Trainer(model, epochs=2, batch_size=30, device="cpu", progress=False).fit(x)
    assert history["loss"] == [
        expected_means(model.reported[:4])["loss"],
        expected_means(model.reported[4:])["loss"],
    ]
    assert history["count"] == [84.0, 84.0]  # 3 * (3 * 30**2 + 10**2) / 100


@pytest.mark.parametrize(
    ("kwargs", "key", "value", "epoch", "batch"),
    [
        ({"nan_at": 3}, "loss", "nan", 1, 3),  # within the first window of batches
        ({"nan_at": 200 + 123}, "loss", "nan", 2, 123),  # epoch 2, after several windows
        ({"nan_at": 400}, "loss", "nan", 2, 200),  # the last batch of an epoch
        ({"inf_part_at": 77}, "part", "inf", 1, 77),  # a part, not the loss
        ({"nan_at": 90, "inf_part_at": 90}, "loss", "nan", 1, 90),  # the first key of the batch
        ({"nan_at": 91, "inf_part_at": 90}, "part", "inf", 1, 90),  # the first batch
    ],
)
def test_divergence_names_the_first_non_finite_value_exactly(kwargs, key, value, epoch, batch):
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(2))
    model = Recorder(**kwargs)
    trainer = Trainer(model, epochs=3, batch_size=1, device="cpu", progress=False)
    with pytest.raises(TrainingDivergedError) as info:
        trainer.fit(x)
    assert str(info.value) == (
        f"{key} became {value} at epoch {epoch} of 3, batch {batch} of 200 (Recorder, "
        "lr=0.001); lower the learning rate, set grad_clip, or check the data for NaN/inf."
    )
    assert trainer.epoch == epoch - 1 and len(trainer.history.get("loss", [])) == epoch - 1


def test_divergence_is_reported_before_a_later_batch_fails():
    """A batch after the one that diverged may fail on the weights it left: the
    divergence, which came first, is what the trainer reports."""

    class FailsAfterNaN(Recorder):
        def loss(self, batch):
            if self.training and self.calls == 5:
                raise RuntimeError("a NaN weight broke this batch")
            return super().loss(batch)

    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(3))
    trainer = Trainer(FailsAfterNaN(nan_at=5), epochs=1, batch_size=4, device="cpu", progress=False)
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at epoch 1 of 1, batch 5 of"):
        trainer.fit(x)


def test_losses_are_read_from_the_device_once_per_window_not_per_batch(monkeypatch):
    """Every tensor -> Python read (float, bool, item, tolist) is a host synchronisation on
    a GPU. Over 2 epochs of 120 batches the trainer reads its losses 3 times per epoch
    (after batches 50 and 100, and at the end), not once per batch and part."""

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([0.5, -0.25]))

        def loss(self, batch):
            loss = ((batch @ self.w) ** 2).mean()
            return {"loss": loss, "part": loss.detach() / 2}

    reads = {}
    for method in ("__float__", "__bool__", "item", "tolist"):
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, _method=method, **kwargs):
            reads[_method] = reads.get(_method, 0) + 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counted)
    x = torch.randn(240, 2, generator=torch.Generator().manual_seed(4))
    trainer = Trainer(
        Plain(), epochs=2, batch_size=2, optimizer=functools.partial(torch.optim.SGD, lr=0.01),
        device="cpu", progress=False,
    )  # fmt: skip
    reads.clear()
    history = trainer.fit(x)
    monkeypatch.undo()
    assert len(history["loss"]) == 2
    assert reads == {"__bool__": 1, "tolist": 6}  # the NaN/inf scan of the data; 3 reads an epoch
