"""Streaming fits: PCA, KMeans and the mixtures fitted from chunks equal the in-memory fits.

Chunk boundaries are drawn by hypothesis, down to chunks of one row. Small chunks
are normally gathered into blocks of ``BLOCK_ROWS`` rows before any arithmetic;
the tests also set ``BLOCK_ROWS = 1`` so that every chunk boundary reaches the
sums. A 2-process run under ``torch.distributed`` (gloo, spawned here) must give
the model of one process on all the data, and an error on one rank must end both.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from datetime import timedelta
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from companion.classical import (
    PCA,
    BernoulliMixture,
    ConvergenceWarning,
    GaussianMixture,
    KMeans,
    _stream,
)

N, D = 90, 5


def blobs(n: int = N, d: int = D, k: int = 3, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """k well-separated, anisotropic Gaussian clusters, shuffled, with a large mean."""
    rng = np.random.default_rng(seed)
    centres = 6 * rng.normal(size=(k, d)) + 20
    mixing = rng.normal(size=(d, d)) * np.linspace(1.5, 0.3, d)
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d)) @ mixing
    return X.astype(dtype)


def binary(n: int = N, d: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    probabilities = rng.uniform(0.05, 0.95, (3, d))
    return (rng.random((n, d)) < probabilities[rng.integers(0, 3, n)]).astype(np.float64)


def cut(X, cuts) -> list:
    """X split at the given row indices (duplicates give chunks of 0 rows)."""
    edges = [0, *sorted(cuts), len(X)]
    return [X[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


def block_rows(rows: int):
    return mock.patch.object(_stream, "BLOCK_ROWS", rows)


cuts = st.lists(st.integers(0, N), max_size=12)
block = st.sampled_from([1, 4096])


def assert_same_pca(streamed: PCA, reference: PCA, rtol: float, atol: float) -> None:
    assert streamed.n_components_ == reference.n_components_
    np.testing.assert_allclose(streamed.components_, reference.components_, rtol=0, atol=atol)
    np.testing.assert_allclose(
        streamed.explained_variance_, reference.explained_variance_, rtol=rtol
    )
    np.testing.assert_allclose(streamed.mean_, reference.mean_, rtol=rtol)
    np.testing.assert_allclose(streamed.noise_variance_, reference.noise_variance_, rtol=rtol)
    np.testing.assert_allclose(
        streamed.explained_variance_ratio_, reference.explained_variance_ratio_, rtol=rtol
    )


# ------------------------------------------------------------------------ PCA
@settings(max_examples=30, deadline=None)
@given(cuts=cuts, rows=block, n_components=st.sampled_from([2, 4, None, 0.9]))
def test_pca_from_chunks_equals_in_memory(cuts, rows, n_components):
    X = blobs()
    reference = PCA(n_components).fit(X)
    with block_rows(rows):
        streamed = PCA(n_components).fit(cut(X, cuts))
    assert_same_pca(streamed, reference, rtol=1e-10, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(cuts=cuts)
def test_pca_partial_fit_equals_in_memory(cuts):
    X = blobs()
    reference = PCA(3).fit(X)
    pca = PCA(3)
    for chunk in cut(X, cuts):
        pca.partial_fit(chunk)
    assert_same_pca(pca, reference, rtol=1e-10, atol=1e-10)


def test_pca_from_float32_chunks_matches_to_float32_tolerance():
    X = blobs(n=2000, d=8, dtype=np.float32)
    reference = PCA(4).fit(X)
    streamed = PCA(4).fit(cut(X, range(0, 2000, 1)))  # chunks of one row
    assert streamed.components_.dtype == np.float32
    assert_same_pca(streamed, reference, rtol=1e-5, atol=1e-4)


def test_pca_partial_fit_one_row_at_a_time():
    X = blobs(n=12, d=3)
    pca = PCA(2)
    pca.partial_fit(X[:1])
    assert pca.n_features_in_ == 3 and not hasattr(pca, "components_")  # 1 row: too few
    for row in X[1:]:
        pca.partial_fit(row[None])
    assert_same_pca(pca, PCA(2).fit(X), rtol=1e-10, atol=1e-10)


def test_pca_accepts_every_kind_of_chunk_source():
    X = blobs()
    reference = PCA(3).fit(X)
    tensors = torch.from_numpy(X)
    loader = DataLoader(TensorDataset(tensors, torch.zeros(N)), batch_size=16)
    sources = {
        "tuple": tuple(cut(X, [30, 60])),
        "tensors": cut(tensors, [10]),
        "DataLoader": loader,
        "callable": lambda: iter(cut(X, [45])),
        "generator": (chunk for chunk in cut(X, [7, 8])),
    }
    for name, source in sources.items():
        streamed = PCA(3).fit(source)
        as_numpy = {k: np.asarray(getattr(streamed, k)) for k in ("components_", "mean_")}
        np.testing.assert_allclose(as_numpy["components_"], reference.components_, atol=1e-10)
        np.testing.assert_allclose(as_numpy["mean_"], reference.mean_, rtol=1e-12, err_msg=name)
    assert isinstance(PCA(3).fit(loader).components_, torch.Tensor)  # kind of the first chunk
    assert isinstance(PCA(3).fit(cut(X, [5])).components_, np.ndarray)


def test_pca_fit_on_chunks_then_partial_fit_continues():
    X = blobs()
    pca = PCA(3).fit(cut(X, [20, 40]))
    pca.partial_fit(X[60:])  # a fit on chunks keeps its statistics
    X_seen = np.concatenate([X, X[60:]])
    assert_same_pca(pca, PCA(3).fit(X_seen), rtol=1e-10, atol=1e-10)


def test_pca_refuses_conflicting_options():
    X = blobs()
    with pytest.raises(ValueError, match="solver='full' needs all the data in memory"):
        PCA(2, solver="full").fit(cut(X, [10]))
    with pytest.raises(ValueError, match="solver='randomized' needs all the data"):
        PCA(2, solver="randomized").partial_fit(X)
    with pytest.raises(TypeError, match="fit_transform .* needs an in-memory array"):
        PCA(2).fit_transform(cut(X, [10]))
    with pytest.warns(UserWarning, match="partial_fit starts over from this chunk"):
        restarted = PCA(2).fit(X).partial_fit(X[:50])
    assert_same_pca(restarted, PCA(2).fit(X[:50]), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="n_components=6 must be at most"):
        PCA(6).fit(cut(X, [10]))


# --------------------------------------------------------------------- KMeans
@settings(max_examples=30, deadline=None)
@given(cuts=cuts, rows=block, dtype=st.sampled_from([np.float64, np.float32]))
def test_kmeans_labels_from_the_same_start_equal_in_memory(cuts, rows, dtype):
    X = blobs(dtype=dtype)
    init = X[[0, 1, 2, 3]]
    reference = KMeans(4, init=init).fit(X)
    with block_rows(rows):
        streamed = KMeans(4, init=init).fit(cut(X, cuts))
    np.testing.assert_array_equal(streamed.labels_, reference.labels_)
    np.testing.assert_allclose(streamed.cluster_centers_, reference.cluster_centers_, rtol=1e-6)
    assert streamed.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(streamed.inertia_history_, reference.inertia_history_, rtol=1e-6)


@settings(max_examples=15, deadline=None)
@given(cuts=cuts, rows=block, init=st.sampled_from(["k-means++", "random"]))
def test_kmeans_seeded_from_a_stream_of_few_rows_equals_in_memory(cuts, rows, init):
    # with n <= INIT_SAMPLE_ROWS the reservoir sample is the data, in order
    # (one start: the restarts of these blobs tie to rounding, so either may be kept)
    X = blobs()
    reference = KMeans(3, init=init, random_state=5).fit(X)
    with block_rows(rows):
        streamed = KMeans(3, init=init, random_state=5).fit(cut(X, cuts))
    np.testing.assert_array_equal(streamed.labels_, reference.labels_)
    np.testing.assert_allclose(streamed.inertia_, reference.inertia_, rtol=1e-12)


def test_kmeans_fills_an_empty_cluster_as_in_memory():
    X = blobs()
    init = np.concatenate([X[:2], np.full((1, D), 1e4)])  # nothing is near the third centre
    reference = KMeans(3, init=init).fit(X)
    with block_rows(1):
        streamed = KMeans(3, init=init).fit(cut(X, range(0, N, 7)))
    assert len(set(reference.labels_.tolist())) == 3
    np.testing.assert_array_equal(streamed.labels_, reference.labels_)
    np.testing.assert_allclose(streamed.cluster_centers_, reference.cluster_centers_, rtol=1e-12)


def test_reservoir_sample_is_uniform_and_ignores_the_chunking():
    rows = torch.arange(20, dtype=torch.float64)[:, None]
    hits = torch.zeros(20)
    for seed in range(1500):
        whole, parts, single = (_stream.Reservoir(5, seed) for _ in range(3))
        whole.add(rows)
        for chunk in cut(rows, [3, 3, 11, 12, 19]):
            parts.add(chunk)
        for row in rows:  # algorithm R itself: one row at a time
            single.add(row[None])
        assert torch.equal(whole.local(), single.local())
        assert torch.equal(parts.local(), single.local())
        hits[whole.local()[:, 0].long()] += 1
    frequency = hits / 1500
    assert float((frequency - 0.25).abs().max()) < 0.05, frequency  # 5 of 20 rows: 1/4 each


def test_kmeans_on_a_large_stream_is_the_same_whatever_the_chunking():
    X = blobs(n=300)
    with mock.patch.object(_stream, "INIT_SAMPLE_ROWS", 40):  # the sample is 40 of 300 rows
        a = KMeans(3, random_state=0).fit(cut(X, range(0, 300, 7)))
        b = KMeans(3, random_state=0).fit(cut(X, [150]))
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12)


def test_kmeans_refuses_conflicting_options():
    X = blobs()
    with pytest.raises(TypeError, match="one-shot iterator"):
        KMeans(2).fit(chunk for chunk in cut(X, [10]))
    with pytest.raises(TypeError, match="fit_transform .* needs an in-memory array"):
        KMeans(2).fit_transform(cut(X, [10]))
    with pytest.raises(ValueError, match="init='kmeans' is not understood"):
        KMeans(2, init="kmeans").fit(cut(X, [10]))
    with pytest.raises(ValueError, match=r"init has shape \(2, 5\), but n_clusters=3"):
        KMeans(3, init=X[:2]).fit(cut(X, [10]))
    with pytest.raises(ValueError, match="n_clusters=4 is larger than n_samples=3"):
        KMeans(4).fit(cut(X[:3], [1]))
    labels = KMeans(2, random_state=0).fit_predict(cut(X, [10]))
    assert labels.shape == (N,)


# ------------------------------------------------------------------- mixtures
@settings(max_examples=20, deadline=None)
@given(
    cuts=cuts,
    rows=block,
    covariance_type=st.sampled_from(["full", "tied", "diag", "spherical"]),
    init=st.sampled_from(["kmeans", "random"]),
)
def test_gaussian_mixture_from_chunks_equals_in_memory(cuts, rows, covariance_type, init):
    X = blobs()
    params = {"covariance_type": covariance_type, "init": init, "random_state": 0, "tol": 1e-9}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = GaussianMixture(3, max_iter=25, **params).fit(X)
        with block_rows(rows):
            streamed = GaussianMixture(3, max_iter=25, **params).fit(cut(X, cuts))
    assert streamed.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(
        streamed.lower_bound_history_, reference.lower_bound_history_, rtol=0, atol=1e-10
    )
    np.testing.assert_allclose(streamed.means_, reference.means_, rtol=1e-9)
    np.testing.assert_allclose(streamed.covariances_, reference.covariances_, rtol=1e-8)
    np.testing.assert_allclose(streamed.score_samples(X), reference.score_samples(X), atol=1e-10)


def test_gaussian_mixture_from_given_parameters_reads_no_sample():
    X = blobs()
    start = GaussianMixture(3, random_state=1, max_iter=2).fit(X)
    given_start = {
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
    }
    reference = GaussianMixture(3, tol=1e-9, **given_start).fit(X)
    spy = mock.patch("companion.classical._em.survey", wraps=_stream.survey)
    with spy as surveyed:
        streamed = GaussianMixture(3, tol=1e-9, **given_start).fit(cut(X, range(0, N, 2)))
    assert surveyed.call_args.kwargs["sample_rows"] == 0
    np.testing.assert_allclose(streamed.lower_bound_, reference.lower_bound_, rtol=0, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(cuts=cuts, rows=block, init=st.sampled_from(["kmeans", "random"]))
def test_bernoulli_mixture_from_chunks_equals_in_memory(cuts, rows, init):
    X = binary()
    params = {"init": init, "random_state": 0, "tol": 1e-9, "max_iter": 30}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = BernoulliMixture(3, **params).fit(X)
        with block_rows(rows):
            streamed = BernoulliMixture(3, **params).fit(cut(X, cuts))
    assert streamed.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(
        streamed.lower_bound_history_, reference.lower_bound_history_, rtol=0, atol=1e-10
    )
    np.testing.assert_allclose(streamed.means_, reference.means_, rtol=1e-9)


def test_bernoulli_mixture_checks_every_chunk():
    X = binary()
    bad = [X[:10], X[10:20] * 0.5]
    with pytest.raises(ValueError, match=r"needs binary data \(0 or 1\), but chunk 1 of X\["):
        BernoulliMixture(2).fit(bad)
    fitted = BernoulliMixture(2, binarize=0.2, random_state=0).fit(bad)
    reference = BernoulliMixture(2, binarize=0.2, random_state=0).fit(np.concatenate(bad))
    np.testing.assert_allclose(fitted.lower_bound_, reference.lower_bound_, atol=1e-10)
    with pytest.raises(TypeError, match="fit_predict .* needs an in-memory array"):
        BernoulliMixture(2).fit_predict([X])


# --------------------------------------------------------------- bad sources
ESTIMATORS = [PCA(2), KMeans(2), GaussianMixture(2), BernoulliMixture(2)]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_bad_chunk_sources_get_clear_errors(estimator):
    X = binary(d=4)
    with pytest.raises(ValueError, match="chunk 2 of X has 3 features, but .* expecting 4"):
        estimator.fit([X[:10], X[10:20], X[20:30, :3]])
    with pytest.raises(ValueError, match="X gave no chunks"):
        estimator.fit(lambda: iter([]))
    with_nan = X[20:30].copy()
    with_nan[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"chunk 2 of X contains 1 non-finite value .*\[4, 1\]"):
        estimator.fit([X[:10], X[10:20], with_nan])
    with pytest.raises(TypeError, match="returned int, not an iterator of chunks"):
        estimator.fit(lambda: 3)


@pytest.mark.parametrize("estimator", ESTIMATORS[1:], ids=lambda e: type(e).__name__)
def test_a_source_that_changes_between_passes_is_refused(estimator):
    X = binary(d=4)
    calls = []

    def shrinking():
        calls.append(1)
        return iter([X[: N - len(calls)]])

    with pytest.raises(ValueError, match="gave 89 rows on the first pass but 88 on a later"):
        estimator.fit(shrinking)


# ---------------------------------------------------------------- distributed
def _fit_shard(rank: int, world: int, folder: str, cuts_at: list[int], poison: bool) -> None:
    """One rank: its shard of the data, fitted by every estimator; results saved to a file."""
    dist.init_process_group(
        "gloo",
        init_method=f"file://{folder}/rendezvous",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),
    )
    try:
        X, B = blobs(), binary()
        edges = [0, *cuts_at, N]
        shard = slice(edges[rank], edges[rank + 1])
        Xs, Bs = X[shard], B[shard]
        if poison:
            if rank == 1:
                Xs = Xs.copy()
                Xs[3, 0] = np.nan
            try:
                KMeans(3, random_state=0).fit(cut(Xs, [5]))
            except (ValueError, RuntimeError) as err:
                Path(folder, f"error{rank}.txt").write_text(f"{type(err).__name__}: {err}")
            return
        pca = PCA(3).fit(cut(Xs, [4, 9]))
        partial = PCA(3)
        for chunk in np.array_split(Xs, 3):  # every rank calls partial_fit equally often
            partial.partial_fit(chunk)
        kmeans = KMeans(3, random_state=0).fit(cut(Xs, [7]))
        gmm = GaussianMixture(3, random_state=0, tol=1e-9).fit(cut(Xs, [11]))
        bernoulli = BernoulliMixture(3, random_state=0, tol=1e-9).fit(cut(Bs, [2]))
        np.savez(
            Path(folder, f"rank{rank}.npz"),
            pca_components=pca.components_,
            pca_variances=pca.explained_variance_,
            partial_components=partial.components_,
            partial_variances=partial.explained_variance_,
            kmeans_centers=kmeans.cluster_centers_,
            kmeans_labels=kmeans.labels_,
            gmm_history=gmm.lower_bound_history_,
            gmm_means=gmm.means_,
            bernoulli_history=bernoulli.lower_bound_history_,
        )
    finally:
        dist.destroy_process_group()


def _spawn(folder: Path, cuts_at: list[int], poison: bool = False, timeout: float = 240) -> None:
    """Run ``_fit_shard`` on 2 processes; fail (and end them) if they are not done in time."""
    context = mp.start_processes(
        _fit_shard,
        args=(2, str(folder), cuts_at, poison),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                with contextlib.suppress(Exception):
                    process.kill()
            pytest.fail(f"the 2-process fit did not end within {timeout} s")


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    _spawn(folder, cuts_at=[37])  # uneven shards: 37 and 53 rows
    return [dict(np.load(folder / f"rank{rank}.npz")) for rank in range(2)]


def test_two_processes_give_the_model_of_one_process_on_all_the_data(two_process_results):
    X, B = blobs(), binary()
    pca = PCA(3).fit(X)
    kmeans = KMeans(3, random_state=0).fit(X)
    gmm = GaussianMixture(3, random_state=0, tol=1e-9).fit(X)
    bernoulli = BernoulliMixture(3, random_state=0, tol=1e-9).fit(B)
    for result in two_process_results:  # every rank ends with the same model
        for prefix in ("pca", "partial"):
            np.testing.assert_allclose(result[f"{prefix}_components"], pca.components_, atol=1e-10)
            np.testing.assert_allclose(
                result[f"{prefix}_variances"], pca.explained_variance_, rtol=1e-10
            )
        np.testing.assert_allclose(result["kmeans_centers"], kmeans.cluster_centers_, rtol=1e-12)
        np.testing.assert_allclose(result["gmm_history"], gmm.lower_bound_history_, atol=1e-10)
        np.testing.assert_allclose(result["gmm_means"], gmm.means_, rtol=1e-9)
        np.testing.assert_allclose(
            result["bernoulli_history"], bernoulli.lower_bound_history_, atol=1e-10
        )
    labels = np.concatenate([result["kmeans_labels"] for result in two_process_results])
    np.testing.assert_array_equal(labels, kmeans.labels_)  # each rank labels its own shard


def test_an_error_on_one_rank_ends_every_rank(tmp_path):
    _spawn(tmp_path, cuts_at=[45], poison=True, timeout=120)
    errors = [(tmp_path / f"error{rank}.txt").read_text() for rank in range(2)]
    assert errors[1].startswith("ValueError: chunk 0 of X contains 1 non-finite value")
    assert errors[0].startswith("RuntimeError: reading the chunks failed on rank(s) [1]")
