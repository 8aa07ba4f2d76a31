"""Common checks every trainable network of companion passes (the GAN has its own tests).

A factory table builds a tiny instance of each model and data it accepts;
``test_every_model_has_a_factory`` walks the package and fails for a model
with a ``loss`` that the table lacks, so a new model cannot skip the checks.
Each model: its state dict round-trips through ``torch.load(weights_only=True)``;
a run resumed from a checkpoint repeats the uninterrupted loss curve bit for
bit on the CPU; a wrong input shape or dtype is named with the expected one;
NaN in the data stops before training; a diverging learning rate stops with
the epoch and batch.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from helpers import package_modules
from torch import nn

from companion.errors import TrainingDivergedError
from companion.models import (
    DDPM,
    MADE,
    RBM,
    VAE,
    Autoencoder,
    ContractiveAutoencoder,
    ConvAutoencoder,
    DenoisingAutoencoder,
    HashingAutoencoder,
    PixelCNN,
    PixelRNN,
    SparseAutoencoder,
)
from companion.models.flows import Flow
from companion.models.score import NoiseConditionalScore
from companion.models.unet import MLPDenoiser
from companion.training import Trainer

# the GAN's players and layers have their own tests (test_gan.py)
EXCLUDED_MODULES = {"companion.models.gan", "companion.models.gan_layers", "companion.models.dcgan"}
N = 24  # examples per data set: two batches of 12


def _rows(width: int) -> Callable[[int, int], torch.Tensor]:
    """Grey values in [0, 1], (n, width): valid for Bernoulli and Gaussian outputs."""

    def make(n: int, seed: int) -> torch.Tensor:
        return torch.rand(n, width, generator=torch.Generator().manual_seed(seed))

    return make


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _binary(*shape: int) -> Callable[[int, int], torch.Tensor]:
    """Binary examples of ``shape`` for the autoregressive models, (n, *shape)."""

    def make(n: int, seed: int) -> torch.Tensor:
        return torch.randint(0, 2, (n, *shape), generator=torch.Generator().manual_seed(seed))

    return lambda n, seed: make(n, seed).float()


class _TinyImageDenoiser(nn.Module):
    """A one-convolution ε-network for images (B, 1, 28, 28) and levels t (B,)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + t.reshape(-1, 1, 1, 1) / 10


@dataclass(frozen=True)
class Factory:
    build: Callable[[], nn.Module]
    data: Callable[[int, int], torch.Tensor]
    width: int  # values per example, named in shape errors
    integer_fix: str = "scale them"  # the advice for integer data (binary models: convert)
    # how the checks call the model on a batch: most models are ``model(x)``; the diffusion
    # and score models also take a noise level, a flow returns (z, log|det J|)
    call: Callable[[nn.Module, torch.Tensor], torch.Tensor] = lambda model, x: model(x)


