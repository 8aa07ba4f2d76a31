"""The raster-scan PixelRNN: exact autoregressive structure, normalisation, sampling, completion.

Each property is checked independently of the model's own bookkeeping:
autograd for which pixels a logit sees, brute force over all 2^9 images of
a 3×3 model for normalisation, and sample frequencies against
``exp(log_prob)`` for sampling (which runs the LSTM one step at a time, a
different code path from ``log_prob``'s single call).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from autoregressive_checks import (
    F64,
    all_binary,
    assert_completions_follow_the_conditional,
    assert_samples_follow_log_prob,
    randomise,
)

from companion.errors import CheckpointMismatchError
from companion.models import PixelRNN
from companion.models.autoregressive.pixelrnn import halve_images
from companion.training import Trainer


@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("t", [0, 3, 4, 9, 19])
def test_logit_depends_only_on_earlier_pixels(t, n_layers):
    H, W = 4, 5
    model = randomise(PixelRNN(6, n_layers, image_shape=(H, W)).double())
    x = torch.rand(1, H * W, dtype=F64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    model(x)[0, t].backward()
    assert torch.all(x.grad[0, t:] == 0), "the logit sees its own pixel or a later one"
    if t > 0:
        assert torch.all(x.grad[0, t - 1] != 0), "the logit must see the pixel to its left"


def test_the_recurrence_carries_information_from_far_back():
    """Pixel (3, 4) is influenced by pixel (0, 0): the LSTM state reaches across rows."""
    model = randomise(PixelRNN(8, image_shape=(4, 5)).double(), scale=0.5)
    x = torch.rand(1, 20, dtype=F64, generator=torch.Generator().manual_seed(2))
    x.requires_grad_(True)
    model(x)[0, 19].backward()
    assert x.grad[0, 0] != 0


@pytest.mark.parametrize("n_layers", [1, 2])
def test_sums_to_one_over_all_3x3_images(n_layers):
    model = randomise(PixelRNN(5, n_layers, image_shape=(3, 3)).double())
    with torch.no_grad():
        total = torch.logsumexp(model.log_prob(all_binary(9)), 0)
    assert abs(float(total)) < 1e-9, float(total)


def test_log_prob_matches_a_step_by_step_computation():
    """One LSTM call over the sequence equals LSTMCell steps on hand-built inputs."""
    H, W = 3, 4
    model = randomise(PixelRNN(5, image_shape=(H, W)).double(), scale=0.7)
    x = torch.bernoulli(torch.full((2, H, W), 0.5, dtype=F64))
    cell = torch.nn.LSTMCell(5, 5).double()
    lstm = model.lstm
    cell.load_state_dict({"weight_ih": lstm.weight_ih_l0, "weight_hh": lstm.weight_hh_l0,
                          "bias_ih": lstm.bias_ih_l0, "bias_hh": lstm.bias_hh_l0})  # fmt: skip
    h = c = torch.zeros(2, 5, dtype=F64)
    expected = torch.zeros(2, dtype=F64)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 0))  # row -1 and columns -1, W are 0
    for r, col in itertools.product(range(H), range(W)):
        left = x[:, r, col - 1] if col > 0 else torch.zeros(2, dtype=F64)
        up = padded[:, r, col : col + 3]  # up-left, up, up-right
        first = torch.full((2,), float(col == 0), dtype=F64)
        h, c = cell(torch.cat([left[:, None], up, first[:, None]], 1), (h, c))
        logit = model.readout(h)[:, 0] + model.position_logit[r * W + col]
        p = torch.sigmoid(logit)
        v = x[:, r, col]
        expected += v * p.log() + (1 - v) * (1 - p).log()
    torch.testing.assert_close(model.log_prob(x).detach(), expected.detach())


def test_samples_follow_its_own_probabilities():
    assert_samples_follow_log_prob(randomise(PixelRNN(4, image_shape=(2, 2)).double(), scale=0.8))


def test_completion_keeps_the_given_rows_and_follows_the_conditional():
    model = randomise(PixelRNN(4, image_shape=(2, 2)).double(), scale=0.8)
    assert_completions_follow_the_conditional(model)


def test_sampling_is_reproducible_with_a_generator():
    model = randomise(PixelRNN(4, image_shape=(3, 3)), scale=0.5)
    a = model.sample(5, generator=torch.Generator().manual_seed(7))
    b = model.sample(5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}


def test_trains_on_the_shared_trainer():
    torch.manual_seed(0)
    x = (torch.rand(64, 1, 4, 4) < torch.linspace(0.1, 0.9, 16).reshape(1, 1, 4, 4)).float()
    model = PixelRNN(8, image_shape=(4, 4))
    before = model.loss(x)["loss"].item()
    history = Trainer(model, epochs=30, batch_size=32, lr=1e-2, seed=0, progress=False).fit(x)
    assert history["loss"][-1] < before - 1.0
    assert set(history) >= {"loss", "bits_per_dim"}


def test_halve_images_averages_2x2_blocks():
    x = torch.arange(16.0).reshape(1, 1, 4, 4) / 16
    out = halve_images(x)
    expected = torch.tensor([[0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15]])
    torch.testing.assert_close(out, expected / 64)
    torch.testing.assert_close(halve_images(x.reshape(1, 16)), out)
    with pytest.raises(ValueError, match="even H and W"):
        halve_images(torch.zeros(2, 1, 3, 4))
    with pytest.raises(ValueError, match="not square"):
        halve_images(torch.zeros(2, 15))


def test_bad_input_is_explained():
    model = PixelRNN(4, image_shape=(3, 3))
    with pytest.raises(ValueError, match=r"got shape .*reshape"):
        model.log_prob(torch.zeros(2, 1, 3, 4))
    with pytest.raises(ValueError, match=r"x\[0, 2\] = 0\.3; binarise the images first"):
        model.log_prob(torch.tensor([[0.0, 1.0, 0.3, 1, 0, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="n_rows=4 must be between 0 and the image height 3"):
        model.complete(torch.zeros(1, 9), 4)
    with pytest.raises(ValueError, match="height, width"):
        PixelRNN(4, image_shape=(3, 3, 3))


def test_weights_do_not_load_into_another_image_shape():
    state = PixelRNN(4, image_shape=(2, 8)).state_dict()
    with pytest.raises(CheckpointMismatchError, match="saved with other settings"):
        PixelRNN(4, image_shape=(4, 4)).load_state_dict(state)
