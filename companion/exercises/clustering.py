"""Checks for the clustering chapter's programming exercises (k-means and EM)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.exercises._common import ExerciseError, _as_tensor, _call, _scalar


def _clusters(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three 2-D blobs (150, 2) and three starting centres (3, 2), float64."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]], dtype=torch.float64)
    X = centres.repeat_interleave(50, 0) + torch.randn(150, 2, generator=g, dtype=torch.float64)
    start = X[torch.tensor([3, 60, 140])] + 0.5
    return X, start


def check_kmeans_assignment(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(X, centers)``: the index of the nearest centre for each row, shape (n,)."""
    X, centers = _clusters()
    got = _as_tensor(_call(fn, X.clone(), centers.clone()), "your labels")
    n, k = X.shape[0], centers.shape[0]
    if tuple(got.shape) != (n,):
        hint = (
            " That is one value per point and centre: take the argmin over the centres."
            if tuple(got.shape) == (n, k)
            else ""
        )
        raise ExerciseError(f"your labels have shape {tuple(got.shape)}, expected ({n},).{hint}")
    distances = torch.cdist(X, centers)
    expected = distances.argmin(1)
    wrong = (got.long() != expected).nonzero().flatten()
    if len(wrong):
        i = int(wrong[0])
        farthest = bool((got.long() == distances.argmax(1)).all())
        hint = " You picked the farthest centre: use argmin, not argmax." if farthest else ""
        raise ExerciseError(
            f"{len(wrong)} of {n} points get the wrong centre; point {i} is nearest to centre "
            f"{int(expected[i])} (distance {distances[i, expected[i]]:.3f}) but you gave "
            f"{int(got[i])}.{hint}"
        )
    print(f"check_kmeans_assignment: correct for all {n} points.")


