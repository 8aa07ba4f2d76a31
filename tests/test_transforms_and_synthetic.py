import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from companion import data


def test_to_float_and_flatten():
    images = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    x = data.to_float(images)
    assert x.dtype == torch.float32 and torch.allclose(x, torch.tensor([[[0, 1], [0.2, 0.4]]]))
    assert data.flatten(x).shape == (1, 4)
    with pytest.raises(TypeError, match="to_float expects uint8 pixels, got torch.float32"):
        data.to_float(x)


def test_binarize_has_the_right_mean_and_rejects_unscaled_input():
    torch.manual_seed(0)
    p = torch.linspace(0, 1, 11)
    samples = data.binarize(p.expand(20000, 11))
    assert set(samples.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(samples.mean(0), p, atol=0.015)
    with pytest.raises(ValueError, match=r"values in \[0, 1\], got \[0, 255\]"):
        data.binarize(torch.tensor([0.0, 255.0]))


def test_dynamic_binarizer_draws_fresh_samples_and_keeps_labels():
    torch.manual_seed(0)
    x = torch.full((64, 10), 0.5)
    labels = torch.arange(64)
    binarizer = data.DynamicBinarizer()
    a, la = binarizer((x, labels))
    b, _ = binarizer((x, labels))
    assert not torch.equal(a, b) and torch.equal(la, labels)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 500), frac=st.floats(0.01, 0.9), seed=st.integers(0, 1000))
def test_train_val_split_is_a_seeded_partition(n, frac, seed):
    assume(round(n * frac) < n)  # otherwise no training data is left (an error, tested below)
    x = torch.arange(n)
    (train,), (val,) = data.train_val_split(x, val_fraction=frac, seed=seed)
    assert sorted(torch.cat([train, val]).tolist()) == list(range(n))
    assert len(val) >= 1 and len(train) >= 1
    (train2,), _ = data.train_val_split(x, val_fraction=frac, seed=seed)
    assert torch.equal(train, train2)


def test_train_val_split_errors():
    with pytest.raises(ValueError, match="same length; got 3 and 4"):
        data.train_val_split(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="val_fraction=1.5 must be strictly between 0 and 1"):
        data.train_val_split(torch.zeros(3), val_fraction=1.5)
    with pytest.raises(ValueError, match="val_fraction=0.75 leaves no training data out of n=2"):
        data.train_val_split(torch.zeros(2), val_fraction=0.75)


def test_swiss_roll_lies_on_its_parametrisation():
    X, t = data.make_swiss_roll(500, seed=1)
    assert X.shape == (500, 3) and t.shape == (500,)
    assert torch.allclose(X[:, 0], t * torch.cos(t), atol=1e-4)
    assert torch.allclose(X[:, 2], t * torch.sin(t), atol=1e-4)
    assert t.min() >= 1.5 * math.pi and t.max() <= 4.5 * math.pi


def test_s_curve_and_circle_and_sphere():
    X, t = data.make_s_curve(300, seed=0)
    assert torch.allclose(X[:, 0], torch.sin(t), atol=1e-5)
    C, _ = data.make_noisy_circle(2000, radius=2.0, noise=0.0)
    assert torch.allclose(C.norm(dim=1), torch.full((2000,), 2.0), atol=1e-5)
    S, _ = data.make_noisy_sphere(1000, dim=5, noise=0.0)
    assert S.shape == (1000, 5) and torch.allclose(S.norm(dim=1), torch.ones(1000), atol=1e-5)


def test_two_moons_labels_balanced():
    X, y = data.make_two_moons(101, noise=0.0)
    assert X.shape == (101, 2) and y.bincount().tolist() == [51, 50]


def test_ring_defaults_are_pacgans():
    X, modes = data.make_ring(40000, seed=0)
    centers = data.ring_centers()
    assert centers.shape == (8, 2)
    assert torch.allclose(centers.norm(dim=1), torch.ones(8))
    residual = X - centers[modes]
    assert abs(residual.std().item() - 0.01) < 5e-4
    assert modes.bincount().min() > 4500  # equal weights


def test_grid_has_25_modes_at_even_coordinates():
    X, modes = data.make_grid(20000, seed=0)
    centers = data.grid_centers()
    assert centers.shape == (25, 2)
    assert set(centers.flatten().tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert abs((X - centers[modes]).std().item() - 0.05) < 2e-3


def test_generators_are_seeded():
    a, _ = data.make_ring(10, seed=5)
    b, _ = data.make_ring(10, seed=5)
    c, _ = data.make_ring(10, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="n_samples=0 must be >= 1"):
        data.make_swiss_roll(0)


def test_digits_are_bundled():
    X, y = data.load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,) and X.max() == 16
