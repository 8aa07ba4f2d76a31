"""Checks for the VAE chapter's programming exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.exercises._common import (
    ExerciseError,
    _as_tensor,
    _bars,
    _call,
    _close,
    _generator,
    _shape,
    _sweep,
)


def check_gaussian_kl(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(mu, logvar)``: KL(N(μ, diag σ²) ‖ N(0, I)) per example, (B,).

    mu and logvar (B, L); logvar holds log σ², the log of the variance.
    """
    g = _generator(0)
    B, L = 6, 4
    mu = torch.randn(B, L, generator=g, dtype=torch.float64)
    logvar = torch.randn(B, L, generator=g, dtype=torch.float64)
    got = _as_tensor(_call(fn, mu.clone(), logvar.clone()), "your KL")
    hint = " Sum over the latent dimensions (dim=1)." if got.shape == (B, L) else ""
    _shape(got, (B,), "your KL", hint)

    def kl(mu, var, logvar):
        return 0.5 * (mu.pow(2) + var - 1 - logvar).sum(1)

    expected = kl(mu, logvar.exp(), logvar)
    if not _close(got, expected):
        error = (got - expected).abs().max().item()
        if _close(got, 2 * expected):
            hint = " It is twice the right value: the formula has a factor 1/2."
        elif _close(got, -expected):
            hint = " It has the wrong sign; a KL divergence is never negative."
        elif _close(got, kl(mu, logvar.exp().sqrt(), 0.5 * logvar)):
            hint = " You used σ where σ² belongs: exp(logvar) is already the variance."
        elif _close(got, kl(mu, logvar, logvar.abs().log())):
            hint = " logvar is log σ²: the variance is logvar.exp(), not logvar."
        elif _close(got, expected / L):
            hint = " You averaged over the latent dimensions; the KL of independent ones adds."
        else:
            hint = (
                " Check each term of the closed form of the exercise above (the mean term, "
                "the variance, the log-variance and the constant) and the factor in front."
            )
        raise ExerciseError(f"your KL is off by up to {error:.3g}.{hint}")
    print("check_gaussian_kl: correct.")


