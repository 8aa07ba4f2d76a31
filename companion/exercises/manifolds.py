"""Checks for the manifolds chapter's programming exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.data import make_swiss_roll
from companion.exercises._common import ExerciseError, _call, _scalar

ISOMAP_NEIGHBOURS = (6, 12, 40)


def _unrolled(t: torch.Tensor) -> torch.Tensor:
    """Arc length along the spiral (r = t) of the swiss roll, from t = 0."""
    return 0.5 * (t * torch.sqrt(1 + t**2) + torch.asinh(t))


def _distance_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation between the pairwise distances of two point sets."""
    return torch.corrcoef(torch.stack([torch.pdist(a), torch.pdist(b)]))[0, 1].item()


def check_isomap_neighbours(fn: Callable, seed: int = 0) -> None:
    """Check ``fn(X, flat, n_neighbors)``: how well Isomap unrolls the swiss roll.

    ``fn`` embeds the (800, 3) points ``X`` in 2-D with Isomap on ``n_neighbors``
    neighbours and returns one number: the correlation between the pairwise distances of
    the embedding and those of ``flat`` (800, 2), the unrolled coordinates. The check
    runs it for k = 6, 12 and 40 on a swiss roll drawn from ``seed`` and judges what it
    measured: a connected graph that follows the sheet (k = 6) unrolls it almost
    exactly, a graph whose neighbour lists reach the next turn (k = 40) does not.
    """
    X, t = make_swiss_roll(800, seed=seed)
    X, t = X.double(), t.double()
    flat = torch.stack([_unrolled(t), X[:, 1]], dim=1)  # (800, 2): arc length, height
    scores = {}
    for k in ISOMAP_NEIGHBOURS:
        value = _scalar(
            _call(fn, X.clone(), flat.clone(), k),
            f"your result for n_neighbors={k}",
            ", the correlation of the two sets of pairwise distances",
        )
        if not math.isfinite(value):
            raise ExerciseError(
                f"for n_neighbors={k} your correlation is {value}; with too few neighbours "
                "the graph can fall apart (infinite distances), but k = 6 is enough here: "
                "look for a division by a zero standard deviation."
            )
        if not -1 - 1e-9 <= value <= 1 + 1e-9:
            raise ExerciseError(
                f"for n_neighbors={k} you return {value:.4g}, which is not a correlation "
                "(those lie in [-1, 1]). Return the correlation coefficient of the two "
                "lists of distances, not a distance or a covariance."
            )
        scores[k] = value
    low, mid, high = (scores[k] for k in ISOMAP_NEIGHBOURS)
    shown = ", ".join(f"{scores[k]:.3f} (k = {k})" for k in ISOMAP_NEIGHBOURS)
    euclidean = _distance_correlation(X, flat)
    if max(scores.values()) - min(scores.values()) < 1e-9:
        same = (
            f" Straight-line distances in 3-D give exactly that ({euclidean:.3f}): compare "
            "the distances in the 2-D embedding, made from graph distances."
            if abs(low - euclidean) < 1e-6
            else ""
        )
        raise ExerciseError(
            f"your correlation is {low:.4g} for every number of neighbours: your function "
            f"does not use its n_neighbors argument. Build the neighbour graph with it.{same}"
        )
    if low < 0.95 and high >= 0.95:
        raise ExerciseError(
            f"your correlations are {shown}: the unrolling works at k = 40 and fails at "
            "k = 6, the reverse of what a neighbour graph does. Does your function pass k "
            "as the number of neighbours (not as the number of components)?"
        )
    if low < 0.95:
        if max(scores.values()) < 0.5:
            hint = (
                f" Straight-line distances in 3-D give {euclidean:.2f}, and yours are no "
                "better at any k: compare distances in the 2-D embedding (not in X), and "
                "embed with graph (geodesic) distances, not with PCA of X."
            )
        else:
            hint = (
                " With 6 neighbours the graph is connected and follows the sheet, so the "
                "embedding should be the unrolled rectangle up to a rotation. Is the "
                "embedding 2-D, and do you correlate the distances of all pairs?"
            )
        raise ExerciseError(f"your correlations are {shown}; expected above 0.95 at k = 6.{hint}")
    if high > 0.5:
        raise ExerciseError(
            f"your correlations are {shown}; at k = 40 some neighbour lists reach across to "
            "the next turn of the roll and the graph takes those shortcuts, so the unrolling "
            "fails (expected below 0.5). Does your function pass k as the number of "
            "neighbours, and fit a new Isomap for each k?"
        )
    at_12 = "still unrolls it" if mid >= 0.95 else "already takes a shortcut on this draw"
    print(
        f"check_isomap_neighbours: correct; your run scores {shown}. Straight-line "
        f"distances would score {euclidean:.2f}; k = 12 {at_12}, k = 40 bridges the turns."
    )
