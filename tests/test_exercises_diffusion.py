"""The diffusion chapter's exercise checks accept correct answers and explain wrong ones."""

import functools

import pytest
import torch

from companion.data.synthetic import grid_centers
from companion.exercises import (
    ExerciseError,
    check_annealing_range,
    check_ddim_step,
    check_dsm_loss,
    check_q_sample,
    check_reverse_step,
)
from companion.models.score import annealed_langevin_sample, geometric_sigmas, mixture_score


def _rejects(check, answer, message):
    with pytest.raises(ExerciseError, match=message):
        check(answer)


def q_sample(x0, t, noise, alpha_bars):
    a = alpha_bars[t][:, None]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda x0, t, n, ab: ab[t][:, None] * x0 + (1 - ab[t][:, None]) * n, "take roots"),
        (lambda x0, t, n, ab: q_sample(x0, t - 1, n, ab), "already the product"),
        (
            lambda x0, t, n, ab: ab[t][:, None].sqrt() * x0 + (1 - ab[t][:, None].sqrt()) * n,
            "not 1 − √ᾱ_t",
        ),
        (lambda x0, t, n, ab: q_sample(x0, t, n, ab)[:-1], "expected"),
    ],
)
def test_q_sample(answer, message, capsys):
    check_q_sample(q_sample)
    assert "correct" in capsys.readouterr().out
    _rejects(check_q_sample, answer, message)


def dsm(scores, x, x_noisy, sigma):
    return 0.5 * ((scores - (x - x_noisy) / sigma**2) ** 2).sum(1).mean()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda s, x, xn, sg: dsm(s, xn, x, sg), "back to the clean one"),
        (lambda s, x, xn, sg: 0.5 * ((s - (x - xn) / sg) ** 2).sum(1).mean(), "not σ"),
        (lambda s, x, xn, sg: 0.5 * ((s - (x - xn) / sg**2) ** 2).mean(), "Sum the squares"),
        (lambda s, x, xn, sg: 2 * dsm(s, x, xn, sg), "factor ½"),
        (lambda s, x, xn, sg: 0.5 * ((s - (x - xn) / sg**2) ** 2).sum(1), "one number"),
    ],
)
def test_dsm_loss(answer, message, capsys):
    check_dsm_loss(dsm)
    assert "correct" in capsys.readouterr().out
    _rejects(check_dsm_loss, answer, message)


def _mean(x, t, eps, betas):
    alpha_bars = (1 - betas).cumprod(0)
    return (x - betas[t] / (1 - alpha_bars[t]).sqrt() * eps) / (1 - betas[t]).sqrt()


def _tilde(t, betas):
    alpha_bars = (1 - betas).cumprod(0)
    return (1 - alpha_bars[t - 1]) / (1 - alpha_bars[t]) * betas[t]


def reverse_step(x, t, eps, z, betas):
    noise = _tilde(t, betas).sqrt() * z if t > 1 else 0
    return _mean(x, t, eps, betas) + noise


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda x, t, e, z, b: _mean(x, t, e, b) + b[t].sqrt() * z, "not β_t"),
        (lambda x, t, e, z, b: _mean(x, t, e, b), "Add σ_t z"),
    ],
)
def test_reverse_step(answer, message, capsys):
    check_reverse_step(reverse_step)
    assert "correct" in capsys.readouterr().out
    _rejects(check_reverse_step, answer, message)


def ddim_step(x, t, t_prev, eps, alpha_bars):
    a, ap = alpha_bars[t], alpha_bars[t_prev]
    x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
    return ap.sqrt() * x0 + (1 - ap).sqrt() * eps


def _x0(x, t, eps, ab):
    return (x - (1 - ab[t]).sqrt() * eps) / ab[t].sqrt()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda x, t, tp, e, ab: ab[tp].sqrt() * _x0(x, t, e, ab), "direction term"),
        (lambda x, t, tp, e, ab: _x0(x, t, e, ab), "not the estimate"),
        (lambda x, t, tp, e, ab: ddim_step(x, t, tp, e, ab) + 1, "then √ᾱ"),
    ],
)
def test_ddim_step(answer, message, capsys):
    check_ddim_step(ddim_step)
    assert "correct" in capsys.readouterr().out
    _rejects(check_ddim_step, answer, message)


# The "modify and compare" exercise: annealed Langevin on the grid from several sigma_max.
# The reference run is the notebook's solution, written out here again; runs are cached.

ANSWER_LINES = ("geometric_sigmas(", "mixture_score(", "annealed_langevin_sample(", ".std()")


@functools.cache
def grid_counts(sigma_max, seed, reverse=False):
    g = torch.Generator().manual_seed(seed)
    centres = grid_centers().double()
    start = 4 * torch.randn(1000, 2, generator=g, dtype=torch.float64)
    sigmas = geometric_sigmas(sigma_max, 0.05, 10)
    if reverse:
        sigmas = sigmas.flip(0)
    x = annealed_langevin_sample(
        lambda y, s: mixture_score(y, centres, 0.05**2 + s**2),
        start,
        sigmas,
        eps=1e-3,
        steps_per_level=20,
        generator=g,
    )
    return torch.cdist(x, centres).argmin(1).bincount(minlength=25).double()


def grid_spread(sigma_max, seed):
    return {"spread": grid_counts(sigma_max, seed).std().item()}


def _refusal(answer, seed=0):
    with pytest.raises(ExerciseError) as info:
        check_annealing_range(answer, seed=seed)
    message = str(info.value)
    assert [line for line in ANSWER_LINES if line in message] == [], message
    return message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_annealing_range_passes_a_correct_run_whatever_the_seed(seed, capsys):
    check_annealing_range(grid_spread, seed=seed)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda s, seed: grid_spread(3.0, seed), "does not pass sigma_max"),
        (lambda s, seed: {"spread": grid_counts(s, seed, reverse=True).std().item()}, "decrease"),
        (lambda s, seed: {"spread": grid_counts(s, seed).var().item()}, "not their variance"),
        (lambda s, seed: {"spread": -grid_counts(s, seed).std().item()}, "never negative"),
        (lambda s, seed: grid_counts(s, seed).std().item(), "return a dict"),
    ],
)
def test_annealing_range_refuses_typical_wrong_runs(answer, message):
    assert message in _refusal(answer)
