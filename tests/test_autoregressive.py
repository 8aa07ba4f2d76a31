"""MADE and PixelCNN, checked by autograd and by enumerating every binary input.

The autoregressive property is read off the Jacobian: the logit of variable i
may depend on the variables before i only. Normalisation is checked by
summing p(x) over all 2^D inputs, and sampling by comparing the frequencies
of drawn vectors with those probabilities.
"""

from __future__ import annotations

import math

import pytest
import torch
from autoregressive_checks import (
    F64,
    all_binary,
    assert_completions_follow_the_conditional,
    assert_samples_follow_log_prob,
    randomise,
)

import companion.pretrained.loaders as loaders
from companion.errors import CheckpointMismatchError
from companion.models import MADE, PixelCNN
from companion.models.autoregressive.base import check_binary
from companion.models.autoregressive.made import MaskedLinear
from companion.models.autoregressive.pixelcnn import MaskedConv2d
from companion.training import Trainer


def jacobian(model, x: torch.Tensor) -> torch.Tensor:
    """d logits / d input for one example: (outputs, inputs), outputs and inputs flattened."""
    return torch.autograd.functional.jacobian(lambda v: model(v).reshape(-1), x).reshape(
        x.numel(), x.numel()
    )


# ------------------------------------------------------------------ MADE
@pytest.mark.parametrize(
    "ordering, hidden, num_masks",
    [("natural", (30,), 1), ("random", (40, 30), 1), ([4, 0, 7, 2, 1, 6, 3, 5], (25, 25), 3)],
)
def test_made_output_i_depends_only_on_earlier_inputs(ordering, hidden, num_masks):
    D = 8
    model = randomise(MADE(D, hidden, ordering=ordering, num_masks=num_masks, seed=3).double())
    x = torch.rand(1, D, dtype=F64, generator=torch.Generator().manual_seed(1))
    for k in range(num_masks):
        model.set_mask(k)
        position = torch.empty(D, dtype=torch.long)
        position[model.ordering] = torch.arange(D)
        J = jacobian(model, x)  # J[i, j] = d logit_i / d x_j
        later = position[None, :] >= position[:, None]  # j at or after i in the ordering
        assert torch.all(J[later] == 0), "a logit depends on its own or a later input"
        # the very first variable has only a bias; every other sees something
        first = int(model.ordering[0])
        assert torch.all(J[first] == 0)
        seen = J.abs().sum(1) > 0
        assert int(seen.sum()) >= D - 2, f"only {int(seen.sum())} logits see any input"


@pytest.mark.parametrize(
    "ordering, num_masks", [("natural", 1), ("random", 1), ("random", 4), ([2, 0, 1, 4, 3], 2)]
)
def test_made_sums_to_one_over_all_binary_vectors(ordering, num_masks):
    D = 9 if num_masks == 1 else 5
    model = randomise(MADE(D, (16, 12), ordering=ordering, num_masks=num_masks, seed=1).double())
    with torch.no_grad():
        total = torch.logsumexp(model.log_prob(all_binary(D)), 0)
    assert abs(float(total)) < 1e-5, float(total)


def test_made_log_prob_matches_a_hand_computation():
    model = randomise(MADE(3, (5,), seed=0).double())
    x = torch.tensor([[1.0, 0.0, 1.0]], dtype=F64)
    logits = model(x)[0].detach()
    p = torch.sigmoid(logits)
    expected = math.log(p[0]) + math.log(1 - p[1]) + math.log(p[2])
    assert float(model.log_prob(x).detach()) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("num_masks", [1, 3])
def test_made_samples_follow_its_own_probabilities(num_masks):
    D, n = 4, 40_000
    model = randomise(MADE(D, (10,), ordering="random", num_masks=num_masks, seed=2).double())
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    g = torch.Generator().manual_seed(0)
    x = model.sample(n, generator=g)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    codes = (x * 2 ** torch.arange(D - 1, -1, -1, dtype=F64)).sum(1).long()
    counts = torch.bincount(codes, minlength=2**D).double()
    probs = model.log_prob(all_binary(D)).exp().detach()
    se = (n * probs * (1 - probs)).sqrt()
    assert torch.all((counts - n * probs).abs() < 5 * se + 1), (counts, n * probs)


