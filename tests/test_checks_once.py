"""Input checks run once per public call, and not at all inside ``values_checked()``.

A scan of the values (NaN/inf, entries outside {0, 1}, a range) is a reduction
and, on a GPU, a host synchronisation, so the deep models scan each input once
in their public entry points and never in the private paths or sampling loops
behind them. The scans are counted by wrapping the functions that do them.
``check_input(x)``, which the Trainer calls once per fit, always scans.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import companion._validation as validation
import companion.models.autoregressive.base as base
from companion._validation import values_checked
from companion.models import (
    MADE,
    VAE,
    Autoencoder,
    ContractiveAutoencoder,
    HashingAutoencoder,
    PixelCNN,
    PixelRNN,
)
from companion.models.autoregressive.base import check_binary


@pytest.fixture
def scans(monkeypatch) -> list[str]:
    """The names of the value scans run so far: NaN/inf, {0, 1} and (VAE) range scans."""
    seen: list[str] = []

    def counted(name: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            seen.append(name)
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(validation, "_non_finite", counted("finite", validation._non_finite))
    monkeypatch.setattr(base, "_non_binary_index", counted("binary", base._non_binary_index))
    monkeypatch.setattr(torch, "aminmax", counted("range", torch.aminmax))
    return seen


def _binary(*shape: int) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(0)).float()


AUTOREGRESSIVE = {
    "MADE": (lambda: MADE(6, (8,)), _binary(4, 6)),
    "MADE-three-masks": (lambda: MADE(6, (8,), ordering="random", num_masks=3), _binary(4, 6)),
    "PixelCNN": (lambda: PixelCNN(4, 1, image_shape=(3, 3)), _binary(4, 1, 3, 3)),
    "PixelRNN": (lambda: PixelRNN(4, image_shape=(3, 3)), _binary(4, 9)),
}
autoregressive = pytest.mark.parametrize("name", sorted(AUTOREGRESSIVE))


def _build(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    build, x = AUTOREGRESSIVE[name]
    return build(), x


# ------------------------------------------------------------------ autoregressive models
@autoregressive
def test_loss_and_log_prob_scan_the_values_once(name, scans):
    model, x = _build(name)
    for call in (model.loss, model.log_prob, lambda v: model.loss((v, torch.zeros(len(v))))):
        scans.clear()
        call(x)
        assert scans == ["binary"], f"{name}: one scan per call, got {scans}"


@autoregressive
def test_no_scan_inside_values_checked(name, scans):
    model, x = _build(name)
    with values_checked():
        model.loss(x)
        model.log_prob(x)
        model(x)
    assert scans == []
    with values_checked():  # what the trainer's one check has ruled out is not looked for
        model.loss(x * 0.5)


@autoregressive
def test_forward_scans_for_nan_once(name, scans):
    model, x = _build(name)
    model(x)
    assert scans == ["finite"]


@autoregressive
def test_sampling_does_not_scan(name, scans):
    model, _ = _build(name)
    model.sample(3, generator=torch.Generator().manual_seed(0))
    assert scans == [], f"{name}.sample scanned {len(scans)} times"


@pytest.mark.parametrize("name", ["PixelCNN", "PixelRNN"])
def test_complete_scans_its_input_once(name, scans):
    model, x = _build(name)
    model.complete(x, 1, generator=torch.Generator().manual_seed(0))
    assert scans == ["binary"]


@autoregressive
def test_check_input_scans_even_inside_values_checked(name, scans):
    model, x = _build(name)
    with values_checked():
        model.check_input(x)
        model.check_input((x, torch.zeros(len(x))))  # a (data, labels) tuple
    assert scans == ["binary", "binary"]


@autoregressive
@pytest.mark.parametrize("inside", [False, True])
def test_check_input_rejects_non_binary_data(name, inside):
    model, x = _build(name)
    x = x.clone()
    x.view(len(x), -1)[2, 3] = 0.25
    cls = type(model).__name__
    where = r"2, 3" if x.ndim == 2 else r"2, 0, 1, 0"
    message = rf"{cls}.check_input models binary data, but x\[{where}\] = 0\.25; binarise"
    with values_checked() if inside else torch.no_grad():
        with pytest.raises(ValueError, match=message):
            model.check_input(x)
        x.view(len(x), -1)[2, 3] = float("nan")
        with pytest.raises(ValueError, match=r"got NaN or inf in its input: 1 non-finite value"):
            model.check_input(x)
        with pytest.raises(TypeError, match=r"expects float inputs in \{0, 1\}.*x\.float\(\)"):
            model.check_input(x.nan_to_num().long())
        with pytest.raises(ValueError, match=r"got shape"):
            model.check_input(x.reshape(len(x), -1)[:, 1:])


def test_check_binary_skips_its_scan_inside_values_checked(scans):
    check_binary(torch.tensor([[0.0, 1.0]]), name="MADE.log_prob")
    assert scans == ["binary"]  # one scan; NaN and inf are not 0 or 1 either
    x = torch.tensor([[0.0, 0.3]])
    with pytest.raises(ValueError, match=r"x\[0, 1\] = 0\.3"):
        check_binary(x, name="MADE.log_prob")
    scans.clear()
    with values_checked():
        check_binary(x, name="MADE.log_prob")
        with pytest.raises(TypeError, match="float inputs"):  # the dtype is still checked
            check_binary(x.long(), name="MADE.log_prob")
    assert scans == []


# ------------------------------------------------------------------ autoencoders and the VAE
RECONSTRUCTION = {
    "Autoencoder": lambda: Autoencoder([6, 4, 2]),
    "ContractiveAutoencoder-deep": lambda: ContractiveAutoencoder([6, 4, 3]),
    "HashingAutoencoder": lambda: HashingAutoencoder([6, 4]),
    "VAE": lambda: VAE.mlp(6, (5,), 2),
    "VAE-gaussian": lambda: VAE.mlp(6, (5,), 2, likelihood="gaussian"),
}
reconstruction = pytest.mark.parametrize("name", sorted(RECONSTRUCTION))


@reconstruction
def test_reconstruction_models_scan_once_per_loss_and_none_inside_values_checked(name, scans):
    torch.manual_seed(0)
    model = RECONSTRUCTION[name]()
    x = torch.rand(5, 6, generator=torch.Generator().manual_seed(1))
    model.loss(x)
    assert len(scans) == 1, f"{name}.loss scanned {scans}"
    scans.clear()
    with values_checked():
        model.loss(x)
        model(x)
    assert scans == []


@reconstruction
def test_reconstruction_models_check_input_inside_values_checked(name):
    torch.manual_seed(0)
    model = RECONSTRUCTION[name]()
    x = torch.rand(5, 6, generator=torch.Generator().manual_seed(1))
    x[1, 2] = float("inf")
    with values_checked():
        model.check_input(x[:1])  # fine data passes
        with pytest.raises(ValueError, match=r"NaN or inf in its input: 1 non-finite value"):
            model.check_input((x, torch.zeros(5)))


def test_vae_check_input_names_values_outside_the_unit_interval():
    model = VAE.mlp(6, (5,), 2)
    x = torch.rand(5, 6, generator=torch.Generator().manual_seed(1)) * 3
    with values_checked():
        model.loss(x)  # skipped: the trainer checked its data already
        with pytest.raises(ValueError, match=r"needs inputs in \[0, 1\], got values in"):
            model.check_input(x)
