"""Lloyd's algorithm for k-means, as tensor kernels: squared distances by one matrix
product per chunk of rows, the assignment step (with the nearest and second-nearest
distances that Hamerly's bounds need), the centre sums in float64, empty clusters, and
k-means++ seeding. :class:`companion.classical.KMeans` drives them."""

from __future__ import annotations

import math

import torch


def squared_distances(X: torch.Tensor, C: torch.Tensor, x_sq: torch.Tensor | None = None):
    """||x - c||² for every row of X (n, d) and C (k, d) -> (n, k), never forming (n, k, d).

    Uses ||x||² - 2 x·c + ||c||² (one matrix product), clamped at 0 against rounding.
    """
    x_sq = (X * X).sum(1) if x_sq is None else x_sq
    return _chunk_distances(X, C, x_sq, (C * C).sum(1))


def _chunk_distances(X: torch.Tensor, C: torch.Tensor, x_sq: torch.Tensor, c_sq: torch.Tensor):
    """||x - c||² for a chunk of rows X (m, d) and every centre C (k, d) -> (m, k), from
    the rows' and centres' squared norms (m,) and (k,): one matrix product, clamped at 0.
    The one formula of :func:`assign`, :func:`nearest_two` and :func:`lloyd_step`."""
    return torch.addmm(x_sq[:, None] + c_sq[None, :], X, C.T, alpha=-2).clamp_min_(0)


def assign(X: torch.Tensor, C: torch.Tensor, x_sq: torch.Tensor, chunk: int = 4096):
    """Nearest centre of every row: labels (n,) int64 and squared distances (n,), in chunks.

    The same arithmetic as :func:`lloyd_step` (one matrix product per chunk), so both give
    the same labels. Chunks of a few thousand rows keep the product's operands in cache,
    which on a CPU is faster than one product over all rows.
    """
    labels = torch.empty(X.shape[0], dtype=torch.int64, device=X.device)
    dists = torch.empty(X.shape[0], dtype=X.dtype, device=X.device)
    c_sq = (C * C).sum(1)
    for start in range(0, X.shape[0], chunk):
        part = slice(start, start + chunk)
        dists[part], labels[part] = _chunk_distances(X[part], C, x_sq[part], c_sq).min(dim=1)
    return labels, dists


def _rounding(X: torch.Tensor) -> float:
    """Bound on the rounding error of a squared distance computed as
    ``|x|^2 - 2 x.c + |c|^2``, relative to ``|x|^2 + |c|^2``: each of the three terms is a
    sum of d products, off by at most about d units in the last place (worst case, with a
    margin)."""
    return 4 * X.shape[1] * torch.finfo(X.dtype).eps


def nearest_two(
    X: torch.Tensor,
    C: torch.Tensor,
    x_sq: torch.Tensor,
    rows: torch.Tensor | None = None,
    chunk: int = 4096,
):
    """Nearest centre of the rows of X (n, d) and the squared distances to the nearest
    and the second nearest centre of C (k, d): labels (m,) int64 and two (m,) tensors (the
    second is +inf when k = 1), for every row or for the indices ``rows`` (m,). The
    arithmetic of :func:`assign`, so the labels agree. Chosen rows are gathered chunk by
    chunk into one reused buffer (one large gather costs more than the product)."""
    m, k = (X.shape[0] if rows is None else rows.shape[0]), C.shape[0]
    labels = torch.empty(m, dtype=torch.int64, device=X.device)
    own = torch.empty(m, dtype=X.dtype, device=X.device)
    other = torch.full((m,), float("inf"), dtype=X.dtype, device=X.device)
    c_sq = (C * C).sum(1)
    buffer = None if rows is None else X.new_empty(min(chunk, m), X.shape[1])
    for start in range(0, m, chunk):
        part = slice(start, start + chunk)
        if rows is None:
            d2 = _chunk_distances(X[part], C, x_sq[part], c_sq)
        else:
            index = rows[part]
            block = torch.index_select(X, 0, index, out=buffer[: len(index)])
            d2 = _chunk_distances(block, C, x_sq[index], c_sq)
        if k == 1:
            own[part], labels[part] = d2[:, 0], 0
            continue
        own[part], labels[part] = d2.min(dim=1)  # as assign() chooses among ties
        d2.scatter_(1, labels[part, None], float("inf"))
        other[part] = d2.min(dim=1).values
    return labels, own, other


