"""Fréchet distance against closed forms, scipy's sqrtm and samples with exact statistics;
the feature classifier whose features it is computed on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from companion.evaluation import frechet_distance, frechet_distance_gaussians, gaussian_statistics
from companion.models import FashionClassifier
from companion.models.classifier import extract_features
from companion.pretrained import load_fashion_classifier

F64 = torch.float64


def random_spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=F64)
    return A @ A.T / d + 0.1 * torch.eye(d, dtype=F64)


def samples_with_statistics(mean: torch.Tensor, cov: torch.Tensor, n: int, seed: int):
    """n rows whose sample mean and unbiased covariance are exactly ``mean`` and ``cov``."""
    d = mean.shape[0]
    Z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)
    Z = Z - Z.mean(0)
    L = torch.linalg.cholesky(Z.T @ Z / (n - 1))
    white = torch.linalg.solve_triangular(L, Z.T, upper=False).T  # sample covariance I
    return white @ torch.linalg.cholesky(cov).T + mean


def test_diagonal_covariances_give_the_closed_form():
    # commuting covariances: tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (s1 - s2)^2 over std devs
    m1, m2 = torch.tensor([0.0, 1.0, -2.0], dtype=F64), torch.tensor([1.0, 1.0, 0.5], dtype=F64)
    s1, s2 = torch.tensor([1.0, 2.0, 0.5], dtype=F64), torch.tensor([3.0, 0.5, 0.5], dtype=F64)
    expected = float((m1 - m2).pow(2).sum() + (s1 - s2).pow(2).sum())
    value = frechet_distance_gaussians(m1, torch.diag(s1**2), m2, torch.diag(s2**2))
    assert value == pytest.approx(expected, rel=1e-12)


def test_one_dimensional_closed_form():
    # W2^2 between N(a, s^2) and N(b, t^2) is (a - b)^2 + (s - t)^2
    value = frechet_distance_gaussians(
        torch.tensor([2.0]), torch.tensor([[4.0]]), torch.tensor([-1.0]), torch.tensor([[0.25]])
    )
    assert value == pytest.approx(9.0 + 1.5**2, rel=1e-12)


def test_general_covariances_match_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    d = 6
    S1, S2 = random_spd(d, 0), random_spd(d, 1)
    m1 = torch.randn(d, generator=torch.Generator().manual_seed(2), dtype=F64)
    m2 = torch.zeros(d, dtype=F64)
    covmean = scipy_linalg.sqrtm(S1.numpy() @ S2.numpy())
    expected = float(((m1 - m2) ** 2).sum()) + np.trace(S1.numpy() + S2.numpy() - 2 * covmean.real)
    assert frechet_distance_gaussians(m1, S1, m2, S2) == pytest.approx(expected, rel=1e-9)


def test_samples_with_exact_statistics_give_the_gaussian_value():
    d = 5
    m1, m2 = torch.zeros(d, dtype=F64), torch.linspace(-1, 1, d, dtype=F64)
    S1, S2 = random_spd(d, 3), random_spd(d, 4)
    A = samples_with_statistics(m1, S1, 200, seed=0)
    B = samples_with_statistics(m2, S2, 300, seed=1)
    mean, cov = gaussian_statistics(A)
    torch.testing.assert_close(mean, m1, atol=1e-12, rtol=0)
    torch.testing.assert_close(cov, S1)
    expected = frechet_distance_gaussians(m1, S1, m2, S2)
    assert frechet_distance(A, B) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(B.numpy(), A.float()) == pytest.approx(expected, rel=1e-5)


def test_symmetric_and_zero_for_identical_sets():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(100, 8, generator=g, dtype=F64) @ random_spd(8, 5)
    B = torch.randn(80, 8, generator=g, dtype=F64) + 0.3
    assert frechet_distance(A, B) == pytest.approx(frechet_distance(B, A), rel=1e-9)
    assert abs(frechet_distance(A, A)) < 1e-9 * float(A.var(0).sum())
    assert frechet_distance(A, B) > 0.1


def test_singular_covariances_are_fine():
    # fewer samples than features: rank-deficient covariances, still a finite distance >= 0
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(5, 20, generator=g), torch.randn(6, 20, generator=g)
    value = frechet_distance(A, B)
    assert np.isfinite(value) and value > 0


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="at least 2 are needed"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="feats_a has 3 features but feats_b has 4"):
        frechet_distance(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="must be 2-D"):
        frechet_distance(torch.randn(5), torch.randn(5, 1))
    with pytest.raises(ValueError, match="covariance of shape"):
        frechet_distance_gaussians(torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2))


# ------------------------------------------------------------ feature classifier
def test_classifier_features_accept_rows_and_images():
    model = FashionClassifier().eval()
    x = torch.rand(5, 1, 28, 28)
    feats = model.features(x)
    assert feats.shape == (5, model.feature_dim) and model(x).shape == (5, 10)
    torch.testing.assert_close(model.features(x.reshape(5, 784)), feats)
    torch.testing.assert_close(extract_features(model, x, batch_size=2), feats)
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\].*\(x \+ 1\) / 2"):
        model.features(2 * x - 1)
    with pytest.raises(ValueError, match="got shape"):
        model.features(torch.rand(5, 1, 32, 32))
    with pytest.raises(TypeError, match="to_float"):
        model.features(torch.zeros(5, 784, dtype=torch.uint8))


@pytest.mark.needs_data
def test_shipped_classifier_accuracy_and_feature_distances():
    """The shipped weights reach the 90 % target, and their features tell real from broken."""
    from companion.data import load_fashion_mnist, to_float

    model = load_fashion_classifier()
    assert not model.training
    x_test, y_test = load_fashion_mnist("test", download=False)
    x_test = to_float(x_test)
    assert model.accuracy(x_test, y_test) >= 0.90
    x_train = to_float(load_fashion_mnist("train", download=False)[0][:2000])
    shuffled = x_test[:2000].reshape(2000, -1)[
        :, torch.randperm(784, generator=torch.Generator().manual_seed(0))
    ]
    real_a, real_b = extract_features(model, x_test[:2000]), extract_features(model, x_train)
    fd_real = frechet_distance(real_a, real_b)
    fd_broken = frechet_distance(real_a, extract_features(model, shuffled))
    assert fd_real < 0.1 * fd_broken, (fd_real, fd_broken)
