"""Linear-algebra building blocks shared by PCA and the chapters.

Each function takes and returns torch tensors on the caller's device.
"""

from __future__ import annotations

import torch


def column_mean(X: torch.Tensor) -> torch.Tensor:
    """Mean of each column of X (n, d) -> (d,), in X's dtype.

    torch's reduction sums in a tree (error ~1e-7 for 60,000 float32 rows);
    NumPy's float32 ``mean(axis=0)`` adds row after row and is ~1000x worse.
    """
    return X.mean(dim=0)


def flip_signs(components: torch.Tensor) -> torch.Tensor:
    """Make the largest-magnitude entry of every row positive (scikit-learn's convention).

    components: (k, d) -> (k, d). Deterministic signs make results comparable
    across solvers, devices and libraries.
    """
    if components.numel() == 0:
        return components
    biggest = components.abs().argmax(dim=1, keepdim=True)
    signs = torch.sign(torch.gather(components, 1, biggest))
    signs[signs == 0] = 1
    return components * signs


def randomized_svd(
    A: torch.Tensor,
    k: int,
    *,
    n_oversamples: int = 10,
    n_iter: int = 4,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Approximate top-``k`` SVD of A (n, d) by a randomized range finder.

    Halko, Martinsson & Tropp (2011): sketch the range of A with a Gaussian
    test matrix, sharpen it with ``n_iter`` power iterations (re-orthonormalised
    by QR each time), then take the exact SVD of the small projected matrix.
    Returns U (n, k), S (k,), Vt (k, d).
    """
    n, d = A.shape
    p = min(k + n_oversamples, n, d)
    omega = torch.randn(d, p, generator=generator, dtype=A.dtype).to(A.device)
    Q, _ = torch.linalg.qr(A @ omega)  # (n, p)
    for _ in range(n_iter):
        Q, _ = torch.linalg.qr(A.T @ Q)  # (d, p)
        Q, _ = torch.linalg.qr(A @ Q)  # (n, p)
    B = Q.T @ A  # (p, d)
    Ub, S, Vt = torch.linalg.svd(B, full_matrices=False)
    return (Q @ Ub)[:, :k], S[:k], Vt[:k]


def principal_angles(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Principal angles (radians, ascending) between the column spaces of A (d, k) and B (d, l).

    Zero angles mean the subspaces coincide, whatever bases they are given in.
    """
    Qa, _ = torch.linalg.qr(A.to(torch.float64))
    Qb, _ = torch.linalg.qr(B.to(torch.float64))
    cosines = torch.linalg.svdvals(Qa.T @ Qb).clamp(-1.0, 1.0)
    return torch.arccos(cosines)  # svdvals are descending, so the angles ascend
