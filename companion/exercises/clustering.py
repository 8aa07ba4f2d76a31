"""Checks for the clustering chapter's programming exercises (k-means and EM)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._common import ExerciseError, _as_tensor


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
    got = _as_tensor(fn(X.clone(), centers.clone()), "your labels")
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
    got = _as_tensor(fn(X.clone(), labels.clone(), k), "your centres")
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
    n, d = X.shape
    got = _as_tensor(fn(X.clone(), weights.clone(), means.clone(), variances.clone()), "result")
    K = len(weights)
    if tuple(got.shape) != (n, K):
        raise ExerciseError(
            f"your responsibilities have shape {tuple(got.shape)}, expected ({n}, {K})."
        )

    def responsibilities(w, var):
        log_p = (
            -0.5 * torch.cdist(X, means).pow(2) / var
            - 0.5 * d * torch.log(2 * torch.pi * var)
            + torch.log(w)
        )
        return torch.softmax(log_p, dim=1)

    expected = responsibilities(weights, variances)
    error = (got - expected).abs().max().item()
    if error > 1e-8:
        row_sums = got.sum(1)
        if (row_sums - 1).abs().max() > 1e-6:
            hint = " Your rows do not sum to 1: divide each row by its sum (normalise over k)."
        elif torch.allclose(got, responsibilities(torch.full_like(weights, 1 / K), variances)):
            hint = " You left out the mixing weights: multiply each density by its weight."
        elif torch.allclose(got, responsibilities(weights, variances.sqrt())):
            hint = " You used σ where σ² belongs: `variances` already holds σ²."
        else:
            hint = " Use p(z=k|x) = π_k N(x|μ_k, σ_k² I) / Σ_j π_j N(x|μ_j, σ_j² I)."
        raise ExerciseError(f"your responsibilities are off by up to {error:.3g}.{hint}")
    print("check_e_step: correct; your responsibilities match.")
