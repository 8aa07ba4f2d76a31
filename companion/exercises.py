"""Checks that students run on their own answers to the book's code exercises.

Each ``check_*`` function calls the student's function on data it makes,
compares the result with an independent reference, and either prints a short
confirmation or raises :class:`ExerciseError` explaining in plain words what
is wrong (shape, value off by how much) with a hint. Never a bare
``AssertionError``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class ExerciseError(AssertionError):
    """An exercise answer is wrong; the message says how and hints at the fix."""


def _exercise_data(n: int = 200, d: int = 6, seed: int = 0) -> torch.Tensor:
    """Correlated, off-centre data with well-separated variances, (n, d) float64."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.3, d, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    latent = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    return latent @ rotation.T + torch.linspace(5, -5, d, dtype=torch.float64)


def _reference_pca(X: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k eigenvalues (descending) and eigenvectors (columns) of the covariance (N - 1)."""
    Xc = X - X.mean(0)
    values, vectors = torch.linalg.eigh(Xc.T @ Xc / (X.shape[0] - 1))
    return values.flip(0)[:k], vectors.flip(1)[:, :k]


def _as_tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64)
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ExerciseError(
            f"{what} should be a tensor or array of numbers, got {type(value).__name__}."
        ) from err


def check_pca_projection(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """Check ``fn(X, k)``: the (n, k) PCA codes of X (n, d), components in decreasing variance.

    Signs of the columns are free (an eigenvector's sign is arbitrary).
    """
    X = _exercise_data()
    n, d = X.shape
    k = 3
    Z = _as_tensor(fn(X.clone(), k), "your function's result")
    if tuple(Z.shape) != (n, k):
        hint = (
            " It looks transposed: return one row per sample."
            if tuple(Z.shape) == (k, n)
            else " Return one row per sample and one column per component."
        )
        raise ExerciseError(
            f"your codes have shape {tuple(Z.shape)}, expected ({n}, {k}) for X of shape "
            f"({n}, {d}) and k={k}.{hint}"
        )
    if not torch.isfinite(Z).all():
        raise ExerciseError("your codes contain NaN or inf; check for a division by zero.")
    mean_abs = Z.mean(0).abs().max().item()
    if mean_abs > 1e-6:
        raise ExerciseError(
            f"your codes have column means up to {mean_abs:.3g}, but PCA codes of centred data "
            "have mean 0. Did you subtract X.mean(0) before projecting?"
        )
    values, vectors = _reference_pca(X, k)
    Zref = (X - X.mean(0)) @ vectors
    variances = Z.var(0)
    for j in range(k):
        sign = 1.0 if (Z[:, j] @ Zref[:, j]) >= 0 else -1.0
        error = (sign * Z[:, j] - Zref[:, j]).abs().max().item()
        if error > 1e-6 * (1 + Zref[:, j].abs().max().item()):
            ascending = bool(variances[0] < variances[-1])
            hint = (
                " Your columns come in increasing variance: torch.linalg.eigh returns "
                "eigenvalues in ascending order, so take its last k eigenvectors, largest first."
                if ascending
                else f" Column {j} has variance {variances[j].item():.4g}; the component "
                f"should have variance {values[j].item():.4g} (eigenvalue {j + 1} of the "
                "covariance). Project onto the eigenvectors of the largest eigenvalues."
            )
            raise ExerciseError(f"column {j} of your codes is off by up to {error:.3g}.{hint}")
    print(f"check_pca_projection: correct; the {k} codes match PCA up to sign.")


def check_reconstruction_error(fn: Callable[[torch.Tensor, int], float]) -> None:
    """Check ``fn(X, k)``: mean squared reconstruction error of rank-k PCA, per sample.

    Expected: the sum over samples of ||x - x̂||², divided by n (not by n·d).
    """
    X = _exercise_data(seed=1)
    n, d = X.shape
    for k in (1, 3, d):
        got = _as_tensor(fn(X.clone(), k), f"your result for k={k}")
        if got.numel() != 1:
            raise ExerciseError(
                f"for k={k} your function returned shape {tuple(got.shape)}; return one number, "
                "the error averaged over the samples."
            )
        Xc = X - X.mean(0)
        _, vectors = _reference_pca(X, k)
        expected = (Xc - Xc @ vectors @ vectors.T).pow(2).sum() / n
        got = got.item()
        if abs(got - expected.item()) > 1e-6 * (1 + expected.item()):
            if expected > 0 and abs(got * d - expected.item()) < 1e-6 * (1 + expected.item()):
                hint = " It is d times too small: sum over the features, average over samples."
            elif expected > 0 and abs(got - expected.item() * n / (n - 1)) < 1e-6 * expected:
                hint = " It is off by n/(n-1): divide the sum by n, the number of samples."
            else:
                hint = (
                    " The error should equal (n-1)/n times the sum of the discarded "
                    "eigenvalues of the covariance."
                )
            raise ExerciseError(
                f"for k={k} your error is {got:.6g}, expected {expected.item():.6g}.{hint}"
            )
    print("check_reconstruction_error: correct for k = 1, 3 and the full rank.")


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
