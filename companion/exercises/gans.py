"""Checks for the GAN chapter's programming exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from companion.exercises._common import (
    ExerciseError,
    _as_tensor,
    _call,
    _close,
    _generator,
    _scalar,
    _sweep,
)


def check_optimal_discriminator(
    fn: Callable[[torch.Tensor, torch.Tensor, float, float], torch.Tensor],
) -> None:
    """Check ``fn(p_data, p_model, real_label, fake_label)``: the optimal D at each point.

    p_data and p_model (n,) are the two densities at n points (not both zero);
    real_label α and fake_label β are the discriminator's targets (1 and 0
    without label smoothing). Return D*(x) = (α p_data + β p_model) / (p_data + p_model).
    """
    g = _generator(0)
    p_data = torch.rand(12, generator=g, dtype=torch.float64)
    p_model = torch.rand(12, generator=g, dtype=torch.float64)
    p_model[0] = 0.0  # only data here: D* = α
    for alpha, beta in ((1.0, 0.0), (0.9, 0.0), (0.8, 0.2)):
        got = _as_tensor(_call(fn, p_data.clone(), p_model.clone(), alpha, beta), "your D*")
        expected = (alpha * p_data + beta * p_model) / (p_data + p_model)
        if got.shape != expected.shape:
            raise ExerciseError(
                f"your D* has shape {tuple(got.shape)}, expected {tuple(expected.shape)}: "
                "one value per point."
            )
        if not _close(got, expected):
            error = (got - expected).abs().max().item()
            if _close(got, p_data / (p_data + p_model)):
                hint = (
                    " You ignored the labels: with targets α for data and β for samples the "
                    "optimum is (α p_data + β p_model) / (p_data + p_model)."
                )
            elif _close(got, p_model / (p_data + p_model)):
                hint = " You swapped the densities: D* is the probability that x is real."
            elif _close(got, ((1 - alpha) * p_data + beta * p_model) / (p_data + p_model)):
                hint = " real_label is α itself (e.g. 0.9), not the amount of smoothing."
            else:
                hint = " Maximise α log D + (1 − α) log(1 − D) weighted by p_data, etc."
            raise ExerciseError(
                f"for real_label={alpha}, fake_label={beta} your D* is off by up to "
                f"{error:.3g}.{hint}"
            )
    print("check_optimal_discriminator: correct, with and without label smoothing.")


def check_discriminator_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(real_logits, fake_logits)``: the discriminator's loss, one number.

    real_logits (B,) and fake_logits (B,) are D's outputs before the sigmoid on
    data and on generated samples. The loss is the binary cross-entropy with
    targets 1 for data and 0 for samples, averaged over each batch and summed
    over the two: −E[log D(x)] − E[log(1 − D(G(z)))] = −V(D, G).
    """
    g = _generator(1)
    real = 2 * torch.randn(16, generator=g, dtype=torch.float64)
    fake = 2 * torch.randn(16, generator=g, dtype=torch.float64) - 1
    real[0], fake[0] = -50.0, 50.0  # a confidently wrong D: stable formulas needed
    got = _scalar(_call(fn, real.clone(), fake.clone()), "your loss")
    if not math.isfinite(got):
        raise ExerciseError(
            "your loss is inf or NaN for logits of ±50: σ(−50) underflows to about 2e-22 "
            "in float32 and σ(50) rounds to 1, so a log of σ or of 1 − σ is log 0. Compute "
            "log σ(a) and log(1 − σ(a)) without forming σ(a): softplus (or logsigmoid) "
            "stays finite."
        )
    ones, zeros = torch.ones_like(real), torch.zeros_like(fake)
    real_term = F.binary_cross_entropy_with_logits(real, ones).item()
    fake_term = F.binary_cross_entropy_with_logits(fake, zeros).item()
    expected = real_term + fake_term
    if abs(got - expected) > 1e-6 * (1 + abs(expected)):
        if abs(got + expected) < 1e-6 * (1 + abs(expected)):
            hint = " It has the wrong sign: the loss is −V, which D minimises."
        elif abs(got - expected / 2) < 1e-6 * (1 + abs(expected)):
            hint = " It is half the expected value: sum the two batch means, do not average them."
        elif abs(got - (F.binary_cross_entropy_with_logits(real, zeros).item()
                        + F.binary_cross_entropy_with_logits(fake, ones).item())) < 1e-6 * (
            1 + abs(expected)
        ):  # fmt: skip
            hint = " You swapped the targets: data are labelled 1 and samples 0."
        elif abs(got - expected * len(real)) < 1e-6 * (1 + abs(expected * len(real))):
            hint = " It is B times too large: average each batch, do not sum it."
        else:
            hint = (
                " The loss is the cross-entropy of the real logits with target 1 plus that "
                "of the fake logits with target 0, each averaged over its batch."
            )
        raise ExerciseError(f"your loss is {got:.6g}, expected {expected:.6g}.{hint}")
    print("check_discriminator_loss: correct and stable.")


