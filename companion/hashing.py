"""Semantic hashing: binary codes from an autoencoder and retrieval by Hamming distance."""

from __future__ import annotations

import torch


def binary_codes(model, x: torch.Tensor, *, threshold: float = 0.5) -> torch.Tensor:
    """Bits (n, k) of uint8: the model's sigmoid code units thresholded at ``threshold``.

    The model's code layer should be a sigmoid trained to saturate (for
    example with noise added before the sigmoid during training, as in
    Salakhutdinov & Hinton's semantic hashing).
    """
    with torch.no_grad():
        code = model.encode(x)
    if code.min() < 0 or code.max() > 1:
        raise ValueError(
            "binary_codes needs code values in [0, 1] (a sigmoid code layer); "
            f"got [{code.min().item():.3g}, {code.max().item():.3g}]."
        )
    return (code > threshold).to(torch.uint8)


def hamming_distances(codes_a: torch.Tensor, codes_b: torch.Tensor) -> torch.Tensor:
    """Number of differing bits between every row of codes_a (n, k) and codes_b (m, k): (n, m)."""
    if codes_a.shape[1] != codes_b.shape[1]:
        raise ValueError(
            f"codes have {codes_a.shape[1]} and {codes_b.shape[1]} bits; "
            "compare codes of one length."
        )
    a, b = codes_a.float(), codes_b.float()
    # bits differ where exactly one is 1: |a - b| summed = a(1-b) + (1-a)b
    return (a @ (1 - b).T + (1 - a) @ b.T).round().to(torch.int64)


def hamming_retrieval(
    codes_db: torch.Tensor, codes_query: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k database items nearest to each query in Hamming distance.

    Returns indices (m, k) and distances (m, k); ties go to the lower index.
    """
    if not 1 <= k <= codes_db.shape[0]:
        raise ValueError(f"k={k} must be between 1 and the database size {codes_db.shape[0]}.")
    distances = hamming_distances(codes_query, codes_db)  # (m, n)
    n = codes_db.shape[0]
    # a stable ordering: distance first, then index
    keys = distances * n + torch.arange(n, device=distances.device)
    order = keys.topk(k, dim=1, largest=False).indices
    return order, distances.gather(1, order)
