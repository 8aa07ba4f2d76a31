"""Sample-based checks by nearest neighbours: memorisation, k-NN precision and recall."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from companion._validation import check_array, check_positive_int


# ------------------------------------------------------------------ distances
def nearest_distances(
    queries: torch.Tensor, reference: torch.Tensor, k: int = 1, *, chunk: int = 1024
) -> torch.Tensor:
    """Distances from every query (n, d) to its k nearest rows of ``reference`` (m, d): (n, k).

    Sorted ascending. Queries are taken ``chunk`` rows at a time, so memory
    stays about chunk × m.
    """
    if k > reference.shape[0]:
        raise ValueError(f"k={k} exceeds the {reference.shape[0]} reference points; lower k.")
    parts = [
        torch.cdist(q, reference).topk(k, dim=1, largest=False).values for q in queries.split(chunk)
    ]
    return torch.cat(parts)


def _pair(a: Any, b: Any, names: tuple[str, str], min_samples: int = 1):
    A, _ = check_array(a, name=names[0], min_samples=min_samples, dtype=torch.float64)
    B, _ = check_array(b, name=names[1], min_samples=min_samples, dtype=torch.float64)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"{names[0]} has {A.shape[1]} features but {names[1]} has {B.shape[1]}; flatten "
            "images the same way (x.reshape(len(x), -1)) or use the same feature extractor."
        )
    return A, B.to(A.device)


# ------------------------------------------------------------ memorisation
@dataclass(frozen=True)
class MemorisationReport:
    """Result of :func:`memorisation_check`.

    generated_to_train : (n_gen,) distance of every sample to its nearest training example.
    test_to_train : (n_test,) the same for held-out real examples, the reference.
    threshold : the ``quantile`` of test_to_train.
    suspicious_fraction : share of samples nearer to the training set than
        ``threshold``; about ``quantile`` for a model that does not copy,
        near 1 for one that does.
    """

    generated_to_train: torch.Tensor
    test_to_train: torch.Tensor
    threshold: float
    suspicious_fraction: float


def memorisation_check(
    generated: Any, train: Any, test: Any, *, quantile: float = 0.01, chunk: int = 1024
) -> MemorisationReport:
    """Compare each sample's nearest-training-example distance with the test set's.

    generated (n_gen, d), train (n_train, d), test (n_test, d): flattened
    images or features. A model that reproduces training images puts its
    samples much nearer to the training set than fresh real images are.
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile={quantile} must lie strictly between 0 and 1, e.g. 0.01.")
    G, T = _pair(generated, train, ("generated", "train"))
    _, R = _pair(generated, test, ("generated", "test"))
    gen = nearest_distances(G, T, chunk=chunk)[:, 0]
    ref = nearest_distances(R, T, chunk=chunk)[:, 0]
    threshold = float(torch.quantile(ref, quantile))
    return MemorisationReport(
        gen.cpu(), ref.cpu(), threshold, float((gen < threshold).double().mean())
    )


# ------------------------------------------------------- precision / recall
def _manifold_coverage(points: torch.Tensor, support: torch.Tensor, k: int, chunk: int) -> float:
    """Share of ``points`` in some ball B(s, distance from s to its k-th neighbour in support)."""
    radii = nearest_distances(support, support, k + 1, chunk=chunk)[:, k]  # (m,), self excluded
    inside = [(torch.cdist(p, support) <= radii[None, :]).any(1) for p in points.split(chunk)]
    return float(torch.cat(inside).double().mean())


def precision_recall(
    real: Any, generated: Any, *, k: int = 3, chunk: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall of Kynkäänniemi et al. (2019), both in [0, 1].

    The real manifold is the union of balls around every real feature vector
    with radius the distance to its k-th nearest real neighbour; precision is
    the share of generated samples inside it (are samples realistic?).
    Recall swaps the roles (is every kind of real example generated?).
    real (n, d), generated (m, d), both with more than k rows.
    """
    k = check_positive_int(k, name="k")
    R, G = _pair(real, generated, ("real", "generated"), min_samples=k + 1)
    return _manifold_coverage(G, R, k, chunk), _manifold_coverage(R, G, k, chunk)