def check_js_divergence(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> None:
    """Check ``fn(p, q)``: the Jensen–Shannon divergence (nats) of two discrete distributions.

    p and q (K,) are probability vectors, possibly with zeros.
    """
    cases = [
        (torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.0, 0.5, 0.5])),
        (torch.tensor([0.1, 0.2, 0.7]), torch.tensor([0.3, 0.3, 0.4])),
        (torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])),
        (torch.tensor([0.25, 0.75]), torch.tensor([0.25, 0.75])),
    ]

    def kl(a, b):
        mask = a > 0
        return (a[mask] * (a[mask] / b[mask]).log()).sum().item()

    for p, q in cases:
        p, q = p.double(), q.double()
        got = _scalar(_call(fn, p.clone(), q.clone()), "your divergence")
        m = (p + q) / 2
        expected = 0.5 * kl(p, m) + 0.5 * kl(q, m)
        if not math.isfinite(got):
            raise ExerciseError(
                f"your divergence is {got} for p={p.tolist()}, q={q.tolist()}: terms with "
                "p_k = 0 contribute 0 (0 log 0 = 0); leave them out."
            )
        if abs(got - expected) > 1e-9:
            if abs(got - expected / math.log(2)) < 1e-9:
                hint = " That is in bits; use natural logarithms (nats)."
            elif abs(got - 2 * expected) < 1e-9:
                hint = " It is twice too large: JS = ½ KL(p‖m) + ½ KL(q‖m)."
            else:
                hint = " JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m) with m = (p + q) / 2."
            raise ExerciseError(
                f"for p={p.tolist()}, q={q.tolist()} your divergence is {got:.6g}, "
                f"expected {expected:.6g}.{hint}"
            )
    print(f"check_js_divergence: correct; disjoint supports give log 2 = {math.log(2):.4f}.")


def check_mode_count(fn: Callable[[torch.Tensor, torch.Tensor, float], int]) -> None:
    """Check ``fn(samples, centers, sigma)``: how many modes have a high-quality sample.

    samples (n, 2), centers (K, 2); a sample is high quality when it lies within
    3σ of its nearest centre, and a mode counts as covered when at least one
    high-quality sample is nearest to it.
    """
    g = _generator(2)
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    centers = torch.stack([angles.cos(), angles.sin()], 1) * 2  # ring of 8, radius 2
    sigma = 0.05
    picks = torch.tensor([0, 0, 1, 3, 3, 3, 6])
    samples = centers[picks] + sigma * torch.randn(len(picks), 2, generator=g, dtype=torch.float64)
    samples[1] = centers[0] + torch.tensor([5 * sigma, 0.0], dtype=torch.float64)  # 5σ: poor
    near_miss = centers[5] + torch.tensor([0.0, 3.5 * sigma], dtype=torch.float64)  # poor
    samples = torch.cat([samples, near_miss[None], torch.zeros(1, 2, dtype=torch.float64)])
    got = _scalar(_call(fn, samples.clone(), centers.clone(), sigma), "your count")
    distances = torch.cdist(samples, centers)
    nearest, index = distances.min(1)
    good = nearest <= 3 * sigma
    expected = len(torch.unique(index[good]))
    if got != expected:
        if got == len(torch.unique(index)):
            hint = (
                " You counted every sample's nearest mode; only samples within 3σ of it "
                "(high quality) count."
            )
        elif got == int(good.sum()):
            hint = " That is the number of high-quality samples; count distinct modes."
        elif got == len(torch.unique(index[nearest <= 3 * sigma**2])):
            hint = " The radius is 3σ, not 3σ²."
        else:
            hint = " Assign each sample to its nearest centre, keep those within 3σ, count modes."
        raise ExerciseError(f"your count is {got:g}, expected {expected}.{hint}")
    print(f"check_mode_count: correct ({expected} of 8 modes covered).")