CONVERT = r"convert with x\.float\(\)"  # integer 0/1 data is converted, not scaled
FACTORIES: dict[str, Factory] = {
    "Autoencoder": Factory(lambda: Autoencoder([12, 6, 3]), _rows(12), 12),
    "Autoencoder-tied-gaussian": Factory(
        lambda: Autoencoder([12, 4], tied=True, output="gaussian"), _rows(12), 12
    ),
    "SparseAutoencoder-kl": Factory(lambda: SparseAutoencoder([12, 5]), _rows(12), 12),
    "SparseAutoencoder-l1": Factory(
        lambda: SparseAutoencoder([12, 5], penalty="l1", beta=0.1), _rows(12), 12
    ),
    "DenoisingAutoencoder": Factory(lambda: DenoisingAutoencoder([12, 4]), _rows(12), 12),
    "ContractiveAutoencoder": Factory(lambda: ContractiveAutoencoder([12, 4]), _rows(12), 12),
    "ConvAutoencoder": Factory(lambda: ConvAutoencoder(3, (2, 3)), _images, 784),
    "HashingAutoencoder": Factory(lambda: HashingAutoencoder([12, 6, 4]), _rows(12), 12),
    "HashingAutoencoder-straight-through": Factory(
        lambda: HashingAutoencoder([12, 4], binarize="straight_through"), _rows(12), 12
    ),
    "VAE-mlp": Factory(lambda: VAE.mlp(12, (8,), 2), _rows(12), 12),
    "VAE-gaussian": Factory(lambda: VAE.mlp(12, (8,), 2, likelihood="gaussian"), _rows(12), 12),
    "VAE-gaussian-decoder-variance": Factory(
        lambda: VAE.mlp(12, (8,), 2, likelihood="gaussian", decoder_variance=True), _rows(12), 12
    ),
    "VAE-conv": Factory(lambda: VAE.conv(2, (2, 3)), _images, 784),
    "MADE": Factory(lambda: MADE(12, (8,)), _binary(12), 12, CONVERT),
    "MADE-two-masks": Factory(lambda: MADE(12, (8, 8), num_masks=2), _binary(12), 12, CONVERT),
    "PixelCNN": Factory(lambda: PixelCNN(4, 1, image_shape=(5, 5)), _binary(1, 5, 5), 25, CONVERT),
    "RBM": Factory(lambda: RBM(12, 5), _binary(12), 12),
    "PixelRNN": Factory(lambda: PixelRNN(6, image_shape=(5, 5)), _binary(1, 5, 5), 25, CONVERT),
    "DDPM": Factory(
        lambda: DDPM(MLPDenoiser(12, (8,), time_width=4), (12,), T=10),
        _rows(12),
        12,
        call=lambda model, x: model(x, 3),
    ),
    "DDPM-ema-clip": Factory(
        lambda: DDPM(
            MLPDenoiser(12, (8,), time_width=4), (12,), T=10, ema_decay=0.9, grad_clip=1.0
        ),  # fmt: skip
        _rows(12),
        12,
        call=lambda model, x: model(x, 3),
    ),
    "DDPM-images": Factory(
        lambda: DDPM(_TinyImageDenoiser(), (1, 28, 28), T=10),
        _images,
        784,
        call=lambda model, x: model(x, 3),
    ),
    "NoiseConditionalScore": Factory(
        lambda: NoiseConditionalScore(
            MLPDenoiser(12, (8,), time_width=4, max_period=10.0), [1.0, 0.3, 0.1]
        ),  # fmt: skip
        _rows(12),
        12,
        call=lambda model, x: model(x, 0.3),
    ),
    "Flow-realnvp": Factory(
        lambda: Flow.realnvp(12, 2, (8,)), _rows(12), 12, call=lambda model, x: model(x)[0]
    ),
    "Flow-maf": Factory(
        lambda: Flow.maf(12, 2, (8,), logit=0.05), _rows(12), 12, call=lambda model, x: model(x)[0]
    ),
}
NAMES = sorted(FACTORIES)


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return FACTORIES[name].build()


def trainer(model: nn.Module, epochs: int, **kwargs) -> Trainer:
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("lr", 1e-2)
    return Trainer(model, epochs=epochs, batch_size=12, progress=False, **kwargs)


def discover_trainable_models() -> set[type]:
    """Every nn.Module subclass with a ``loss`` defined in companion, outside the GAN modules."""
    found = set()
    for module in package_modules():
        if module.__name__ in EXCLUDED_MODULES:
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, nn.Module):
                # an abstract base (ReconstructionModel) has no __init__ of its own
                if callable(getattr(cls, "loss", None)) and cls.__init__ is not nn.Module.__init__:
                    found.add(cls)
    return found


# The feature classifier trains on (images, labels) tuples, which these checks do not
# build; tests/test_frechet.py checks its shipped weights and features.
NOT_YET_COVERED = {"FashionClassifier"}


def test_discovery_finds_the_models_of_today():
    """Discovery walks the subpackages: an empty result would switch every check off."""
    found = {cls.__name__ for cls in discover_trainable_models()}
    assert {"Autoencoder", "VAE", "MADE", "PixelCNN", "PixelRNN", "HashingAutoencoder"} <= found
    assert "GAN" not in found  # its modules are excluded on purpose


def test_every_model_has_a_factory():
    covered = {type(build(name)) for name in NAMES}
    missing = {cls.__name__ for cls in discover_trainable_models() - covered}
    assert missing <= NOT_YET_COVERED, (
        f"add a Factory for {sorted(missing - NOT_YET_COVERED)} to FACTORIES in this file"
    )
    assert NOT_YET_COVERED <= {cls.__name__ for cls in discover_trainable_models()}, (
        "NOT_YET_COVERED names a model discovery no longer finds; remove it"
    )


# ------------------------------------------------------------------ checks
parametrize = pytest.mark.parametrize("name", NAMES)