def lloyd_step(X: torch.Tensor, C: torch.Tensor, x_sq: torch.Tensor, chunk: int = 4096):
    """One assignment pass that also accumulates the new centre sums, chunk by chunk.

    Returns labels (n,), squared distances (n,) and per-cluster sums (k, d); the
    sums are added while each chunk of X is still in cache (a one-hot product).
    """
    n, k = X.shape[0], C.shape[0]
    labels = torch.empty(n, dtype=torch.int64, device=X.device)
    dists = torch.empty(n, dtype=X.dtype, device=X.device)
    sums = torch.zeros_like(C)
    c_sq = (C * C).sum(1)
    eye = torch.eye(k, dtype=X.dtype, device=X.device)
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        dists[part], labels[part] = _chunk_distances(X[part], C, x_sq[part], c_sq).min(dim=1)
        sums.addmm_(eye[labels[part]].T, X[part])
    return labels, dists, sums


def _cluster_sums(
    X: torch.Tensor, labels: torch.Tensor, k: int, chunk: int = 8192
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cluster sums (k, d) and counts (k,) of the rows of X, accumulated in float64."""
    sums = torch.zeros(k, X.shape[1], dtype=torch.float64, device=X.device)
    for start in range(0, X.shape[0], chunk):
        part = slice(start, start + chunk)
        sums.index_add_(0, labels[part], X[part].double())
    counts = torch.bincount(labels, minlength=k).double()
    return sums, counts


def _move_points(
    X: torch.Tensor,
    members: torch.Tensor,
    labels: torch.Tensor,
    sums: torch.Tensor,
    counts: torch.Tensor,
) -> None:
    """Update ``sums`` and ``counts`` (in place) for the rows whose label changed from
    ``members`` to ``labels``; ``members`` becomes ``labels``."""
    moved = torch.nonzero(labels != members).flatten()
    if moved.numel():
        rows = X[moved].double()
        ones = torch.ones(len(moved), dtype=torch.float64, device=X.device)
        sums.index_add_(0, labels[moved], rows)
        sums.index_add_(0, members[moved], rows, alpha=-1)
        counts.index_add_(0, labels[moved], ones)
        counts.index_add_(0, members[moved], ones, alpha=-1)
        members.copy_(labels)


def _inertia_from_sums(
    total_sq: float, centers: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor
) -> float:
    """Sum of squared distances of the points to their cluster's centre (the inertia),
    from the cluster sums S_j (k, d) and counts n_j (k,) in float64 and the total of
    |x|^2: sum |x|^2 - 2 sum_j c_j . S_j + sum_j n_j |c_j|^2. Needs no distance."""
    c64 = centers.double()
    inertia = total_sq - 2 * float((c64 * sums).sum()) + float(counts @ c64.pow(2).sum(1))
    return max(inertia, 0.0)


def _fill_empty_clusters(
    X: torch.Tensor,
    members: torch.Tensor,
    dists: torch.Tensor,
    sums: torch.Tensor,
    counts: torch.Tensor,
) -> None:
    """An empty cluster takes the point farthest from its centre (in place)."""
    empty = torch.nonzero(counts == 0).flatten()
    if len(empty):
        far = torch.argsort(dists, descending=True)[: len(empty)]
        for cluster, point in zip(empty.tolist(), far.tolist(), strict=True):
            old = members[point]
            row = X[point].double()
            sums[old] -= row
            counts[old] -= 1
            sums[cluster] = row
            counts[cluster] = 1
            members[point] = cluster


def _fill_empty_from_candidates(
    far: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor
) -> None:
    """``_fill_empty_clusters`` for a stream: the farthest points are the candidates
    ``far`` (rows [distance, label, x...], farthest first) kept during the pass."""
    empty = torch.nonzero(counts == 0).flatten()
    for cluster, candidate in zip(empty.tolist(), far[: len(empty)], strict=False):
        old, row = int(candidate[1]), candidate[2:]
        sums[old] -= row
        counts[old] -= 1
        sums[cluster] = row
        counts[cluster] = 1


def kmeans_plusplus(X: torch.Tensor, k: int, generator: torch.Generator, x_sq: torch.Tensor):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007), 2 + log k trials per centre."""
    n = X.shape[0]
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=generator))
    centers = [X[first]]
    closest = squared_distances(X, X[first : first + 1], x_sq)[:, 0]
    for _ in range(1, k):
        probabilities = (closest / closest.sum()).double().cpu()
        if not torch.isfinite(probabilities).all() or probabilities.sum() <= 0:
            probabilities = torch.full((n,), 1.0 / n, dtype=torch.float64)
        candidates = torch.multinomial(probabilities, trials, replacement=True, generator=generator)
        candidates = candidates.to(X.device)
        d2 = squared_distances(X, X[candidates], x_sq)  # (n, trials)
        potentials = torch.minimum(closest[:, None], d2).sum(0)
        best = int(potentials.argmin())
        centers.append(X[candidates[best]])
        closest = torch.minimum(closest, d2[:, best])
    return torch.stack(centers)
