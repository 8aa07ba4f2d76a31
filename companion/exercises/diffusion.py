"""Checks for the diffusion chapter's programming exercises.

Schedules are passed as tensors indexed by the step, with entry 0 for the data:
``betas`` (T + 1,) with betas[0] = 0, ``alpha_bars`` (T + 1,) with alpha_bars[0] = 1.
The references below are written out here, independently of ``companion.models``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._common import (
    ExerciseError,
    _as_tensor,
    _call,
    _close,
    _generator,
    _sweep,
)

D64 = torch.float64


def _schedule(T: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    betas = torch.cat([torch.zeros(1, dtype=D64), torch.linspace(0.01, 0.3, T, dtype=D64)])
    return betas, torch.cumprod(1 - betas, 0)


def _answer(value, expected: torch.Tensor, what: str) -> torch.Tensor:
    got = _as_tensor(value, what)
    if got.shape != expected.shape:
        raise ExerciseError(
            f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}: one row "
            "per example, as x_t."
        )
    return got


def _off(got: torch.Tensor, expected: torch.Tensor) -> str:
    return f"off by up to {(got - expected).abs().max().item():.3g}"


def check_q_sample(fn: Callable) -> None:
    """Check ``fn(x0, t, noise, alpha_bars)``: a draw of x_t from q(x_t | x_0) with the given
    noise, √ᾱ_t x0 + √(1 − ᾱ_t) noise. x0 and noise (B, d), t (B,) int64 in 1..T."""
    g = _generator(0)
    _, alpha_bars = _schedule()
    x0 = torch.randn(6, 3, generator=g, dtype=D64)
    noise = torch.randn(6, 3, generator=g, dtype=D64)
    t = torch.tensor([1, 2, 5, 10, 19, 20])
    a = alpha_bars[t][:, None]
    expected = a.sqrt() * x0 + (1 - a).sqrt() * noise
    got = _answer(_call(fn, x0.clone(), t.clone(), noise.clone(), alpha_bars.clone()), expected,
                  "your x_t")  # fmt: skip
    if _close(got, expected):
        print("check_q_sample: correct.")
        return
    if _close(got, a * x0 + (1 - a) * noise):
        hint = " You used ᾱ_t and 1 − ᾱ_t as the scales: they are the variances; take roots."
    elif _close(got, alpha_bars[t - 1][:, None].sqrt() * x0
                 + (1 - alpha_bars[t - 1][:, None]).sqrt() * noise):  # fmt: skip
        hint = " You took ᾱ_{t−1}: alpha_bars[t] is already the product up to step t."
    elif _close(got, a.sqrt() * x0 + (1 - a.sqrt()) * noise):
        hint = " The noise scale is √(1 − ᾱ_t), not 1 − √ᾱ_t: the variances must add to 1."
    else:
        hint = " x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, with ᾱ_t = alpha_bars[t] for each example."
    raise ExerciseError(f"your x_t is {_off(got, expected)}.{hint}")


def check_dsm_loss(fn: Callable) -> None:
    """Check ``fn(scores, x, x_noisy, sigma)``: the denoising score matching loss, one number.

    scores (B, d) are a model's s(x̃) at the noisy points x̃ = x_noisy (B, d) made from the
    clean x (B, d) with noise of std sigma. Return the mean over the batch of
    ½ ‖s(x̃) − (x − x̃)/σ²‖², the squared norm summed over the d coordinates.
    """
    g = _generator(1)
    sigma = 0.5
    x = torch.randn(8, 2, generator=g, dtype=D64)
    x_noisy = x + sigma * torch.randn(8, 2, generator=g, dtype=D64)
    scores = torch.randn(8, 2, generator=g, dtype=D64)

    def reference(target):
        return 0.5 * ((scores - target) ** 2).sum(1).mean()

    expected = reference((x - x_noisy) / sigma**2)
    value = _call(fn, scores.clone(), x.clone(), x_noisy.clone(), sigma)
    got = _as_tensor(value, "your loss")
    if got.numel() != 1:
        raise ExerciseError(f"your loss has shape {tuple(got.shape)}; return one number.")
    got = got.reshape(())
    if _close(got, expected):
        print("check_dsm_loss: correct.")
        return
    if _close(got, reference((x_noisy - x) / sigma**2)):
        hint = " The target points from the noisy point back to the clean one: (x − x̃)/σ²."
    elif _close(got, reference((x - x_noisy) / sigma)):
        hint = " Divide by σ², not σ: ∇ log N(x̃; x, σ²I) = (x − x̃)/σ²."
    elif _close(got, expected / 2) or _close(
        got, 0.5 * ((scores - (x - x_noisy) / sigma**2) ** 2).mean()
    ):
        hint = " Sum the squares over the coordinates, then average over the batch."
    elif _close(got, 2 * expected):
        hint = " Keep the factor ½."
    else:
        hint = " Loss = mean over examples of ½‖s(x̃) − (x − x̃)/σ²‖²."
    raise ExerciseError(f"your loss is {got.item():.6g}, expected {expected.item():.6g}.{hint}")


def check_reverse_step(fn: Callable) -> None:
    """Check ``fn(x_t, t, eps_hat, z, betas)``: one ancestral DDPM step x_t -> x_{t−1}.

    x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε̂)/√α_t + σ_t z with σ_t² = β̃_t =
    (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t (zero at t = 1, where the step returns the mean).
    t is one int for the whole batch; x_t, eps_hat and z are (B, d).
    """
    g = _generator(2)
    betas, alpha_bars = _schedule()
    for t in (7, 1):
        x = torch.randn(5, 2, generator=g, dtype=D64)
        eps = torch.randn(5, 2, generator=g, dtype=D64)
        z = torch.randn(5, 2, generator=g, dtype=D64)
        beta, a, a_prev = betas[t], alpha_bars[t], alpha_bars[t - 1]
        mean = (x - beta / (1 - a).sqrt() * eps) / (1 - beta).sqrt()
        tilde = (1 - a_prev) / (1 - a) * beta
        expected = mean + (tilde.sqrt() * z if t > 1 else 0)
        got = _answer(_call(fn, x.clone(), t, eps.clone(), z.clone(), betas.clone()), expected,
                      "your x_{t-1}")  # fmt: skip
        if _close(got, expected):
            continue
        if _close(got, mean + beta.sqrt() * z):
            hint = " The noise variance asked for is β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t) β_t, not β_t."
        elif _close(got, mean):
            hint = " Add σ_t z, with σ_t² = β̃_t."
        elif _close(got, x - beta / (1 - a).sqrt() * eps + tilde.sqrt() * z):
            hint = " Divide the mean by √α_t."
        else:
            hint = " μ = (x_t − β_t ε̂/√(1 − ᾱ_t))/√α_t with ᾱ_t = ∏_{s≤t}(1 − β_s)."
        raise ExerciseError(f"at t={t} your x_(t-1) is {_off(got, expected)}.{hint}")
    print("check_reverse_step: correct, at t > 1 and at t = 1.")


def check_ddim_step(fn: Callable) -> None:
    """Check ``fn(x_t, t, t_prev, eps_hat, alpha_bars)``: one deterministic DDIM step (η = 0)
    from level t to an earlier level t_prev (0 = the data): √ᾱ_{t'} x̂₀ + √(1 − ᾱ_{t'}) ε̂,
    x̂₀ = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t. t and t_prev are ints; x_t, eps_hat are (B, d)."""
    g = _generator(3)
    _, alpha_bars = _schedule()
    for t, t_prev in ((20, 15), (6, 0)):
        x = torch.randn(5, 2, generator=g, dtype=D64)
        eps = torch.randn(5, 2, generator=g, dtype=D64)
        a, ap = alpha_bars[t], alpha_bars[t_prev]
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        expected = ap.sqrt() * x0 + (1 - ap).sqrt() * eps
        got = _answer(_call(fn, x.clone(), t, t_prev, eps.clone(), alpha_bars.clone()),
                      expected, "your x_(t_prev)")  # fmt: skip
        if _close(got, expected):
            continue
        if _close(got, ap.sqrt() * x0):
            hint = " Keep the direction term √(1 − ᾱ_{t'}) ε̂: it puts back the noise of level t'."
        elif _close(got, x0):
            hint = " Return x at level t_prev, not the estimate of x_0."
        else:
            hint = " x̂₀ = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t, then √ᾱ_{t'} x̂₀ + √(1 − ᾱ_{t'}) ε̂."
        raise ExerciseError(f"from t={t} to {t_prev} your step is {_off(got, expected)}.{hint}")
    print("check_ddim_step: correct, including the last step to the data.")


ANNEALING_RUNS = (0.1, 1.0, 3.0)  # sigma_max; the grid's modes are 2 apart, sigma_min = 0.05
N_CHAINS, N_MODES = 1000, 25


def check_annealing_range(fn: Callable, seed: int = 0) -> None:
    """Check ``fn(sigma_max, seed)``: annealed Langevin on the 25-mode grid, from ``sigma_max``.

    ``fn`` starts 1000 chains at 4·N(0, I) drawn with ``seed``, runs annealed Langevin
    dynamics with the exact score of the grid blurred by each level, on geometric levels
    from ``sigma_max`` down to 0.05, and returns ``{"spread": ...}``: the standard deviation
    over the 25 modes of the number of chains that end nearest each centre. The check runs
    σ_max = 0.1, 1 and 3 and judges what it measured: only levels as large as the distance
    between modes let chains move between them, so the modes fill evenly (a spread near
    the binomial √(1000/25 · 24/25) ≈ 6.2) only when σ_max is large.
    """
    measured, shown = _sweep(
        fn,
        ANNEALING_RUNS,
        lambda s: (s, seed),
        ("spread",),
        lambda s: f"sigma_max={s}",
        lambda s, r: f"σ_max={s}: spread {r['spread']:.2f}",
    )
    runs = {s: r["spread"] for s, r in measured.items()}
    low, high = runs[ANNEALING_RUNS[0]], runs[ANNEALING_RUNS[-1]]
    binomial = (N_CHAINS / N_MODES * (1 - 1 / N_MODES)) ** 0.5
    if max(runs.values()) - min(runs.values()) < 1e-9:
        raise ExerciseError(
            f"you measured {shown}: every σ_max gives the same spread, so your function does "
            "not pass sigma_max to the sampler, or it measures the chains before they run."
        )
    if min(runs.values()) < 0:
        raise ExerciseError(f"you measured {shown}: a standard deviation is never negative.")
    if not high < 0.8 * low:
        raise ExerciseError(
            f"you measured {shown}: starting the annealing at a σ_max larger than the distance "
            "between modes should fill the 25 modes more evenly (a smaller spread) than starting "
            "near σ_min. Do the levels decrease from sigma_max to 0.05, is the score at level σ "
            "that of the grid blurred by σ, and does the step grow with σ²?"
        )
    if max(runs.values()) > 3 * binomial:
        raise ExerciseError(
            f"you measured {shown}: with {N_CHAINS} chains over {N_MODES} modes even chains that "
            f"never leave their first mode give a spread of about 10, and an even sampler about "
            f"{binomial:.1f}. Return the standard deviation of the counts per mode (not their "
            f"variance), over all {N_MODES} modes, for {N_CHAINS} chains."
        )
    print(f"check_annealing_range: correct; {shown}.")
