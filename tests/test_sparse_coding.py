"""Sparse coding: the coding step against scikit-learn's lasso and brute force on a tiny case;
dictionary learning never raises its objective and keeps atoms in the unit ball."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import sparse_encode as sklearn_sparse_encode

from companion.classical.sparse_coding import DictionaryLearning, lasso_objective, sparse_encode


def _problem(seed: int, n: int = 40, d: int = 12, k: int = 20):
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(k, d))
    return rng.normal(size=(n, d)), D / np.linalg.norm(D, axis=1, keepdims=True)


@pytest.mark.parametrize("alpha", [0.05, 0.5, 2.0])
def test_codes_match_sklearn_lasso(alpha):
    X, D = _problem(0)
    ours = sparse_encode(X, D, alpha=alpha, max_iter=5000, tol=1e-12)
    theirs = sklearn_sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha, max_iter=20000)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert ((ours != 0) == (np.abs(theirs) > 1e-8)).mean() > 0.99


def test_codes_match_brute_force_over_supports():
    """Two atoms in the plane: the lasso optimum is the best of the 3^2 sign patterns'
    stationary points, found by enumeration."""
    D = np.array([[1.0, 0.0], [0.6, 0.8]])
    x = np.array([[0.9, 0.5]])
    alpha = 0.1
    best = None
    for signs in itertools.product((-1, 0, 1), repeat=2):
        active = [j for j in range(2) if signs[j]]
        a = np.zeros(2)
        if active:
            Da = D[active]
            s = np.array([signs[j] for j in active], dtype=float)
            a[active] = np.linalg.solve(Da @ Da.T, Da @ x[0] - alpha * s)
            if np.any(np.sign(a[active]) != s):
                continue
        value = 0.5 * np.sum((x[0] - a @ D) ** 2) + alpha * np.abs(a).sum()
        if best is None or value < best[0]:
            best = (value, a)
    ours = sparse_encode(x, D, alpha=alpha, max_iter=5000, tol=1e-14)
    np.testing.assert_allclose(ours[0], best[1], atol=1e-8)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), alpha=st.floats(0.05, 1.0), k=st.integers(2, 16))
def test_dictionary_learning_never_raises_the_objective(seed, alpha, k):
    X, _ = _problem(seed, n=30, d=8)
    est = DictionaryLearning(k, alpha=alpha, max_iter=15, code_iter=30, tol=0.0, random_state=seed)
    est.fit(X)
    values = np.array(est.objective_)
    assert np.all(np.diff(values) <= 1e-9 * np.abs(values[:-1])), values
    assert np.all(np.linalg.norm(est.components_, axis=1) <= 1 + 1e-9)


def test_learned_atoms_recover_a_planted_dictionary():
    """Data made of 1-2 atoms of a random dictionary: the learned atoms match the planted ones."""
    g = torch.Generator().manual_seed(0)
    true = torch.randn(8, 16, generator=g, dtype=torch.float64)
    true /= true.norm(dim=1, keepdim=True)
    codes = torch.zeros(600, 8, dtype=torch.float64)
    for i in range(600):
        chosen = torch.randperm(8, generator=g)[:2]
        codes[i, chosen] = 1 + torch.rand(2, generator=g, dtype=torch.float64)
    X = codes @ true
    est = DictionaryLearning(8, alpha=0.05, max_iter=100, random_state=0).fit(X)
    similarity = (est.components_ @ true.T).abs()  # (8, 8) |cosines| (atoms near unit norm)
    best = similarity.max(
        dim=0
    ).values  # alternating descent may settle one atom in a local optimum
    assert best.median() > 0.99 and best.min() > 0.9, best  # random atoms: cosines near 0.3


def test_transform_is_sparse_encode_with_the_learned_atoms():
    X, _ = _problem(1, n=30, d=8)
    est = DictionaryLearning(6, alpha=0.3, max_iter=10, random_state=0).fit(X)
    direct = sparse_encode(X, est.components_, alpha=0.3, max_iter=5000, tol=1e-12)
    np.testing.assert_allclose(est.transform(X), direct, atol=1e-5)
    rebuilt = est.inverse_transform(est.transform(X))
    assert rebuilt.shape == X.shape
    value = lasso_objective(torch.as_tensor(X), torch.as_tensor(est.transform(X)),
                            torch.as_tensor(est.components_), 0.3)  # fmt: skip
    assert value.shape == (30,)


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match=r"X has 3 features but the dictionary's atoms have 4"):
        sparse_encode(np.ones((2, 3)), np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"alpha=-1 must be >= 0"):
        DictionaryLearning(2, alpha=-1).fit(np.random.default_rng(0).normal(size=(5, 3)))
