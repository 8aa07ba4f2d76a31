"""companion.classical.pca.PCA against scikit-learn and closed forms, with property tests."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA as SkPCA

from companion.classical import PCA, principal_angles
from companion.errors import NotFittedError


def low_rank(n, d, rank, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    spectrum = np.linspace(3.0, 0.5, rank)
    return (rng.normal(size=(n, rank)) * spectrum) @ rng.normal(size=(rank, d)) + offset


DATASETS = {
    "tall": lambda: np.random.default_rng(0).normal(size=(400, 12)) @ np.diag(np.arange(12, 0, -1)),
    "wide": lambda: np.random.default_rng(1).normal(size=(30, 80)),
    "rank_deficient": lambda: low_rank(200, 20, 5, seed=2),
    "offset": lambda: low_rank(300, 10, 10, seed=3, offset=1e3),
    "digits": lambda: __import__("sklearn.datasets").datasets.load_digits().data,
}
CASES = [
    ("tall", 5, "covariance_eigh", "covariance_eigh"),
    ("tall", 5, "full", "full"),
    ("tall", 0.9, "auto", "full"),
    ("wide", 10, "full", "full"),
    ("wide", 0.5, "full", "full"),
    ("rank_deficient", 5, "covariance_eigh", "full"),
    ("offset", 4, "covariance_eigh", "full"),
    ("digits", 20, "auto", "full"),
    ("digits", 0.8, "auto", "full"),
    ("digits", 10, "randomized", "full"),
]


def assert_matches_sklearn(ours, ref, X, rtol=1e-5):
    assert ours.n_components_ == ref.n_components_
    # components equal up to sign: both libraries fix the sign the same way
    np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-5)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=rtol)
    np.testing.assert_allclose(
        ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=rtol
    )
    np.testing.assert_allclose(ours.singular_values_, ref.singular_values_, rtol=rtol)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-4, atol=1e-10)
    Z = ours.transform(X)
    np.testing.assert_allclose(Z, ref.transform(X), atol=1e-6 * np.abs(X).max())
    np.testing.assert_allclose(
        ours.inverse_transform(Z), ref.inverse_transform(Z), atol=1e-6 * np.abs(X).max()
    )


@pytest.mark.parametrize(("name", "k", "solver", "sk_solver"), CASES)
def test_matches_sklearn(name, k, solver, sk_solver):
    X = DATASETS[name]()
    ours = PCA(k, solver=solver, random_state=0).fit(X)
    ref = SkPCA(k, svd_solver=sk_solver).fit(X)
    if solver == "randomized":  # an approximation: compare the subspace and variances
        np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-3)
        angles = principal_angles(
            torch.as_tensor(ours.components_.T), torch.as_tensor(ref.components_.T)
        )
        assert angles.max() < 0.05
    else:
        assert_matches_sklearn(ours, ref, X)


def test_probabilistic_pca_likelihood_matches_sklearn_and_closed_form():
    X = low_rank(300, 8, 8, seed=5)
    ours = PCA(3).fit(X)
    ref = SkPCA(3).fit(X)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-8)
    np.testing.assert_allclose(ours.get_covariance(), ref.get_covariance(), rtol=1e-8, atol=1e-10)
    mvn = torch.distributions.MultivariateNormal(
        torch.as_tensor(ours.mean_), covariance_matrix=torch.as_tensor(ours.get_covariance())
    )
    np.testing.assert_allclose(
        ours.score_samples(X), mvn.log_prob(torch.as_tensor(X)).numpy(), rtol=1e-8
    )
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-8)


@pytest.mark.needs_data
def test_fashion_mnist_float32_is_accurate():
    """float32 Fashion-MNIST: explained variances within 1e-5 of a float64 reference."""
    from companion.data import flatten, load_fashion_mnist, to_float

    X = flatten(to_float(load_fashion_mnist("test", download=False)[0]))  # (10000, 784) float32
    pca = PCA(30).fit(X)
    assert pca.solver_ == "covariance_eigh" and pca.components_.dtype == torch.float32
    X64 = X.double() - X.double().mean(0)
    reference = torch.linalg.eigvalsh(X64.T @ X64).flip(0)[:30] / (len(X) - 1)
    relative = (pca.explained_variance_.double() / reference - 1).abs().max().item()
    assert relative < 1e-5, relative
    sk = SkPCA(30, svd_solver="full").fit(X.double().numpy())
    np.testing.assert_allclose(pca.components_.double().numpy(), sk.components_, atol=1e-4)


# ---------------------------------------------------------------- properties
matrices = st.builds(
    lambda n, d, seed, offset: (
        np.random.default_rng(seed).normal(size=(n, d)) * np.linspace(2, 0.2, d) + offset
    ),
    st.integers(5, 40),
    st.integers(2, 12),
    st.integers(0, 10_000),
    st.sampled_from([0.0, 5.0, -300.0]),
)


@settings(max_examples=40, deadline=None)
@given(X=matrices, data=st.data())
def test_reconstruction_error_equals_discarded_eigenvalues(X, data):
    n, d = X.shape
    k = data.draw(st.integers(1, min(n, d)))
    solver = data.draw(st.sampled_from(["covariance_eigh", "full"]))
    pca = PCA(k, solver=solver).fit(X)
    full = PCA(None, solver="full").fit(X)
    error = ((X - pca.inverse_transform(pca.transform(X))) ** 2).sum() / (n - 1)
    discarded = full.explained_variance_[k:].sum()
    assert error == pytest.approx(discarded, rel=1e-7, abs=1e-9 * full.explained_variance_.sum())


@settings(max_examples=40, deadline=None)
@given(X=matrices, data=st.data())
def test_components_are_orthonormal_and_whitened_codes_have_identity_covariance(X, data):
    n, d = X.shape
    singular = np.linalg.svd(X - X.mean(0), compute_uv=False)
    rank = int((singular > 1e-3 * singular[0]).sum())  # whitening needs variances well above 0
    k = data.draw(st.integers(1, max(1, min(rank, d))))
    pca = PCA(k, whiten=True, solver=data.draw(st.sampled_from(["covariance_eigh", "full"]))).fit(X)
    W = pca.components_
    np.testing.assert_allclose(W @ W.T, np.eye(k), atol=1e-10)
    Z = pca.transform(X)
    np.testing.assert_allclose(np.cov(Z, rowvar=False).reshape(k, k), np.eye(k), atol=1e-8)
    np.testing.assert_allclose(
        pca.inverse_transform(Z),
        PCA(k).fit(X).inverse_transform(PCA(k).fit(X).transform(X)),
        atol=1e-8 * (1 + np.abs(X).max()),
    )


@settings(max_examples=25, deadline=None)
@given(X=matrices)
def test_solvers_agree(X):
    k = min(X.shape) - 1 or 1
    a = PCA(k, solver="covariance_eigh").fit(X)
    b = PCA(k, solver="full").fit(X)
    np.testing.assert_allclose(a.explained_variance_, b.explained_variance_, rtol=1e-7, atol=1e-10)


# ---------------------------------------------------------------- kinds
def test_numpy_in_numpy_out_torch_in_torch_out_dtype_kept():
    X = low_rank(100, 6, 6)
    ours = PCA(2).fit(X)
    assert isinstance(ours.components_, np.ndarray) and isinstance(ours.transform(X), np.ndarray)
    T = torch.as_tensor(X, dtype=torch.float32)
    ours = PCA(2).fit(T)
    assert isinstance(ours.components_, torch.Tensor) and ours.components_.dtype == torch.float32
    Z = ours.transform(T)
    assert isinstance(Z, torch.Tensor) and Z.dtype == torch.float32 and Z.shape == (100, 2)
    assert ours.fit_transform(T).shape == (100, 2)


def test_randomized_is_seeded_and_pickles():
    X = low_rank(300, 40, 40, seed=9)
    a = PCA(5, solver="randomized", random_state=3).fit(X)
    b = PCA(5, solver="randomized", random_state=3).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.transform(X), a.transform(X))


# ---------------------------------------------------------------- bad input
def test_nan_is_rejected_with_position():
    X = low_rank(20, 4, 4)
    X[3, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"X contains 1 non-finite value \(first: nan at index \[3, 2\]\)"
    ):
        PCA(2).fit(X)


def test_one_dimensional_input_is_explained():
    with pytest.raises(ValueError, match=r"X must be 2-D .* got shape \(10,\)\. Reshape your data"):
        PCA(1).fit(np.arange(10.0))


def test_too_many_components_is_explained():
    with pytest.raises(
        ValueError, match=r"n_components=7 must be at most min\(n_samples, n_features\)=5"
    ):
        PCA(7).fit(low_rank(5, 8, 3))
    with pytest.raises(ValueError, match=r"n_components=1.5 as a float .* must lie in \(0, 1\)"):
        PCA(1.5).fit(low_rank(20, 4, 4))
    with pytest.raises(ValueError, match=r"solver='randomized' needs an integer n_components"):
        PCA(0.5, solver="randomized").fit(low_rank(20, 4, 4))
    with pytest.raises(ValueError, match=r"solver='eig' is not one of"):
        PCA(2, solver="eig").fit(low_rank(20, 4, 4))


def test_unfitted_and_feature_mismatch():
    with pytest.raises(
        NotFittedError,
        match=r"This PCA instance is not fitted yet; call fit\(X\) before transform\(\)",
    ):
        PCA(2).transform(np.zeros((3, 4)))
    pca = PCA(2).fit(low_rank(30, 4, 4))
    with pytest.raises(
        ValueError, match=r"X has 5 features, but PCA is expecting 4 features as input"
    ):
        pca.transform(np.zeros((3, 5)))
    with pytest.raises(
        ValueError, match=r"Z has 3 features, but PCA is expecting 2 features as input"
    ):
        pca.inverse_transform(np.zeros((3, 3)))


def test_float32_data_far_from_the_origin_stays_accurate():
    """A mean 10^4 times the spread would wreck an uncentred float32 Gram matrix."""
    X64 = low_rank(2000, 10, 10, seed=4, offset=1e4)
    ours = PCA(3).fit(torch.as_tensor(X64, dtype=torch.float32))
    ref = SkPCA(3, svd_solver="full").fit(X64)
    np.testing.assert_allclose(
        ours.explained_variance_.double().numpy(), ref.explained_variance_, rtol=1e-3
    )
    np.testing.assert_allclose(ours.components_.double().numpy(), ref.components_, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_computes_on_the_input_device_and_dtype(device, dtype):
    X = torch.as_tensor(low_rank(500, 12, 12, seed=6), dtype=dtype, device=device)
    pca = PCA(4, whiten=True).fit(X)
    for value in (pca.components_, pca.mean_, pca.explained_variance_, pca.transform(X)):
        assert value.device.type == device.type and value.dtype == dtype
    ref = SkPCA(4).fit(X.double().cpu().numpy())
    rtol = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(
        pca.explained_variance_.double().cpu().numpy(), ref.explained_variance_, rtol=rtol
    )
    np.testing.assert_allclose(
        pca.fit_transform(X).cpu().numpy(), pca.transform(X).cpu().numpy(), atol=1e-5
    )


@pytest.mark.needs_data
def test_randomized_whitening_gives_the_identity():
    """The randomized basis is Rayleigh-Ritz rotated, so whitened codes are uncorrelated."""
    from companion.data import flatten, load_fashion_mnist, to_float

    X = flatten(to_float(load_fashion_mnist("test", download=False)[0][:2000])).double()
    pca = PCA(50, whiten=True, solver="randomized", random_state=0).fit(X)
    Z = pca.transform(X)
    covariance = Z.T @ Z / (len(Z) - 1)
    assert (covariance - torch.eye(50, dtype=Z.dtype)).abs().max() < 1e-8


def test_torch_path_of_the_covariance_solver_matches_the_numpy_path(monkeypatch):
    """The torch code that GPUs run, exercised on the CPU against the NumPy path."""
    import companion.classical.pca as pca_module

    X = torch.as_tensor(low_rank(3000, 40, 40, seed=8, offset=2.0), dtype=torch.float32)
    numpy_fit = PCA(10).fit(X)
    monkeypatch.setattr(pca_module, "_use_numpy", lambda X: False)
    torch_fit = PCA(10).fit(X)
    assert torch_fit.solver_ == "covariance_eigh"
    torch.testing.assert_close(torch_fit.components_, numpy_fit.components_, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        torch_fit.explained_variance_, numpy_fit.explained_variance_, rtol=1e-6, atol=0
    )
    torch.testing.assert_close(torch_fit.mean_, numpy_fit.mean_)
    offset = PCA(3).fit(X + 1e4)  # the centre-first branch, torch path
    torch.testing.assert_close(
        offset.explained_variance_, numpy_fit.explained_variance_[:3], rtol=1e-3, atol=0
    )
