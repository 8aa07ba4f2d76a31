"""Checks for the chapter on autoregressive models and evaluation: sample-based scores.

Parzen windows, nearest-neighbour distances and k-NN precision; the checks on
likelihoods and masks are in :mod:`companion.exercises.evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.exercises._common import (
    ExerciseError,
    _as_tensor,
    _call,
    _close,
    _generator,
    _scalar,
    _shape,
)


def check_parzen_log_likelihood(
    fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
) -> None:
    """Check ``fn(x, samples, sigma)``: the Parzen-window log-density of every row of x.

    x (m, d), samples (n, d), sigma > 0. Return (m,) with
    log p̂(x) = log (1/n) Σ_i N(x; s_i, σ² I), finite even in d = 784.
    """
    g = _generator(13)

    def reference(x, s, sigma):
        logk = torch.distributions.Normal(s[None], sigma).log_prob(x[:, None]).sum(-1)  # (m, n)
        return torch.logsumexp(logk, 1) - math.log(s.shape[0]), logk

    cases = [("d = 2", 6, 30, 2, 0.5), ("d = 784", 5, 40, 784, 0.2)]
    for name, m, n, d, sigma in cases:
        x = torch.rand(m, d, generator=g, dtype=torch.float64)
        s = torch.rand(n, d, generator=g, dtype=torch.float64)
        got = _as_tensor(_call(fn, x.clone(), s.clone(), sigma), "your log-density")
        hint = (
            " It looks like one value per sample; average over the samples."
            if got.shape == (n,)
            else ""
        )
        _shape(got, (m,), f"for {name} your log-density", hint or " One value per row of x.")
        if not torch.isfinite(got).all():
            raise ExerciseError(
                f"for {name} your log-density has -inf or NaN: every kernel is below "
                "exp(-700) there and underflows to 0. Work with log-kernels and use "
                "torch.logsumexp over the samples."
            )
        expected, logk = reference(x, s, sigma)
        if _close(got, expected, 1e-8):
            continue
        error = (got - expected).abs().max().item()
        const = 0.5 * d * math.log(2 * math.pi * sigma**2)
        if _close(got, expected + const, 1e-8):
            hint = " You left out the normalising constant −(d/2) log(2πσ²) of each kernel."
        elif _close(got, expected + math.log(n), 1e-8):
            hint = f" It is too large by log n = log {n}: the kernels are averaged, not summed."
        elif _close(got, reference(x, s, math.sqrt(sigma))[0], 1e-8):
            hint = " You used σ where σ² belongs: the kernel's variance is sigma**2."
        elif _close(got, logk.mean(1), 1e-8):
            hint = (
                " That is the mean of the log-kernels, a lower bound (Jensen); take the log of "
                "the mean of the kernels: logsumexp − log n."
            )
        else:
            hint = (
                " The log-density is the log of the average over the samples of the "
                "Gaussian kernels N(x; s_i, σ² I); check the exponent, the constant, the average."
            )
        raise ExerciseError(f"for {name} your log-density is off by up to {error:.3g}.{hint}")
    print("check_parzen_log_likelihood: correct and finite in 784 dimensions.")


def check_nearest_distances(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(queries, reference)``: each query's distance to its nearest reference row.

    queries (n, d), reference (m, d); return (n,). A memorised sample is at
    distance 0 from the training set. Tolerance 1e-5: torch.cdist's fast
    formula loses digits near 0 (a copy comes out at ~1e-7, not 0).
    """
    g = _generator(14)
    reference = torch.rand(50, 784, generator=g, dtype=torch.float64)
    queries = torch.rand(8, 784, generator=g, dtype=torch.float64)
    queries[:3] = reference[[4, 17, 31]]  # three copies of training images
    got = _as_tensor(_call(fn, queries.clone(), reference.clone()), "your distances")
    hint = ""
    if got.shape == (50,):
        hint = " That is one value per reference row; return one per query."
    elif got.shape == (8, 50):
        hint = " Take the minimum over the reference rows (dim 1)."
    _shape(got, (8,), "your distances", hint)
    pairwise = torch.stack([((reference - q) ** 2).sum(1).sqrt() for q in queries])  # (8, 50)
    expected = pairwise.min(1).values
    if not _close(got, expected, 1e-5):
        error = (got - expected).abs().max().item()
        if _close(got, expected**2, 1e-5):
            hint = " Those are squared distances: take the square root."
        elif torch.equal(got, pairwise.argmin(1).double()):
            hint = " Those are the indices of the nearest rows; return the distances."
        elif _close(got, pairwise.mean(1), 1e-5):
            hint = " That is the mean distance to the reference set; take the minimum."
        elif _close(got, pairwise.max(1).values, 1e-5):
            hint = " That is the farthest row; take the minimum."
        else:
            hint = " Each query's answer is its Euclidean distance to the closest reference row."
        raise ExerciseError(f"your distances are off by up to {error:.3g}.{hint}")
    print("check_nearest_distances: correct; the 3 copied images are at distance 0.")


def check_knn_precision(fn: Callable[[torch.Tensor, torch.Tensor, int], float]) -> None:
    """Check ``fn(real, generated, k)``: the k-NN manifold precision, one number in [0, 1].

    real (n, d), generated (m, d). Around each real point put a ball whose
    radius is the distance to its k-th nearest other real point; precision
    is the share of generated points inside at least one ball (distance ≤ radius).
    """
    g = _generator(15)
    real = torch.cat([
        0.5 * torch.randn(30, 2, generator=g, dtype=torch.float64),
        0.5 * torch.randn(30, 2, generator=g, dtype=torch.float64) + torch.tensor([4.0, 0.0]),
    ])  # fmt: skip
    generated = torch.cat([
        1.0 * torch.randn(30, 2, generator=g, dtype=torch.float64),
        0.3 * torch.randn(10, 2, generator=g, dtype=torch.float64) + torch.tensor([0.0, 6.0]),
    ])  # fmt: skip
    k = 3

    def coverage(points, support, kth):
        dist = [[math.dist(p, q) for q in support.tolist()] for p in support.tolist()]
        radii = [sorted(row)[kth] for row in dist]  # sorted(row)[0] is the point itself
        inside = [
            any(math.dist(p, q) <= r for q, r in zip(support.tolist(), radii, strict=True))
            for p in points.tolist()
        ]
        return sum(inside) / len(inside)

    got = _scalar(
        _call(fn, real.clone(), generated.clone(), k), "your precision", " (the mean over examples)"
    )
    expected = coverage(generated, real, k)
    if abs(got - expected) > 1e-9:
        if abs(got - coverage(real, generated, k)) < 1e-9:
            hint = (
                " That is recall: the balls go around the real points and the generated "
                "points are counted."
            )
        elif abs(got - coverage(generated, real, k - 1)) < 1e-9:
            hint = (
                " Your radii are too small: each real point is its own nearest neighbour at "
                "distance 0, so the k-th nearest other point is at sorted index k."
            )
        elif abs(got - expected * len(generated)) < 1e-9:
            hint = f" That is a count; divide by the {len(generated)} generated points."
        else:
            hint = " Radius of real point i: distance to its k-th nearest other real point."
        raise ExerciseError(f"your precision is {got:.6g}, expected {expected:.6g}.{hint}")
    print(f"check_knn_precision: correct (precision {expected:.3f}; the stray samples miss).")
