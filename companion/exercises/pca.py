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


HELDOUT_RANK, HELDOUT_KS = 4, tuple(range(1, 11))


def _low_rank_data(seed: int, n_train: int = 60, n_test: int = 1000, d: int = 20):
    """Train and test rows (float64) of a rank-4 signal in 20-D plus isotropic noise (σ 0.5)."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, HELDOUT_RANK, generator=g, dtype=torch.float64))
    scales = torch.tensor([5.0, 4.0, 3.0, 2.0], dtype=torch.float64)
    codes = torch.randn(n_train + n_test, HELDOUT_RANK, generator=g, dtype=torch.float64)
    noise = 0.5 * torch.randn(n_train + n_test, d, generator=g, dtype=torch.float64)
    X = (codes * scales) @ basis.T + noise + 3.0
    return X[:n_train], X[n_train:]


def _reference_heldout(X_train: torch.Tensor, X_test: torch.Tensor, k: int):
    """(test error, test log-likelihood, train error, train log-likelihood) of PCA(k)."""
    from companion.classical import PCA

    pca = PCA(k).fit(X_train)

    def error(X):
        return (X - pca.inverse_transform(pca.transform(X))).pow(2).sum(1).mean().item()

    return error(X_test), pca.score(X_test), error(X_train), pca.score(X_train)


def check_heldout_k(fn: Callable, seed: int = 0) -> None:
    """Check ``fn(X_train, X_test, k)``: held-out error and log-likelihood of PCA(k).

    ``fn`` fits PCA with ``k`` components on ``X_train`` and returns two numbers measured
    on ``X_test``: the mean squared reconstruction error per sample and the mean
    log-likelihood under probabilistic PCA (``PCA.score``). The check sweeps k = 1..10 on
    data drawn from ``seed`` (60 training rows, a rank-4 signal in 20-D plus noise) and
    judges the two curves: the error falls with k, the log-likelihood peaks at the rank.
    """
    X_train, X_test = _low_rank_data(seed)
    errors, logliks = [], []
    for k in HELDOUT_KS:
        got = _as_tensor(_call(fn, X_train.clone(), X_test.clone(), k), f"your result for k={k}")
        if got.numel() != 2:
            raise ExerciseError(
                f"for k={k} your function returned shape {tuple(got.shape)}; return two "
                "numbers, (error, log_likelihood), both measured on X_test."
            )
        errors.append(got[0].item())
        logliks.append(got[1].item())
    reference = [_reference_heldout(X_train, X_test, k) for k in HELDOUT_KS]
    if max(errors) - min(errors) < 1e-9 and max(logliks) - min(logliks) < 1e-9:
        raise ExerciseError(
            f"your error ({errors[0]:.4g}) and log-likelihood ({logliks[0]:.4g}) are the same "
            "for every k: your function does not pass k to PCA."
        )
    for k, got_error, (test_error, _, train_error, _) in zip(
        HELDOUT_KS, errors, reference, strict=True
    ):
        if abs(got_error - test_error) <= 1e-6 * (1 + test_error):
            continue
        if abs(got_error - train_error) <= 1e-6 * (1 + train_error):
            hint = (
                " That is the error on X_train: reconstruct X_test with the PCA fitted on X_train."
            )
        elif abs(got_error * X_test.shape[1] - test_error) <= 1e-6 * (1 + test_error):
            hint = " It is d times too small: sum the squares over the features, average over rows."
        else:
            hint = (
                " Fit on X_train only (a PCA fitted on X_test has seen the answers), and "
                "measure the squared distance of each test row to its reconstruction."
            )
        raise ExerciseError(
            f"for k={k} your held-out error is {got_error:.6g}, expected {test_error:.6g}.{hint}"
        )
    for k, got_ll, (_, test_ll, _, train_ll) in zip(HELDOUT_KS, logliks, reference, strict=True):
        if abs(got_ll - test_ll) <= 1e-6 * (1 + abs(test_ll)):
            continue
        if abs(got_ll - train_ll) <= 1e-6 * (1 + abs(train_ll)):
            hint = " That is the training set's score: score X_test."
        elif abs(got_ll + test_ll) <= 1e-6 * (1 + abs(test_ll)):
            hint = " It has the wrong sign: return the log-likelihood, which is negative here."
        elif abs(got_ll - test_ll * X_test.shape[0]) <= 1e-6 * abs(test_ll * X_test.shape[0]):
            hint = " It is a sum over the rows: return the mean log-likelihood per row."
        else:
            hint = " Use the mean log-likelihood of X_test under the PCA fitted on X_train."
        raise ExerciseError(
            f"for k={k} your held-out log-likelihood is {got_ll:.6g}, expected {test_ll:.6g}.{hint}"
        )
    best = HELDOUT_KS[max(range(len(logliks)), key=logliks.__getitem__)]
    drop = errors[HELDOUT_RANK - 1] - errors[-1]
    print(
        f"check_heldout_k: correct. The held-out error falls at every k (from {errors[0]:.1f} "
        f"to {errors[HELDOUT_RANK - 1]:.1f} at k = {HELDOUT_RANK}, then only {drop:.1f} more "
        f"by k = {HELDOUT_KS[-1]}); the held-out log-likelihood is highest at k = {best} "
        f"(the data have {HELDOUT_RANK} directions of signal)."
    )