def check_reparameterize(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Check ``fn(mu, logvar, eps)``: z = μ + σ ⊙ ε, (B, L), differentiable in μ and logvar."""
    g = _generator(1)
    B, L = 5, 3
    mu = torch.randn(B, L, generator=g, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(B, L, generator=g, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(B, L, generator=g, dtype=torch.float64)
    out = _call(fn, mu, logvar, eps.clone())
    if isinstance(out, torch.Tensor) and (mu.grad is not None or logvar.grad is not None):
        raise ExerciseError(
            "your function calls backward() itself; return the sample and let the caller "
            "differentiate the loss built from it."
        )
    got = _as_tensor(out, "your sample")
    _shape(got, (B, L), "your sample")
    with torch.no_grad():
        expected = mu + (0.5 * logvar).exp() * eps
        if not _close(got, expected):
            error = (got - expected).abs().max().item()
            if _close(got, mu + logvar.exp() * eps):
                hint = " You scaled ε by the variance; scale it by σ = exp(logvar / 2)."
            elif _close(got, mu + logvar * eps):
                hint = " logvar is log σ², not σ: turn it into a standard deviation first."
            elif _close(got, mu + (0.5 * logvar).exp()):
                hint = " You left out ε: the noise is what makes z a sample."
            elif _close(got, mu + (-0.5 * logvar).exp() * eps):
                hint = " You divided ε by σ; the sample scales the noise by σ."
            else:
                hint = " Scale the standard normal noise by σ and shift it by μ."
            raise ExerciseError(f"your sample is off by up to {error:.3g}.{hint}")
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise ExerciseError(
            "your sample carries no gradient to mu and logvar; build it from them with torch "
            "operations (no .detach(), no torch.no_grad(), no conversion to numpy)."
        )
    _call(lambda: out.sum().backward())
    if mu.grad is None or logvar.grad is None:
        raise ExerciseError("the gradient does not reach both mu and logvar.")
    print("check_reparameterize: correct, and gradients reach mu and logvar.")


def check_iwae_bound(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(log_weights)``: L_k = log (1/k) Σ_s exp(log w_s) per example.

    log_weights (k, B) holds log p(x, z_s) − log q(z_s | x) for k samples of
    each of B examples; they are around −1000, so exp() underflows to 0.
    """
    g = _generator(2)
    k, B = 50, 4
    log_weights = -1000 + 5 * torch.randn(k, B, generator=g, dtype=torch.float64)
    got = _as_tensor(_call(fn, log_weights.clone()), "your bound")
    hint = " It looks transposed; the samples are along dim 0." if got.shape == (k,) else ""
    _shape(got, (B,), "your bound", hint)
    if not torch.isfinite(got).all():
        raise ExerciseError(
            "your bound is -inf or NaN: exp(-1000) underflows to 0 even in float64, so the "
            "average of the weights is 0 and its log −inf. Use the log-sum-exp trick: take "
            "out each example's largest log-weight before exponentiating, add it back after "
            "the log."
        )
    expected = torch.logsumexp(log_weights, 0) - math.log(k)
    if not _close(got, expected, 1e-9):
        error = (got - expected).abs().max().item()
        if _close(got, expected + math.log(k), 1e-9):
            hint = " It is too large by log k: the average divides by k (subtract log k)."
        elif _close(got, log_weights.mean(0), 1e-9):
            hint = (
                " That is the mean of the log-weights, the ordinary ELBO estimate; the bound "
                "averages the weights first and takes the log after."
            )
        elif _close(got, log_weights.max(0).values, 1e-9):
            hint = (
                " That is the largest log-weight alone: after taking it out, add back the log "
                "of the average of the exponentials of what is left."
            )
        else:
            hint = (
                " The bound is the log of the average over the k samples of the weights "
                "exp(log w_s), per example."
            )
        raise ExerciseError(f"your bound is off by up to {error:.3g}.{hint}")
    print("check_iwae_bound: correct and stable.")


def check_gaussian_log_likelihood(
    fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
) -> None:
    """Check ``fn(x, mean, logvar)``: log N(x; mean, σ² I) per example, (B,); logvar a float."""
    g = _generator(3)
    B, D = 5, 8
    x = torch.rand(B, D, generator=g, dtype=torch.float64)
    mean = torch.rand(B, D, generator=g, dtype=torch.float64)
    logvar = -1.5
    got = _as_tensor(_call(fn, x.clone(), mean.clone(), logvar), "your log-likelihood")
    _shape(got, (B,), "your log-likelihood", " Sum over the pixels, one value per example.")
    sq = (x - mean).pow(2).sum(1)

    def log_lik(var: float, constant: bool = True) -> torch.Tensor:
        c = -0.5 * D * math.log(2 * math.pi * var) if constant else 0.0
        return -0.5 * sq / var + c

    expected = log_lik(math.exp(logvar))
    if not _close(got, expected):
        error = (got - expected).abs().max().item()
        if _close(got, log_lik(math.exp(logvar), constant=False)):
            hint = (
                " You left out the normalising constant −(D/2) log(2πσ²); it does not change "
                "the gradient in the mean, but it does change the value and the gradient in σ."
            )
        elif _close(got, log_lik(math.exp(0.5 * logvar))):
            hint = " You used σ where σ² belongs: the variance is exp(logvar)."
        elif _close(got, -expected):
            hint = " It has the wrong sign: return the log-likelihood, not the loss."
        elif _close(got, expected / D):
            hint = " You averaged over the pixels; the log-density of independent pixels adds."
        else:
            hint = (
                " Check both terms: the squared error over 2σ², and the normalising "
                "constant, with σ² = exp(logvar)."
            )
        raise ExerciseError(f"your log-likelihood is off by up to {error:.3g}.{hint}")
    print("check_gaussian_log_likelihood: correct.")


def check_score_function_gradient(
    fn: Callable[[Callable, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Check ``fn(f, mu, sigma, eps)``: the score-function estimate of ∂/∂μ E[f(z)].

    z = μ + σ ε for the given standard normal draws eps (S,), with scalar
    tensors mu, sigma; f maps a tensor of z values to a tensor of f values and
    gives no gradient. Return the scalar average of f(z) ∂ log q(z)/∂μ over
    the S draws.
    """
    g = _generator(4)
    mu, sigma = torch.tensor(0.5, dtype=torch.float64), torch.tensor(1.5, dtype=torch.float64)
    eps = torch.randn(1000, generator=g, dtype=torch.float64)

    def f(z: torch.Tensor) -> torch.Tensor:
        return (z.detach() - 3) ** 2

    got = _as_tensor(_call(fn, f, mu.clone(), sigma.clone(), eps.clone()), "your estimate")
    if got.numel() != 1:
        raise ExerciseError(
            f"your estimate has shape {tuple(got.shape)}; average over the draws to one number."
        )
    z = mu + sigma * eps
    expected = (f(z) * (z - mu) / sigma**2).mean()
    if not _close(got.reshape(()), expected):
        value = got.item()
        if abs(value - (f(z) * (z - mu) / sigma).mean().item()) < 1e-6 * (1 + abs(value)):
            hint = " ∂ log q/∂μ = (z − μ)/σ²: you divided by σ only."
        elif abs(value - (2 * (z - 3)).mean().item()) < 1e-6 * (1 + abs(value)):
            hint = (
                " That is the reparameterisation (pathwise) gradient, using f's slope; the "
                "score-function estimator uses only f's values, times ∂ log q/∂μ."
            )
        elif abs(value - ((z - mu) / sigma**2).mean().item()) < 1e-6 * (1 + abs(value)):
            hint = " You averaged the score alone; each draw's score is weighted by f(z)."
        elif abs(value + expected.item()) < 1e-6 * (1 + abs(value)):
            hint = " It has the wrong sign: check the derivative of log q in μ."
        else:
            hint = (
                " The estimator averages f(z) times the score ∂ log q(z)/∂μ over the draws; "
                "check the score of a Gaussian in its mean."
            )
        raise ExerciseError(f"your estimate is {value:.5g}, expected {expected.item():.5g}.{hint}")
    print(
        f"check_score_function_gradient: correct ({expected.item():.3f}; the exact gradient "
        f"is 2(μ − 3) = {2 * (mu.item() - 3):.3f})."
    )


def check_active_units(fn: Callable[[torch.Tensor], int]) -> None:
    """Check ``fn(means)``: how many latent dimensions are active, as in Burda et al. (2016).

    means (N, L) holds the encoder means E_q[z | x_n] of N examples; dimension
    j is active when the variance over the examples of its mean exceeds 0.01.
    """
    g = _generator(5)
    N = 400
    scales = torch.tensor([1.0, 0.5, 0.2, 0.05, 0.08, 0.001, 0.3, 0.0, 0.15], dtype=torch.float64)
    means = torch.randn(N, len(scales), generator=g, dtype=torch.float64) * scales + 2.0
    got = _as_tensor(_call(fn, means.clone()), "your count")
    if got.numel() != 1:
        raise ExerciseError(
            f"your count has shape {tuple(got.shape)}; return one number, the count of "
            "active dimensions (sum the boolean mask)."
        )
    got = got.item()
    variances = means.var(0)
    expected = int((variances > 0.01).sum())
    if got != expected:
        if got == int((means.std(0) > 0.01).sum()):
            hint = " You compared the standard deviation with 0.01; the criterion is the variance."
        elif got == int((means.var(1) > 0.01).sum()):
            hint = " You took the variance across dimensions; take it across examples (dim 0)."
        elif got == len(scales) - expected:
            hint = " You counted the inactive dimensions."
        else:
            hint = (
                " A dimension is active when its encoder mean varies across the examples: "
                "variance over the N examples above 0.01."
            )
        raise ExerciseError(f"your count is {got:g}, expected {expected}.{hint}")
    print(f"check_active_units: correct ({expected} of {len(scales)} dimensions are active).")


BETAS = (0.25, 1.0, 4.0)


def check_beta_sweep(fn: Callable, seed: int = 0) -> None:
    """Check ``fn(x_train, x_test, beta, seed)``: rate and distortion of a trained β-VAE.

    ``fn`` trains a VAE with KL weight ``beta`` on the binary rows ``x_train`` (1000, 36),
    seeded by ``seed``, and returns ``{"rate": ..., "distortion": ...}`` measured on
    ``x_test``: the mean KL(q(z | x) ‖ p(z)) and the mean reconstruction term
    -E_q[log p(x | z)], in nats per image. The check runs β = 0.25, 1 and 4 on 6×6 images
    of random bars drawn from ``seed`` and judges the trade-off it measured: as β grows
    the rate falls (to almost nothing at β = 4) and the distortion rises.
    """
    x_train, x_test = _bars(1000, seed), _bars(1000, seed + 1000)
    runs, shown = _sweep(
        fn,
        BETAS,
        lambda beta: (x_train.clone(), x_test.clone(), beta, seed),
        ("rate", "distortion"),
        lambda beta: f"beta={beta}",
        lambda b, r: f"β = {b:g}: rate {r['rate']:.2f}, distortion {r['distortion']:.2f}",
    )
    rate = [runs[b]["rate"] for b in BETAS]
    distortion = [runs[b]["distortion"] for b in BETAS]
    if min(rate) < -1e-6 or min(distortion) < -1e-6:
        raise ExerciseError(
            f"your measurements ({shown}) include a negative number; a KL divergence and a "
            "negative log-likelihood of binary pixels are never negative. Check the signs."
        )
    if max(rate) - min(rate) < 1e-6 and max(distortion) - min(distortion) < 1e-6:
        raise ExerciseError(
            f"your measurements are the same for every β ({shown}): your function does not "
            "pass beta to the model it trains."
        )
    if rate[0] < rate[-1] and distortion[0] > distortion[-1]:
        raise ExerciseError(
            f"you measured {shown}: the rate rises with β and the distortion falls, the "
            "opposite of the trade-off. Either β weighs the reconstruction term instead of "
            "the KL, or the two numbers are swapped."
        )
    if not (rate[0] > rate[1] > rate[2]) or rate[2] > 0.5 * rate[1]:
        raise ExerciseError(
            f"you measured {shown}; a larger β should buy a smaller rate at every step, and "
            "β = 4 should leave under half the rate of β = 1. Measure the KL on x_test after "
            "training, with the model in eval mode, and train each β from scratch."
        )
    if not distortion[0] < distortion[2]:
        raise ExerciseError(
            f"you measured {shown}; the distortion should grow with β, as the code carries "
            "less about x. Is 'distortion' the reconstruction term, -E_q[log p(x | z)]?"
        )
    print(f"check_beta_sweep: correct; {shown}. Each step up in β trades rate for distortion.")