def test_made_sample_is_reproducible_with_a_generator():
    model = MADE(6, (8,), seed=0)
    a = model.sample(5, generator=torch.Generator().manual_seed(7))
    b = model.sample(5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.shape == (5, 6)


def test_made_masks_depend_only_on_the_seed():
    a, b = MADE(10, (20,), ordering="random", seed=5), MADE(10, (20,), ordering="random", seed=5)
    c = MADE(10, (20,), ordering="random", seed=6)
    assert torch.equal(a.ordering, b.ordering)
    assert all(torch.equal(x.mask, y.mask) for x, y in zip(a.layers, b.layers, strict=True))
    assert not all(torch.equal(x.mask, y.mask) for x, y in zip(a.layers, c.layers, strict=True))
    assert isinstance(a.layers[0], MaskedLinear) and "layers.0.mask" not in a.state_dict()


def test_made_trains_on_the_shared_trainer_and_cycles_masks():
    torch.manual_seed(0)
    probs = torch.tensor([0.9, 0.1, 0.5, 0.8, 0.2, 0.7])
    x = torch.bernoulli(probs.expand(512, 6))
    model = MADE(6, (32,), ordering="random", num_masks=2, seed=0)
    before = float(model.loss(x)["loss"].detach())
    assert model.mask_index == 1, "a training-mode loss moves on to the next mask"
    model.eval()
    model.loss(x)
    assert model.mask_index == 1, "an eval-mode loss keeps the mask"
    model.train()
    model.set_mask(0)
    trainer = Trainer(model, epochs=30, batch_size=64, lr=1e-2, progress=False)
    history = trainer.fit(x)
    entropy = float(-(probs * probs.log() + (1 - probs) * (1 - probs).log()).sum())
    assert history["loss"][-1] < before
    assert history["loss"][-1] == pytest.approx(entropy, abs=0.1)
    assert set(history) >= {"loss", "bits_per_dim"}


# ------------------------------------------------------------------ PixelCNN
def test_masked_convolution_masks():
    a, b = MaskedConv2d(1, 1, 3, "A").mask[0, 0], MaskedConv2d(1, 1, 3, "B").mask[0, 0]
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]


@pytest.mark.parametrize("dilations", [(1, 1), (2, 3)])
@pytest.mark.parametrize("r, c", [(0, 0), (0, 3), (2, 0), (3, 4), (5, 5)])
def test_pixelcnn_logit_depends_only_on_earlier_pixels(r, c, dilations):
    H = W = 6
    model = randomise(PixelCNN(8, 2, image_shape=(H, W), dilations=dilations).double())
    x = torch.rand(1, 1, H, W, dtype=F64, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    model(x)[0, 0, r, c].backward()
    grad = x.grad[0, 0].reshape(-1)
    index = r * W + c
    assert torch.all(grad[index:] == 0), "the logit sees its own pixel or a later one"
    if index > 0:
        assert torch.any(grad[:index] != 0), "the logit sees no earlier pixel"


@pytest.mark.parametrize("dilations", [None, (1, 2)])
def test_pixelcnn_sums_to_one_over_all_3x3_images(dilations):
    model = randomise(PixelCNN(6, 2, image_shape=(3, 3), dilations=dilations).double())
    model.net[-1].weight.data.mul_(0.05)  # keep the logits moderate, as in a trained model
    with torch.no_grad():
        total = torch.logsumexp(model.log_prob(all_binary(9)), 0)
    assert abs(float(total)) < 1e-5, float(total)


@pytest.mark.parametrize("dilations", [(1,), (2,)])
def test_pixelcnn_samples_follow_its_own_probabilities(dilations):
    model = randomise(PixelCNN(4, 1, image_shape=(2, 2), dilations=dilations).double())
    model.net[-1].weight.data.mul_(0.1)
    assert_samples_follow_log_prob(model)


def test_pixelcnn_completions_keep_the_given_rows_and_follow_the_conditional():
    model = randomise(PixelCNN(4, 1, image_shape=(2, 2), dilations=(1,)).double())
    model.net[-1].weight.data.mul_(0.1)
    assert_completions_follow_the_conditional(model)
    with pytest.raises(ValueError, match="n_rows=3 must be between 0 and the image height 2"):
        model.complete(torch.zeros(1, 4, dtype=F64), 3)


def test_pixelcnn_accepts_rows_and_images_alike():
    model = PixelCNN(4, 1, image_shape=(5, 5))
    x = torch.bernoulli(torch.full((3, 1, 5, 5), 0.5))
    lp = model.log_prob(x)
    assert lp.shape == (3,)
    torch.testing.assert_close(model.log_prob(x.reshape(3, 25)), lp)
    torch.testing.assert_close(model.log_prob(x[:, 0]), lp)
    assert set(model.loss(x)) == {"loss", "bits_per_dim"}


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "model, shape",
    [(MADE(6, (4,)), (2, 1, 5)), (PixelCNN(4, 1, image_shape=(3, 3)), (2, 1, 3, 4))],
)
def test_wrong_shape_is_explained(model, shape):
    with pytest.raises(ValueError, match=r"got shape .*reshape"):
        model.log_prob(torch.zeros(shape))


