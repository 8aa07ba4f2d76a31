"""GaussianMixture and BernoulliMixture against scikit-learn, closed forms and EM's guarantees."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SkGMM

from companion.classical import BernoulliMixture, ConvergenceWarning, GaussianMixture, KMeans
from companion.classical.mixture import shared_sigma_em_step
from companion.errors import NotFittedError

TYPES = ["full", "tied", "diag", "spherical"]


def mixture_data(seed=0, n=250, d=3, K=4):
    rng = np.random.default_rng(seed)
    parts = [
        rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 5 * rng.normal(size=d) for _ in range(K)
    ]
    return np.concatenate(parts)


def sklearn_start(X, K, kind, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = SkGMM(K, covariance_type=kind, max_iter=1, random_state=seed).fit(X)
    return {
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
    }


@pytest.mark.parametrize("kind", TYPES)
def test_same_start_same_fit_as_sklearn(kind):
    X = mixture_data()
    start = sklearn_start(X, 4, kind)
    ours = GaussianMixture(4, covariance_type=kind, tol=1e-8, max_iter=300, **start).fit(X)
    ref = SkGMM(4, covariance_type=kind, tol=1e-8, max_iter=300, **start).fit(X)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-4)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-4)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-6)
    assert ours.aic(X) == pytest.approx(ref.aic(X), rel=1e-6)
    assert ours.converged_ and ours.n_iter_ == ref.n_iter_


@pytest.mark.needs_data
def test_fashion_mnist_pca_features_match_sklearn():
    from companion.classical import PCA
    from companion.data import flatten, load_fashion_mnist, to_float

    Z = (
        PCA(10)
        .fit_transform(flatten(to_float(load_fashion_mnist("test", download=False)[0][:4000])))
        .double()
        .numpy()
    )
    start = sklearn_start(Z, 5, "full", seed=1)
    ours = GaussianMixture(5, max_iter=40, tol=0, **start)
    ref = SkGMM(5, max_iter=40, tol=0, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(Z)
        ref.fit(Z)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-4)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-4, atol=1e-5)


def test_log_density_is_the_gaussian_density():
    X = mixture_data(seed=2, n=80)
    model = GaussianMixture(2, random_state=0).fit(X)
    density = sum(
        w * multivariate_normal(m, c).pdf(X)
        for w, m, c in zip(model.weights_, model.means_, model.covariances_, strict=True)
    )
    np.testing.assert_allclose(model.score_samples(X), np.log(density), rtol=1e-10)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), K=st.integers(1, 4), kind=st.sampled_from(TYPES))
def test_em_never_lowers_the_likelihood_and_responsibilities_sum_to_one(seed, K, kind):
    """Exact EM (reg_covar=0): adding reg_covar makes the M-step a non-maximiser, and
    the likelihood may then dip by about reg_covar-sized amounts (seen at 1e-4)."""
    X = mixture_data(seed=seed, n=40, d=2, K=3)
    model = GaussianMixture(
        K, covariance_type=kind, tol=0, max_iter=30, reg_covar=0, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            model.fit(X)
        except ValueError as err:  # a component collapsed: exact EM is undefined there
            assert "singular" in str(err)
            assume(False)
    history = np.array(model.lower_bound_history_)
    assert np.all(np.diff(history) >= -1e-9 * (1 + np.abs(history[:-1])))
    np.testing.assert_allclose(model.predict_proba(X).sum(1), 1.0, atol=1e-12)


def test_kmeans_is_the_small_sigma_limit_of_em():
    X = torch.as_tensor(mixture_data(seed=4, n=60, d=2, K=3))
    means = X[[0, 70, 150]].clone()
    lloyd = means.clone()
    for _ in range(10):
        resp, means = shared_sigma_em_step(X, means, sigma=1e-3)
        labels = torch.cdist(X, lloyd).argmin(1)
        lloyd = torch.stack([X[labels == k].mean(0) for k in range(3)])
        assert torch.equal(resp.argmax(1), labels)
        assert resp.max(1).values.min() > 1 - 1e-12  # one-hot
        torch.testing.assert_close(means, lloyd, rtol=1e-12, atol=1e-12)
    final = KMeans(3, init=X[[0, 70, 150]]).fit(X)
    torch.testing.assert_close(
        torch.sort(means, 0).values, torch.sort(final.cluster_centers_, 0).values
    )
    soft, _ = shared_sigma_em_step(X, means, sigma=10.0)
    assert soft.max(1).values.min() < 0.9  # a large σ shares points between components


def test_sampling_reproduces_the_parameters():
    X = mixture_data(seed=5, n=200, d=2, K=2)
    model = GaussianMixture(2, random_state=0).fit(X)
    samples, components = model.sample(40000, seed=0)
    for k in range(2):
        chosen = samples[components == k]
        np.testing.assert_allclose(chosen.mean(0), model.means_[k], atol=0.1)
        np.testing.assert_allclose(np.cov(chosen.T), model.covariances_[k], rtol=0.1, atol=0.05)
    np.testing.assert_allclose(np.bincount(components) / 40000, model.weights_, atol=0.01)


def test_float32_option_and_tensor_kind():
    X = torch.as_tensor(mixture_data(seed=6, n=100, d=2, K=2))
    model = GaussianMixture(2, dtype=torch.float32, random_state=0).fit(X)
    assert isinstance(model.means_, torch.Tensor) and model.means_.dtype == torch.float32


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"n_components=30 is larger than n_samples=20"):
        GaussianMixture(30).fit(np.random.default_rng(0).normal(size=(20, 2)))
    X = mixture_data(n=10)
    X[3, 0] = np.inf
    with pytest.raises(ValueError, match=r"first: inf at index \[3, 0\]"):
        GaussianMixture(2).fit(X)
    with pytest.raises(ValueError, match=r"X must be 2-D"):
        GaussianMixture(2).fit(np.arange(20.0))
    collapsed = np.repeat(
        np.random.default_rng(0).normal(size=(4, 3)), 5, axis=0
    )  # 4 points, 5 copies
    with pytest.raises(ValueError, match=r"singular or not positive definite.*increase reg_covar"):
        GaussianMixture(4, reg_covar=0, random_state=0).fit(collapsed)
    with pytest.raises(ValueError, match=r"covariance_type='ful' is not one of"):
        GaussianMixture(2, covariance_type="ful").fit(mixture_data())
    with pytest.raises(ValueError, match=r"means_init has shape \(3, 3\), expected \(2, 3\)"):
        GaussianMixture(2, means_init=np.zeros((3, 3))).fit(mixture_data())
    with pytest.raises(NotFittedError, match=r"GaussianMixture instance is not fitted yet"):
        GaussianMixture(2).predict(np.zeros((2, 2)))


# ---------------------------------------------------------------- Bernoulli
def binary_mixture(seed=0, n=20000, d=12):
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.tensor(
        [
            [0.9] * (d // 2) + [0.1] * (d - d // 2),
            [0.1] * (d // 2) + [0.9] * (d - d // 2),
            [0.5] * d,
        ]
    )
    z = torch.multinomial(torch.tensor([0.5, 0.3, 0.2]), n, replacement=True, generator=g)
    return torch.bernoulli(prototypes[z], generator=g).double(), prototypes, z


def test_bernoulli_mixture_is_a_normalised_distribution():
    X, _, _ = binary_mixture(d=8)
    model = BernoulliMixture(3, random_state=0).fit(X)
    every_vector = torch.tensor(list(itertools.product([0.0, 1.0], repeat=8)), dtype=torch.float64)
    total = torch.as_tensor(model.score_samples(every_vector)).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-12)


def test_bernoulli_mixture_recovers_prototypes_and_weights():
    X, prototypes, _ = binary_mixture()
    model = BernoulliMixture(3, random_state=0, tol=1e-6).fit(X)
    order = [int(torch.cdist(p[None], model.means_.float()).argmin()) for p in prototypes]
    assert sorted(order) == [0, 1, 2]
    torch.testing.assert_close(model.means_[order].float(), prototypes, atol=0.05, rtol=0)
    torch.testing.assert_close(
        model.weights_[order].float(), torch.tensor([0.5, 0.3, 0.2]), atol=0.03, rtol=0
    )
    history = np.array(model.lower_bound_history_)
    assert np.all(np.diff(history) >= -1e-9)
    samples, comps = model.sample(500, seed=0)
    assert set(samples.unique().tolist()) <= {0.0, 1.0} and samples.shape == (500, 12)


def test_bernoulli_log_prob_matches_a_direct_product():
    X, _, _ = binary_mixture(n=50, d=6)
    model = BernoulliMixture(2, random_state=1).fit(X)
    mu, w = model.means_, model.weights_
    direct = (
        w[None, :] * torch.prod(mu[None] ** X[:, None] * (1 - mu[None]) ** (1 - X[:, None]), dim=2)
    ).sum(1)
    torch.testing.assert_close(torch.as_tensor(model.score_samples(X)), direct.log())


def test_bernoulli_rejects_non_binary_data():
    with pytest.raises(
        ValueError, match=r"needs binary data \(0 or 1\), but X\[0, 1\] = 0.5; binarise it"
    ):
        BernoulliMixture(2).fit(np.array([[0, 0.5], [1, 1], [0, 1]]))


def test_bernoulli_binarize_thresholds_the_data_as_bernoulli_nb_does():
    X = np.random.default_rng(0).random((60, 8))
    binary = (X > 0.5).astype(np.float64)
    thresholded = BernoulliMixture(2, binarize=0.5, random_state=0).fit(X)
    given = BernoulliMixture(2, random_state=0).fit(binary)
    np.testing.assert_array_equal(thresholded.means_, given.means_)
    np.testing.assert_array_equal(thresholded.predict(X), given.predict(binary))
    with pytest.raises(ValueError, match=r"^Negative values in data passed to BernoulliMixture, "
                       r"which needs binary data \(0 or 1\), but X\[0, 1\] = -0\.2"):  # fmt: skip
        BernoulliMixture(2).fit(np.array([[0, -0.2], [1, 1], [0, 1]]))


def test_dtype_parameter_takes_names_and_stays_as_given():
    X = mixture_data(n=30)
    for cls in (GaussianMixture, BernoulliMixture):
        data = X if cls is GaussianMixture else (X > 0).astype(np.float64)
        model = cls(2, dtype="float32", random_state=0).fit(data)
        assert model.dtype == "float32" and model.means_.dtype == np.float32
        assert cls().get_params()["dtype"] == "float64"
        with pytest.raises(ValueError, match=r"dtype='int64' is not a float dtype"):
            cls(2, dtype="int64").fit(data)
