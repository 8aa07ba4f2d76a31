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
    return Trainer(model, epochs=epochs, batch_size=32, lr=1e-2, **kwargs)


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
    with pytest.raises(ValueError, match=r"epochs=0 must be a positive integer"):
        Trainer(NoisyRegressor(), epochs=0)
    with pytest.raises(ValueError, match=r"lr=-1 must be positive"):
        Trainer(NoisyRegressor(), lr=-1)