def check_minibatch_features(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(M)``: the minibatch-discrimination features of a batch.

    M (B, K, C) holds, for each of B examples, K projected vectors of length C.
    Return o (B, K) with o[i, b] = Σ_{j ≠ i} exp(−‖M[i, b] − M[j, b]‖₁), the
    closeness of example i to the rest of its batch under kernel b.
    """
    g = _generator(3)
    M = torch.randn(6, 3, 4, generator=g, dtype=torch.float64) * 0.5
    M[1] = M[0]  # two identical examples: each contributes exp(0) = 1 to the other
    got = _as_tensor(_call(fn, M.clone()), "your features")
    l1 = (M[:, None] - M[None, :]).abs().sum(-1)  # (B, B, K)
    expected = torch.exp(-l1).sum(1) - 1.0
    if got.shape != expected.shape:
        raise ExerciseError(
            f"your features have shape {tuple(got.shape)}, expected {tuple(expected.shape)}: "
            "one value per example and kernel, (B, K)."
        )
    if not _close(got, expected):
        error = (got - expected).abs().max().item()
        if _close(got, expected + 1.0):
            hint = " You included j = i, which adds exp(0) = 1 to every feature; leave it out."
        elif _close(got, torch.exp(-((M[:, None] - M[None, :]) ** 2).sum(-1)).sum(1) - 1.0):
            hint = " Use the L1 distance Σ|·|, not the squared L2 distance."
        else:
            hint = " o[i, b] = Σ over j ≠ i of exp(−Σ_c |M[i, b, c] − M[j, b, c]|)."
        raise ExerciseError(f"your features are off by up to {error:.3g}.{hint}")
    print("check_minibatch_features: correct, identical examples included.")


def check_gaussian_frechet(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], float],
) -> None:
    """Check ``fn(mean_a, cov_a, mean_b, cov_b)``: the squared Fréchet distance of two Gaussians.

    means (d,), covariances (d, d), symmetric positive definite. Return
    ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a^½ Σ_b Σ_a^½)^½), one number.
    """
    g = _generator(4)
    d = 4
    A = torch.randn(d, d, generator=g, dtype=torch.float64)
    B = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov_a, cov_b = A @ A.T + 0.1 * torch.eye(d), B @ B.T + 0.1 * torch.eye(d)
    mean_a = torch.randn(d, generator=g, dtype=torch.float64)
    mean_b = torch.randn(d, generator=g, dtype=torch.float64)

    def sqrt_psd(S: torch.Tensor) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(S)
        return (vectors * values.clamp_min(0).sqrt()) @ vectors.T

    def reference(ma, ca, mb, cb) -> float:
        root = sqrt_psd(ca)
        middle = sqrt_psd(root @ cb @ root)
        return float((ma - mb).pow(2).sum() + torch.trace(ca + cb - 2 * middle))

    cases = [
        ("two different Gaussians", (mean_a, cov_a, mean_b, cov_b)),
        ("a Gaussian and itself", (mean_a, cov_a, mean_a, cov_a)),
        ("equal covariances", (mean_a, cov_a, mean_b, cov_a)),
    ]
    for name, args in cases:
        got = _scalar(_call(fn, *(t.clone() for t in args)), "your distance")
        if not math.isfinite(got):
            raise ExerciseError(
                f"for {name} your distance is {got}: a square root of a negative number. "
                "Tensor.sqrt() takes the root of each entry, and covariances have negative "
                "entries; a matrix square root goes through the eigendecomposition (clamp "
                "eigenvalues that rounding made slightly negative)."
            )
        expected = reference(*args)
        if abs(got - expected) <= 1e-6 * (1 + abs(expected)):
            continue
        ma, ca, mb, cb = args
        mean_term = float((ma - mb).pow(2).sum())
        root_a, root_b = sqrt_psd(ca), sqrt_psd(cb)
        middle = sqrt_psd(root_a @ cb @ root_a)
        mistakes = [
            (
                mean_term if name != "equal covariances" else None,
                " Only the means count in your answer; add the covariance term.",
            ),
            (expected**0.5, " Return the squared distance (no final square root), as FID does."),
            (
                mean_term**0.5 + float(torch.trace(ca + cb - 2 * middle)),
                " The mean term is the squared distance ‖μ_a − μ_b‖², not the distance.",
            ),
            (
                mean_term + float(torch.trace(ca + cb - middle)),
                " The cross term is missing its factor 2.",
            ),
            (
                mean_term + float(torch.trace(ca + cb - 2 * root_a @ cb @ root_a)),
                " Σ_a^½ Σ_b Σ_a^½ needs its own square root before the trace.",
            ),
            (
                mean_term + float(torch.trace(ca + cb - 2 * root_a @ root_b)),
                " Σ_a^½ Σ_b^½ equals (Σ_a^½ Σ_b Σ_a^½)^½ only when the two covariances "
                "commute, and here they do not.",
            ),
            (
                mean_term + float(torch.trace(ca + cb - 2 * sqrt_psd(ca @ cb))),
                " Σ_a Σ_b is not symmetric, so an eigh-based square root of it is wrong; "
                "the symmetric product Σ_a^½ Σ_b Σ_a^½ has the same trace of square root.",
            ),
            (
                mean_term + float(torch.trace(ca + cb + 2 * middle)),
                " The trace term subtracts twice the square root; you added it.",
            ),
        ]
        hint = next(
            (
                text
                for value, text in mistakes
                if value is not None and abs(got - value) < 1e-4 * (1 + abs(value))
            ),
            " Check the mean term, then each part of the trace term.",
        )
        raise ExerciseError(
            f"for {name} your distance is {got:.6g}, expected {expected:.6g}.{hint}"
        )
    print("check_gaussian_frechet: correct, including a Gaussian against itself (0).")


D_STEP_RUNS = ((1, "minimax"), (10, "minimax"), (10, "non_saturating"))


def check_d_steps(fn: Callable, seed: int = 0) -> None:
    """Check ``fn(x, d_steps, loss, seed)``: a GAN trained with d_steps D-updates per G-update.

    ``fn`` trains a small GAN on the 1-D data ``x`` (2000, 1), drawn from N(6, 0.5²),
    with ``d_steps`` discriminator updates per generator update and the generator loss
    ``loss`` ("minimax" or "non_saturating"), for a fixed number of generator updates,
    seeded by ``seed``; it returns ``{"w1": ..., "d_fake": ...}``: the 1-D Wasserstein
    distance between 2000 samples and ``x``, and the mean of D(G(z)) over 2000 samples,
    at the end. The check runs the minimax loss with 1 and 10 discriminator steps and
    the non-saturating loss with 10, and judges what it measured: a stronger
    discriminator starves the minimax generator of gradient, not the non-saturating one.
    """
    x = 6 + 0.5 * torch.randn(2000, 1, generator=_generator(seed))
    runs, shown = _sweep(
        fn,
        D_STEP_RUNS,
        lambda run: (x.clone(), *run, seed),
        ("w1", "d_fake"),
        lambda run: f"d_steps={run[0]}, loss={run[1]!r}",
        lambda run, r: f"{run[1]}, d_steps={run[0]}: W1 {r['w1']:.2f}, D(G(z)) {r['d_fake']:.2f}",
    )
    one, many, fixed = (runs[key] for key in D_STEP_RUNS)
    if not all(0 <= r["d_fake"] <= 1 for r in runs.values()):
        raise ExerciseError(
            f"you measured {shown}: D(G(z)) is a probability, in [0, 1]. Apply the sigmoid "
            "to the discriminator's logits before averaging."
        )
    if min(r["w1"] for r in runs.values()) < 0:
        raise ExerciseError(f"you measured {shown}: a Wasserstein distance is never negative.")
    if max(abs(one[key] - many[key]) for key in ("w1", "d_fake")) < 1e-9:
        raise ExerciseError(
            f"you measured {shown}: d_steps=1 and d_steps=10 give the same run, so your "
            "function does not pass d_steps to the GAN."
        )
    if abs(many["w1"] - fixed["w1"]) < 1e-9 and abs(many["d_fake"] - fixed["d_fake"]) < 1e-9:
        raise ExerciseError(
            f"you measured {shown}: the two losses give the same run, so your function does "
            "not pass loss to the GAN."
        )
    if not many["d_fake"] < one["d_fake"]:
        raise ExerciseError(
            f"you measured {shown}: with 10 discriminator steps per generator step D should "
            "end up more sure that the samples are fake (a smaller D(G(z))) than with 1. "
            "Is d_steps the number of discriminator updates per generator update (not the "
            "other way round), and is the number of generator updates the same in every run?"
        )
    if not many["w1"] > one["w1"] + 0.1:
        raise ExerciseError(
            f"you measured {shown}: under the minimax loss a discriminator trained 10 times "
            "per generator step saturates, and log(1 - D(G(z))) then has almost no gradient, "
            "so the generator should end further from the data than with 1 step. Use the "
            "same number of generator updates in every run, and measure W1 on fresh samples."
        )
    if not fixed["w1"] < many["w1"] - 0.1:
        raise ExerciseError(
            f"you measured {shown}: the non-saturating loss should keep the generator moving "
            "when D wins, and end closer to the data than the minimax loss with the same 10 "
            "steps. Does your function use the loss it is given for the generator?"
        )
    print(f"check_d_steps: correct; {shown}.")