@parametrize
def test_state_dict_round_trip_with_weights_only(name, device, tmp_path):
    factory = FACTORIES[name]
    x = factory.data(N, 0).to(device)
    model = build(name, seed=0)
    trainer(model, 1, device=device).fit(x)  # trained weights and buffers, not the initial ones
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    twin = build(name, seed=1).to(device)
    twin.load_state_dict(torch.load(path, weights_only=True))
    for mode in ("eval", "train"):
        getattr(model, mode)()
        getattr(twin, mode)()
        outputs = []
        for m in (model, twin):
            torch.manual_seed(5)  # the same draws for models that sample (VAE, denoising)
            loss = m.loss(x)["loss"]
            torch.manual_seed(6)
            outputs.append((factory.call(m, x).detach(), loss.detach()))
        assert torch.equal(outputs[0][0], outputs[1][0]), mode
        assert torch.equal(outputs[0][1], outputs[1][1]), mode


@parametrize
def test_resumed_training_repeats_the_loss_curve_bit_for_bit(name, tmp_path):
    x = FACTORIES[name].data(N, 1)
    full = trainer(build(name), 2, seed=3)
    full.fit(x)
    path = tmp_path / "run.ckpt"
    trainer(build(name), 1, seed=3, checkpoint_path=path).fit(x)
    torch.manual_seed(999)  # whatever runs in between must not matter
    resumed = trainer(build(name, seed=4), 2, seed=3, checkpoint_path=path)
    history = resumed.fit(x, resume=True)
    for key in full.history:
        if key != "seconds":
            assert history[key] == full.history[key], key
    for p, q in zip(
        full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q)


@parametrize
def test_wrong_input_shape_names_the_expected_shape(name, device):
    factory = FACTORIES[name]
    model = build(name).to(device)
    wrong = torch.rand(3, factory.width + 1, device=device)
    message = (
        rf"expects inputs of shape \(batch, {factory.width}\).*got shape \(3, {factory.width + 1}\)"
    )
    for call in (model.loss, lambda x: factory.call(model, x)):
        with pytest.raises(ValueError, match=message):
            call(wrong)


@parametrize
def test_wrong_input_dtype_names_the_expected_dtype(name, device):
    factory = FACTORIES[name]
    model = build(name).to(device)
    x = factory.data(4, 0).to(device)
    integer = rf"expects float inputs.*got torch.uint8; {factory.integer_fix}"
    with pytest.raises(TypeError, match=integer):
        model.loss((x * 255).to(torch.uint8))
    with pytest.raises(
        TypeError,
        match=r"expects torch.float32 inputs \(the dtype of its weights\), got torch.float64; "
        r"convert them with x.to\(torch.float32\)",
    ):
        factory.call(model, x.double())
    with pytest.raises(
        TypeError, match=r"expects a torch tensor of shape \(batch, \d+\), got list"
    ):
        model.loss(x.tolist())


@parametrize
def test_nan_in_the_data_is_caught_before_training(name):
    x = FACTORIES[name].data(N, 2)
    x.view(N, -1)[3, 1] = float("nan")
    model = build(name)
    before = [p.detach().clone() for p in model.parameters()]
    index = r"\[3, 1\]" if x.ndim == 2 else r"\[3, 0, 0, 1\]"
    message = rf"train_data contains 1 non-finite value \(first: nan at index {index}\)"
    with pytest.raises(ValueError, match=message):
        trainer(model, 1).fit(x)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))
    loader = torch.utils.data.DataLoader(x, batch_size=12)  # batches the trainer cannot pre-check
    message = r"got NaN or inf in its input: 1 non-finite value \(first: nan at index \[3, 1\]\)"
    with pytest.raises(ValueError, match=message):
        trainer(model, 1).fit(loader)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))


@parametrize
def test_diverging_learning_rate_stops_with_epoch_and_batch(name):
    x = FACTORIES[name].data(N, 3)
    # Adam moves every weight by about lr: 1e37 overflows float32 within a step or two even
    # for the models whose sigmoid codes saturate (smaller rates leave their loss finite).
    run = trainer(build(name), 3, lr=1e37)
    with pytest.raises(TrainingDivergedError) as info:
        run.fit(x)
    message = str(info.value)
    found = re.search(r"became (nan|inf|-inf) at epoch (\d) of 3, batch (\d) of 2 \((\w+)", message)
    assert found, message
    assert found.group(4) == type(run.model).__name__ and "lower the learning rate" in message
    assert run.epoch == int(found.group(2)) - 1  # stopped inside that epoch