@pytest.mark.parametrize(
    "model, x",
    [(MADE(4, (4,)), torch.tensor([[0.0, 1.0, 0.3, 1.0]])),
     (PixelCNN(4, 1, image_shape=(2, 2)), torch.tensor([[0.0, 1.0, 0.3, 1.0]]))],
)  # fmt: skip
def test_non_binary_input_names_the_value_and_the_fix(model, x):
    with pytest.raises(ValueError, match=r"x\[0, .*2\] = 0\.3; binarise the images first"):
        model.log_prob(x)


def test_check_binary_rejects_integers_and_nan():
    with pytest.raises(TypeError, match="float inputs"):
        check_binary(torch.tensor([[0, 1]]), name="MADE.log_prob")
    with pytest.raises(ValueError, match="non-finite"):
        check_binary(torch.tensor([[0.0, float("nan")]]), name="MADE.log_prob")


def test_bad_hyper_parameters_are_explained():
    with pytest.raises(ValueError, match="permutation of range"):
        MADE(4, (3,), ordering=[0, 1, 1, 2])
    with pytest.raises(ValueError, match="not 'natural'"):
        MADE(4, (3,), ordering="reverse")
    with pytest.raises(ValueError, match="at least one width"):
        MADE(4, ())
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2d(1, 1, 3, "C")
    with pytest.raises(ValueError, match="odd"):
        MaskedConv2d(1, 1, 4, "A")
    with pytest.raises(ValueError, match="one per block"):
        PixelCNN(4, 2, dilations=(1,))


# ------------------------------------------------------------------ shipped weights
@pytest.mark.parametrize(
    "constant, loader, script",
    [("MADE_WEIGHTS", "load_made", "train_made.py"),
     ("PIXELCNN_WEIGHTS", "load_pixelcnn", "train_pixelcnn.py"),
     ("PIXELRNN_WEIGHTS", "load_pixelrnn", "train_pixelrnn.py")],
)  # fmt: skip
def test_loaders_name_the_script_that_makes_missing_weights(monkeypatch, constant, loader, script):
    monkeypatch.setattr(loaders, constant, "no_such_weights.pt")
    with pytest.raises(FileNotFoundError, match=f"python scripts/{script}"):
        getattr(loaders, loader)()


def test_loaders_rebuild_the_shipped_architecture(monkeypatch):
    for build, load in (
        (lambda: MADE(784, loaders.MADE_HIDDEN), loaders.load_made),
        (lambda: PixelCNN(dilations=loaders.PIXELCNN_DILATIONS), loaders.load_pixelcnn),
    ):
        torch.manual_seed(0)
        reference = build()
        state = {k: v.clone() for k, v in reference.state_dict().items()}
        monkeypatch.setattr(
            loaders, "load_shipped_state", lambda *_, s=state: {k: v.float() for k, v in s.items()}
        )
        model = load()
        assert not model.training
        x = torch.bernoulli(torch.full((2, 784), 0.3))
        with torch.no_grad():
            torch.testing.assert_close(model.log_prob(x), reference.log_prob(x))


@pytest.mark.parametrize(
    "saved, other",
    [(lambda: MADE(5, (4,), seed=0), lambda: MADE(5, (4,), seed=1)),
     (lambda: MADE(5, (4,), ordering=[4, 3, 2, 1, 0]), lambda: MADE(5, (4,))),
     (lambda: PixelCNN(4, 2, dilations=(1, 2)), lambda: PixelCNN(4, 2))],
)  # fmt: skip
def test_weights_do_not_load_into_other_masks_or_dilations(saved, other):
    state = saved().state_dict()
    with pytest.raises(CheckpointMismatchError, match="saved with other settings"):
        other().load_state_dict(state)
    twin = saved()
    twin.load_state_dict(state)  # the same settings load fine


# ------------------------------------------------------------------ deepening
def test_deepen_keeps_the_function_and_adds_trainable_blocks():
    from companion.models.autoregressive.pixelcnn import deepen

    small = randomise(PixelCNN(6, 2, image_shape=(6, 6), dilations=(1, 2)).double())
    x = torch.bernoulli(torch.full((4, 1, 6, 6), 0.5, dtype=F64))
    deeper = deepen(small, (1, 2, 1))
    assert deeper.n_blocks == 5 and deeper.dilations == (1, 2, 1, 2, 1)
    assert deeper.net[0].weight.dtype == F64
    torch.testing.assert_close(deeper.log_prob(x), small.log_prob(x))
    deeper.loss(x)["loss"].backward()
    assert deeper.net[5].net[-1].weight.grad.abs().sum() > 0, "the new blocks can learn"
    # still autoregressive once the new blocks are non-zero
    randomise(deeper, seed=3)
    image = torch.rand(1, 1, 6, 6, dtype=F64).requires_grad_()
    deeper(image)[0, 0, 3, 2].backward()
    assert torch.all(image.grad[0, 0].reshape(-1)[3 * 6 + 2 :] == 0)
