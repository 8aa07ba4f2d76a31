"""Checks for the PCA chapter's programming exercises."""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._common import ExerciseError, _as_tensor, _call


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


def check_pca_projection(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """Check ``fn(X, k)``: the (n, k) PCA codes of X (n, d), components in decreasing variance.

    Signs of the columns are free (an eigenvector's sign is arbitrary).
    """
    X = _exercise_data()
    n, d = X.shape
    k = 3
    Z = _as_tensor(_call(fn, X.clone(), k), "your function's result")
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
        got = _as_tensor(_call(fn, X.clone(), k), f"your result for k={k}")
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
