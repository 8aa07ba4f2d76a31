"""KMeans against scikit-learn and its defining property (inertia never rises)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from companion.classical import ConvergenceWarning, KMeans
from companion.classical.lloyd import (
    _cluster_sums,
    _fill_empty_clusters,
    _move_points,
    squared_distances,
)
from companion.errors import NotFittedError


def test_squared_distances_match_the_definition():
    g = torch.Generator().manual_seed(0)
    X, C = (
        torch.randn(50, 7, generator=g, dtype=torch.float64),
        torch.randn(4, 7, generator=g, dtype=torch.float64),
    )
    direct = ((X[:, None, :] - C[None, :, :]) ** 2).sum(2)
    torch.testing.assert_close(squared_distances(X, C), direct)


def test_same_init_same_result_as_sklearn_on_blobs():
    X, truth = make_blobs(600, centers=5, cluster_std=0.8, random_state=0)
    init = X[np.random.default_rng(1).choice(600, 5, replace=False)]
    ours = KMeans(5, init=init).fit(X)
    ref = SkKMeans(5, init=init, n_init=1).fit(X)
    assert adjusted_rand_score(ours.labels_, ref.labels_) == 1.0
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-10)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)
    assert ours.n_iter_ == ref.n_iter_
    assert adjusted_rand_score(truth, ours.labels_) > 0.95  # the blobs are found


def test_kmeans_plusplus_finds_well_separated_blobs():
    X, truth = make_blobs(500, centers=4, cluster_std=0.5, random_state=3)
    ours = KMeans(4, random_state=0, n_init=3).fit(X)
    assert adjusted_rand_score(truth, ours.labels_) == 1.0


@pytest.mark.needs_data
def test_fashion_mnist_subset_matches_sklearn_inertia():
    from companion.data import flatten, load_fashion_mnist, to_float

    X = flatten(to_float(load_fashion_mnist("test", download=False)[0][:3000]))
    init = X[torch.randperm(3000, generator=torch.Generator().manual_seed(0))[:10]]
    ours = KMeans(10, init=init).fit(X)
    ref = SkKMeans(10, init=init.numpy(), n_init=1).fit(X.numpy())
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=5e-3)
    assert adjusted_rand_score(ours.labels_.numpy(), ref.labels_) > 0.99


def test_empty_cluster_is_reseeded_from_the_farthest_point():
    X = np.array([[0.0], [0.1], [0.2], [10.0], [10.1], [30.0]])
    init = np.array([[0.1], [10.0], [100.0]])  # the third centre attracts nothing
    ours = KMeans(3, init=init).fit(X)
    ref = SkKMeans(3, init=init, n_init=1).fit(X)
    np.testing.assert_allclose(np.sort(ours.cluster_centers_, 0), np.sort(ref.cluster_centers_, 0))
    assert sorted(np.bincount(ours.labels_).tolist()) == [1, 2, 3]


blobs = st.builds(
    lambda n, d, seed: (
        np.random.default_rng(seed).normal(size=(n, d))
        * np.random.default_rng(seed + 1).uniform(0.2, 3, size=d)
    ),
    st.integers(10, 80),
    st.integers(1, 5),
    st.integers(0, 10_000),
)


@settings(max_examples=40, deadline=None)
@given(X=blobs, k=st.integers(1, 6), seed=st.integers(0, 100))
def test_inertia_never_increases(X, k, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(k, random_state=seed, tol=0, max_iter=50).fit(X)
    history = np.array(model.inertia_history_)
    assert np.all(np.diff(history) <= 1e-9 * (1 + history[:-1]))
    assert model.inertia_ <= history[0] + 1e-9 * (1 + history[0])
    # the labels are those of the closest centre
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_transform_score_and_kinds():
    X = make_blobs(100, centers=3, random_state=0)[0].astype(np.float32)
    model = KMeans(3, random_state=0).fit(X)
    D = model.transform(X)
    assert D.shape == (100, 3) and D.dtype == np.float32
    assert model.score(X) == pytest.approx(-model.inertia_, rel=1e-5)
    T = KMeans(3, random_state=0).fit(torch.as_tensor(X))
    assert isinstance(T.cluster_centers_, torch.Tensor) and T.labels_.dtype == torch.int64


def test_max_iter_warns():
    X = make_blobs(300, centers=6, random_state=0)[0]
    with pytest.warns(ConvergenceWarning, match=r"max_iter=1 iterations without converging"):
        KMeans(6, max_iter=1, random_state=0).fit(X)


def test_bad_input_messages():
    with pytest.raises(
        ValueError, match=r"n_clusters=20 is larger than n_samples=10; use at most 10"
    ):
        KMeans(20).fit(np.zeros((10, 2)))
    X = np.zeros((10, 2))
    X[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"non-finite value \(first: nan at index \[4, 1\]\)"):
        KMeans(2).fit(X)
    with pytest.raises(ValueError, match=r"X must be 2-D .* Reshape your data: X.reshape\(-1, 1\)"):
        KMeans(2).fit(np.arange(10.0))
    with pytest.raises(ValueError, match=r"init has shape \(2, 2\), but n_clusters=3"):
        KMeans(3, init=np.zeros((2, 2))).fit(np.random.default_rng(0).normal(size=(10, 2)))
    with pytest.raises(ValueError, match=r"init='kmeans\+\+' is not understood"):
        KMeans(3, init="kmeans++").fit(np.zeros((10, 2)))
    with pytest.raises(
        NotFittedError, match=r"KMeans instance is not fitted yet; call fit\(X\) before predict"
    ):
        KMeans(3).predict(np.zeros((2, 2)))


@settings(max_examples=40, deadline=None)
@given(
    X=blobs,
    k=st.integers(1, 6),
    seed=st.integers(0, 10_000),
)
def test_running_sums_follow_the_points_that_move(X, k, seed):
    """The fit keeps per-cluster sums and counts up to date by moving only the points
    whose cluster changed; they must equal the sums recomputed from scratch."""
    rng = np.random.default_rng(seed)
    X = torch.as_tensor(X, dtype=torch.float32)
    before = torch.as_tensor(rng.integers(0, k, len(X)))
    after = torch.where(torch.as_tensor(rng.random(len(X)) < 0.3),
                        torch.as_tensor(rng.integers(0, k, len(X))), before)  # fmt: skip
    sums, counts = _cluster_sums(X, before, k, chunk=7)
    members = before.clone()
    _move_points(X, members, after, sums, counts)
    assert torch.equal(members, after)
    expected_sums, expected_counts = _cluster_sums(X, after, k)
    torch.testing.assert_close(sums, expected_sums, rtol=1e-12, atol=1e-9)
    assert torch.equal(counts, expected_counts)
    # reseeding an empty cluster keeps the sums those of the members
    dists = torch.as_tensor(rng.random(len(X)))
    if k > 1:  # empty cluster 0 by moving its points to cluster 1
        members[members == 0] = 1
        sums, counts = _cluster_sums(X, members, k)
    _fill_empty_clusters(X, members, dists, sums, counts)
    torch.testing.assert_close(sums, _cluster_sums(X, members, k)[0], rtol=1e-12, atol=1e-9)
    assert torch.equal(counts, _cluster_sums(X, members, k)[1])


def test_fitted_centres_are_the_means_of_their_clusters():
    X = make_blobs(2000, centers=5, n_features=6, random_state=3)[0].astype(np.float32)
    model = KMeans(5, random_state=0, tol=0).fit(X)
    for j in range(5):
        mean = X[model.labels_ == j].astype(np.float64).mean(0)
        np.testing.assert_allclose(model.cluster_centers_[j], mean, rtol=1e-6, atol=1e-6)


def _brute_force_lloyd(X: np.ndarray, init: np.ndarray, n_iter: int):
    """Plain Lloyd in float64, every distance at every step: each step's labels and
    inertia (to the centres the step assigned to)."""
    centers, labels, inertias = init.astype(np.float64), [], []
    for _ in range(n_iter):
        d2 = ((X[:, None, :] - centers[None]) ** 2).sum(2)
        labels.append(d2.argmin(1))
        inertias.append(d2.min(1).sum())
        centers = np.stack([X[labels[-1] == j].mean(0) for j in range(len(centers))])
    return labels, inertias


@settings(max_examples=40, deadline=None)
@given(
    n_centers=st.integers(2, 6),
    n_features=st.integers(1, 5),
    spread=st.floats(0.3, 3.0),
    seed=st.integers(0, 10_000),
)
def test_skipped_points_keep_the_labels_of_a_full_assignment(n_centers, n_features, spread, seed):
    """The fit skips the distances of points whose bounds prove their cluster unchanged,
    and takes each step's inertia from the cluster sums; every step must still give the
    labels and the inertia of plain Lloyd computing every distance."""
    X, _ = make_blobs(400, centers=n_centers, n_features=n_features, cluster_std=spread,
                      random_state=seed)  # fmt: skip
    init = X[np.random.default_rng(seed).choice(len(X), n_centers, replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_centers, init=init, tol=0, max_iter=30).fit(X)
    # one step more: labels_ are those of the final centres (the same as the last step's
    # when the fit converged, the next step's when it stopped at max_iter)
    labels, inertias = _brute_force_lloyd(X, init, model.n_iter_ + 1)
    assume(all(len(np.unique(step)) == n_centers for step in labels))  # no cluster reseeded
    np.testing.assert_array_equal(model.labels_, labels[-1])
    np.testing.assert_allclose(model.inertia_history_, inertias[:-1], rtol=1e-9)