def check_kmeans_update(fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    """Check ``fn(X, labels, k)``: the mean of the points of each cluster, shape (k, d)."""
    X, centers = _clusters(seed=1)
    labels = torch.cdist(X, centers).argmin(1)
    k = centers.shape[0]
    got = _as_tensor(_call(fn, X.clone(), labels.clone(), k), "your centres")
    if tuple(got.shape) != (k, X.shape[1]):
        raise ExerciseError(
            f"your centres have shape {tuple(got.shape)}, expected ({k}, {X.shape[1]}): "
            "one row per cluster."
        )
    expected = torch.stack([X[labels == j].mean(0) for j in range(k)])
    error = (got - expected).abs().max().item()
    if error > 1e-9:
        sums = torch.stack([X[labels == j].sum(0) for j in range(k)])
        hint = (
            " These are the sums of the points: divide by the number in each cluster."
            if torch.allclose(got, sums)
            else " Each centre is the mean of the points whose label is that cluster."
        )
        raise ExerciseError(f"your centres are off by up to {error:.3g}.{hint}")
    print("check_kmeans_update: correct.")


def check_e_step(fn: Callable[..., torch.Tensor]) -> None:
    """Check ``fn(X, weights, means, variances)`` for a spherical Gaussian mixture.

    X (n, d), weights (K,), means (K, d), variances (K,) (one σ² per component);
    return the responsibilities p(z = k | x), shape (n, K).
    """
    X, means = _clusters(seed=2)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    variances = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    K = len(weights)
    d = X.shape[1]
    # Points 60 and more from every mean: each density exp(-60²/2σ²) underflows to 0.
    far = torch.tensor([[-60.0, 0.0], [0.0, 70.0], [80.0, -80.0]], dtype=torch.float64)

    def responsibilities(X, w, var, constant=True):
        log_p = -0.5 * torch.cdist(X, means).pow(2) / var + torch.log(w)
        if constant:
            log_p = log_p - 0.5 * d * torch.log(2 * torch.pi * var)
        return torch.softmax(log_p, dim=1)

    for name, points in (("the three blobs", X), ("points 60 or more from every mean", far)):
        n = points.shape[0]
        got = _as_tensor(
            _call(fn, points.clone(), weights.clone(), means.clone(), variances.clone()),
            "your responsibilities",
        )
        if tuple(got.shape) != (n, K):
            hint = " It looks transposed: one row per point." if got.shape == (K, n) else ""
            raise ExerciseError(
                f"your responsibilities have shape {tuple(got.shape)}, expected ({n}, {K}): "
                f"one row per point, one column per component.{hint}"
            )
        if not torch.isfinite(got).all():
            raise ExerciseError(
                f"your responsibilities are NaN or inf for {name}: there every density "
                "exp(−‖x − μ_k‖²/2σ_k²) underflows to 0 and the normalisation divides 0 by 0. "
                "Work with log-densities and normalise them with the log-sum-exp trick "
                "(subtract each row's largest log-density before exponentiating)."
            )
        expected = responsibilities(points, weights, variances)
        error = (got - expected).abs().max().item()
        if error <= 1e-8:
            continue
        if (got.sum(1) - 1).abs().max() > 1e-6:
            hint = " Your rows do not sum to 1: normalise over the components k."
        elif torch.allclose(
            got, responsibilities(points, torch.full_like(weights, 1 / K), variances)
        ):
            hint = " You left out the mixing weights π_k."
        elif torch.allclose(got, responsibilities(points, weights, variances.sqrt())):
            hint = " You used σ where σ² belongs: `variances` already holds σ²."
        elif torch.allclose(got, responsibilities(points, weights, variances, constant=False)):
            hint = (
                " You dropped the Gaussian's normalising constant (2πσ_k²)^(−d/2): the σ_k "
                "differ between components, so it does not cancel in the ratio."
            )
        else:
            hint = (
                " Each responsibility is π_k N(x | μ_k, σ_k² I) divided by the sum of these "
                "over k; check the exponent (squared distance over 2σ_k²) and the constant."
            )
        raise ExerciseError(f"for {name} your responsibilities are off by up to {error:.3g}.{hint}")
    print("check_e_step: correct, and stable for points far from every mean.")


MIXTURE_CLUSTERS, MIXTURE_KS = 4, tuple(range(1, 9))


def _four_blobs(seed: int, n_train: int = 80, n_test: int = 2000):
    """Train and test points (float64) of four elongated 2-D clusters, centres 6 apart."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0]], dtype=torch.float64)
    spread = torch.tensor([1.0, 0.5], dtype=torch.float64)
    labels = torch.randint(0, MIXTURE_CLUSTERS, (n_train + n_test,), generator=g)
    X = (
        centres[labels]
        + torch.randn(n_train + n_test, 2, generator=g, dtype=torch.float64) * spread
    )
    return X[:n_train], X[n_train:]


def check_heldout_components(fn: Callable, seed: int = 0) -> None:
    """Check ``fn(X_train, X_test, K, seed)``: the held-out log-likelihood of a K-mixture.

    ``fn`` fits a Gaussian mixture with ``K`` components (full covariances) to
    ``X_train`` by EM, seeded by ``seed``, and returns the mean log-likelihood per point
    of ``X_test``. The check sweeps K = 1..8 on 80 training points of four clusters
    drawn from ``seed`` and judges the curve it measured: it climbs to the true number
    of clusters and falls once the extra components fit the noise of 80 points.
    """
    X_train, X_test = _four_blobs(seed)
    scores = []
    for K in MIXTURE_KS:
        value = _scalar(
            _call(fn, X_train.clone(), X_test.clone(), K, seed),
            f"your result for K={K}",
            ", the mean log-likelihood per test point",
        )
        if not math.isfinite(value):
            raise ExerciseError(
                f"for K={K} your log-likelihood is {value}: a component collapsed onto a "
                "point. Keep the mixture's reg_covar (it is on by default)."
            )
        scores.append(value)
    shown = ", ".join(f"{s:.2f}" for s in scores)
    if max(scores) - min(scores) < 1e-9:
        raise ExerciseError(
            f"your log-likelihood is {scores[0]:.4g} for every K: your function does not "
            "pass K to the mixture as its number of components."
        )
    if min(scores) > 0:
        raise ExerciseError(
            f"your values ({shown}) are positive, but a density this spread out is below 1 "
            "almost everywhere: return the log-likelihood, not its negative."
        )
    if max(scores) < -50:
        raise ExerciseError(
            f"your values ({shown}) are far too low for 2-D points: return the mean "
            "log-likelihood per test point, not the sum over the points."
        )
    best = MIXTURE_KS[max(range(len(scores)), key=scores.__getitem__)]
    if best == MIXTURE_KS[-1] or scores[-1] > max(scores) - 0.05:
        raise ExerciseError(
            f"for K = 1..8 your log-likelihoods are {shown}: still rising (or flat) at K = 8. "
            "On held-out points the extra components, fitted to the noise of 80 training "
            "points, should cost likelihood. Are you scoring X_train instead of X_test?"
        )
    if best not in (MIXTURE_CLUSTERS, MIXTURE_CLUSTERS + 1):
        raise ExerciseError(
            f"for K = 1..8 your log-likelihoods are {shown}, highest at K = {best}; the data "
            f"have {MIXTURE_CLUSTERS} clusters, well apart, and a correct run peaks at K = "
            f"{MIXTURE_CLUSTERS} or {MIXTURE_CLUSTERS + 1}. Fit on X_train with K "
            "components and full covariances, and run EM to convergence."
        )
    print(
        f"check_heldout_components: correct; your held-out log-likelihoods for K = 1..8 are "
        f"{shown}: highest at K = {best}, and {max(scores) - scores[-1]:.2f} nats per point "
        "lower at K = 8."
    )
