"""Diffusion models and score matching, against independent references.

* the closed-form forward marginal q(x_t | x_0) against the one-step chain iterated
  (an exact recursion for means and variances, and Monte Carlo draws);
* Gaussian data, where the exact score and noise predictor are known in closed form:
  samplers driven by them reproduce the data's mean and covariance within five Monte
  Carlo standard errors (DDPM, DDIM with all steps), the exact ULA stationary
  covariance (Langevin), or a stated discretisation tolerance (DDIM-50, annealed);
* the ELBO's per-step KL against ``torch.distributions`` with the posterior from Bayes'
  rule in the test;
* the DSM loss's minimiser on a 1-D Gaussian mixture against the true score of the
  noised density (finite differences of its log-density from scipy);
* DDIM with every step against the closed-form solution of the probability-flow ODE;
* bad inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from companion.data import make_ring
from companion.models import DDPM, MLPDenoiser, NoiseSchedule, UNet
from companion.models.diffusion import (
    cosine_betas,
    ddim_levels,
    linear_betas,
    sample_with,
    step_kl,
)
from companion.models.score import (
    NoiseConditionalScore,
    annealed_langevin_sample,
    dsm_loss,
    geometric_sigmas,
    langevin_sample,
    mixture_score,
)
from companion.models.unet import timestep_embedding
from companion.training import Trainer

D64 = torch.float64

# --------------------------------------------------------------------------- forward process


def chain_moments(betas: np.ndarray, t: int, x0: float) -> tuple[float, float]:
    """Mean and variance of x_t after t one-step kernels N(√(1-β) x, β), by recursion."""
    mean, var = x0, 0.0
    for beta in betas[:t]:
        mean, var = math.sqrt(1 - beta) * mean, (1 - beta) * var + beta
    return mean, var


@settings(max_examples=30, deadline=None)
@given(
    T=st.integers(2, 300),
    frac=st.floats(0.0, 1.0),
    kind=st.sampled_from(["linear", "cosine"]),
    x0=st.floats(-3, 3),
)
def test_marginal_equals_iterated_chain(T, frac, kind, x0):
    schedule = NoiseSchedule(T, kind)
    t = max(1, round(frac * T))
    mean, var = chain_moments(schedule.betas[1:].numpy(), t, x0)
    x = torch.tensor([[x0]], dtype=D64)
    tt = torch.tensor([t])
    got_mean = schedule.q_sample(x, tt, noise=torch.zeros_like(x)).item()
    got_std = schedule.q_sample(torch.zeros_like(x), tt, noise=torch.ones_like(x)).item()
    assert got_mean == pytest.approx(mean, rel=1e-9, abs=1e-12)
    assert got_std**2 == pytest.approx(var, rel=1e-9, abs=1e-12)


def test_marginal_draws_match_chain_draws():
    """Monte Carlo: 100 one-step draws in a row and one draw from q(x_100 | x_0) agree in
    mean and variance (within 5 standard errors), for data that is not standard normal."""
    schedule = NoiseSchedule(200, "linear")
    g = torch.Generator().manual_seed(0)
    n = 100_000
    x0 = 1.5 + 0.3 * torch.randn(n, 1, generator=g, dtype=D64)
    x = x0.clone()
    for t in range(1, 101):
        x = schedule.q_step(x, torch.full((n,), t), torch.randn(n, 1, generator=g, dtype=D64))
    y = schedule.q_sample(x0, torch.full((n,), 100), torch.randn(n, 1, generator=g, dtype=D64))
    se_mean = math.sqrt(float(y.var()) / n) * math.sqrt(2)
    assert abs(float(x.mean() - y.mean())) < 5 * se_mean
    se_var = float(y.var()) * math.sqrt(2 / (n - 1)) * math.sqrt(2)
    assert abs(float(x.var() - y.var())) < 5 * se_var


def test_cosine_schedule_follows_its_definition():
    T, s = 100, 0.008
    alpha_bar = NoiseSchedule(T, "cosine").alpha_bars.numpy()
    f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * np.pi / 2) ** 2
    np.testing.assert_allclose(alpha_bar[:-1], (f / f[0])[:-1], rtol=1e-10)  # last: β clipped


def test_linear_schedule_matches_ho_et_al_at_t_1000():
    betas = linear_betas(1000)
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    assert float(NoiseSchedule(1000).alpha_bars[-1]) < 1e-4  # x_T is nearly pure noise


@settings(max_examples=25, deadline=None)
@given(T=st.integers(2, 400), kind=st.sampled_from(["linear", "cosine"]))
def test_schedule_properties(T, kind):
    schedule = NoiseSchedule(T, kind)
    a = schedule.alpha_bars
    assert a[0] == 1 and bool((a[1:] < a[:-1]).all())  # strictly more noise each step
    beta, tilde = schedule.betas[1:], schedule.posterior_variance[1:]
    assert bool((tilde <= beta + 1e-15).all()) and tilde[0] == 0  # β̃ₜ ≤ βₜ, β̃₁ = 0


# --------------------------------------------------------------------------- Gaussian data

MU = torch.tensor([1.0, -0.5], dtype=D64)
LOWER = torch.tensor([[0.8, 0.0], [0.5, 0.4]], dtype=D64)
SIGMA = LOWER @ LOWER.T
EYE = torch.eye(2, dtype=D64)


def exact_eps(schedule: NoiseSchedule):
    """ε*(x_t, t) = −√(1 − ᾱ) ∇ log q_t(x_t), q_t = N(√ᾱ μ, ᾱ Σ + (1 − ᾱ) I)."""

    def eps(x, t):
        a = schedule.alpha_bars[t].reshape(-1, 1, 1)
        cov = a * SIGMA + (1 - a) * EYE
        r = x - a.reshape(-1, 1).sqrt() * MU
        return (1 - a.reshape(-1, 1)).sqrt() * torch.linalg.solve(cov, r.unsqueeze(-1)).squeeze(-1)

    return eps


def five_standard_errors(n: int) -> tuple[float, float]:
    """5 standard errors of the sample mean and of a sample covariance entry of N(μ, Σ)."""
    var = SIGMA.diagonal()
    se_mean = float(var.max().sqrt()) / math.sqrt(n)
    se_cov = float(torch.sqrt((SIGMA**2 + torch.outer(var, var)) / n).max())
    return 5 * se_mean, 5 * se_cov


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize(("method", "steps"), [("ddpm", None), ("ddim", None)])
def test_exact_noise_predictor_reproduces_gaussian(kind, method, steps):
    n = 20_000
    schedule = NoiseSchedule(1000, kind)
    g = torch.Generator().manual_seed(1)
    x = sample_with(exact_eps(schedule), schedule, (n, 2), method=method, steps=steps,
                    generator=g, dtype=D64)  # fmt: skip
    tol_mean, tol_cov = five_standard_errors(n)
    assert float((x.mean(0) - MU).abs().max()) < tol_mean
    assert float((torch.cov(x.T) - SIGMA).abs().max()) < tol_cov


def test_ddim_50_steps_close_to_gaussian():
    """DDIM with 50 of 1000 levels: the covariance is off by its discretisation error,
    measured at 0.03-0.05; tolerance 0.1 (and 5 standard errors for the mean)."""
    n = 20_000
    schedule = NoiseSchedule(1000, "linear")
    g = torch.Generator().manual_seed(1)
    x = sample_with(exact_eps(schedule), schedule, (n, 2), method="ddim", steps=50,
                    generator=g, dtype=D64)  # fmt: skip
    assert float((x.mean(0) - MU).abs().max()) < five_standard_errors(n)[0]
    assert float((torch.cov(x.T) - SIGMA).abs().max()) < 0.1


def gaussian_score(x, sigma=0.0):
    """∇ log N(x; μ, Σ + σ² I)."""
    return -torch.linalg.solve(SIGMA + sigma**2 * EYE, (x - MU).T).T


def test_langevin_reaches_the_exact_ula_stationary_law():
    """Unadjusted Langevin on a Gaussian has a Gaussian stationary law with covariance
    Σ (I − δ Σ⁻¹/4)⁻¹ (per eigenvalue λ: λ/(1 − δ/(4λ))); 3,000 steps from far away."""
    n, delta = 20_000, 0.02
    g = torch.Generator().manual_seed(2)
    x0 = 5 * torch.randn(n, 2, generator=g, dtype=D64)
    x = langevin_sample(gaussian_score, x0, step_size=delta, n_steps=3000, generator=g)
    stationary = SIGMA @ torch.linalg.inv(EYE - delta / 4 * torch.linalg.inv(SIGMA))
    tol_mean, tol_cov = five_standard_errors(n)
    assert float((x.mean(0) - MU).abs().max()) < tol_mean
    assert float((torch.cov(x.T) - stationary).abs().max()) < tol_cov


def test_annealed_langevin_reproduces_gaussian():
    """Annealed Langevin with the exact blurred scores, 10 levels from σ = 10 to 0.01 and
    the final Tweedie step: mean within 5 standard errors, covariance within 0.1 (the
    bias of finite step sizes, measured at about 0.07 with eps = 2e-5)."""
    n = 20_000
    g = torch.Generator().manual_seed(3)
    x0 = 10 * torch.randn(n, 2, generator=g, dtype=D64)
    x = annealed_langevin_sample(gaussian_score, x0, geometric_sigmas(10, 0.01, 10),
                                 eps=2e-5, steps_per_level=100, generator=g)  # fmt: skip
    assert float((x.mean(0) - MU).abs().max()) < five_standard_errors(n)[0]
    assert float((torch.cov(x.T) - SIGMA).abs().max()) < 0.1


# --------------------------------------------------------------------------- DDIM and the ODE


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_ddim_with_all_steps_matches_probability_flow_ode(kind):
    """In x̄ = x/√ᾱ and σ = √((1 − ᾱ)/ᾱ), the probability-flow ODE is dx̄/dσ = ε(x, t);
    for N(μ, Σ) data its solution is x̄(σ) − μ = (Σ + σ²I)^{1/2} (Σ + σ_T² I)^{-1/2}
    (x̄_T − μ). DDIM (η = 0) is Euler's method in σ: error O(1/steps)."""
    schedule = NoiseSchedule(1000, kind)
    x_T = torch.randn(200, 2, generator=torch.Generator().manual_seed(4), dtype=D64)
    a_T = schedule.alpha_bars[-1]
    sigma_T2 = float((1 - a_T) / a_T)
    evals, evecs = torch.linalg.eigh(SIGMA)
    transport = evecs @ torch.diag((evals / (evals + sigma_T2)).sqrt()) @ evecs.T
    expected = MU + (x_T / a_T.sqrt() - MU) @ transport.T
    eps = exact_eps(schedule)
    errors = {}
    for steps in (250, 1000):
        x = x_T.clone()
        levels = ddim_levels(1000, steps) + [0]
        for t, t_prev in zip(levels[:-1], levels[1:], strict=True):
            tt, tp = torch.full((200,), t), torch.full((200,), t_prev)
            x = schedule.ddim_step(x, tt, tp, eps(x, tt))
        errors[steps] = float((x - expected).abs().max())
    assert errors[1000] < 0.02
    assert errors[1000] < 0.5 * errors[250]  # converges as the steps shrink


# --------------------------------------------------------------------------- the ELBO's KL terms


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_step_kl_matches_torch_distributions(variance):
    schedule = NoiseSchedule(100, "cosine")
    g = torch.Generator().manual_seed(5)
    n = 64
    x0 = torch.randn(n, 3, generator=g, dtype=D64)
    t = torch.randint(2, 101, (n,), generator=g)
    xt = schedule.q_sample(x0, t, torch.randn(n, 3, generator=g, dtype=D64))
    eps_hat = torch.randn(n, 3, generator=g, dtype=D64)
    b, a = schedule.betas[t][:, None], schedule.alphas[t][:, None]
    a_prev = schedule.alpha_bars[t - 1][:, None]

    def bayes_posterior(x_start):  # q(x_t | x_{t-1}) q(x_{t-1} | x_0), normalised
        precision = a / b + 1 / (1 - a_prev)
        mean = (a.sqrt() * xt / b + a_prev.sqrt() * x_start / (1 - a_prev)) / precision
        return mean, 1 / precision

    q_mean, q_var = bayes_posterior(x0)
    a_bar = schedule.alpha_bars[t][:, None]
    x0_hat = (xt - (1 - a_bar).sqrt() * eps_hat) / a_bar.sqrt()
    p_mean = bayes_posterior(x0_hat)[0]
    p_var = q_var if variance == "posterior" else b.expand_as(q_var)
    q = torch.distributions.Normal(q_mean, q_var.sqrt())
    p = torch.distributions.Normal(p_mean, p_var.sqrt())
    expected = torch.distributions.kl_divergence(q, p).sum(1)
    got = step_kl(schedule, x0, xt, t, eps_hat, variance=variance)
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)


def test_reverse_mean_is_posterior_mean_at_predicted_x0():
    schedule = NoiseSchedule(50)
    g = torch.Generator().manual_seed(6)
    xt, eps = torch.randn(8, 2, generator=g, dtype=D64), torch.randn(8, 2, generator=g, dtype=D64)
    t = torch.arange(1, 9)
    x0_hat = schedule.predict_x0(xt, t, eps)
    torch.testing.assert_close(
        schedule.reverse_mean(xt, t, eps), schedule.posterior(x0_hat, xt, t)[0]
    )


# --------------------------------------------------------------------------- score matching


def test_dsm_minimiser_is_the_noised_score():
    """A score linear in 60 Gaussian bumps, fitted by minimising ``dsm_loss`` exactly (it is
    quadratic in the weights: solve Hessian · w = −gradient at 0), equals the score of
    the noised mixture, from scipy's log-density by central differences, on [-3, 3]."""
    weights, means, stds, sigma = [0.3, 0.7], [-1.5, 1.0], [0.4, 0.6], 0.5
    g = torch.Generator().manual_seed(7)
    n = 400_000
    comp = (torch.rand(n, generator=g) < weights[1]).long()
    z = torch.randn(n, generator=g, dtype=D64)
    x = (torch.tensor(means, dtype=D64)[comp] + torch.tensor(stds, dtype=D64)[comp] * z)[:, None]
    noise = torch.randn(n, 1, generator=g, dtype=D64)
    centres = torch.linspace(-5, 5, 60, dtype=D64)

    def features(y):
        return torch.exp(-((y - centres) ** 2) / (2 * 0.25**2))  # (B, 60)

    def loss(w):
        return dsm_loss(lambda y: features(y) @ w[:, None], x, sigma, noise=noise)

    w0 = torch.zeros(60, dtype=D64)
    hessian = torch.autograd.functional.hessian(loss, w0)
    gradient = torch.autograd.functional.jacobian(loss, w0)
    w = torch.linalg.solve(hessian + 1e-9 * torch.eye(60, dtype=D64), -gradient)

    grid = np.linspace(-3, 3, 61)

    def log_p(y):
        return np.log(sum(wk * stats.norm.pdf(y, m, math.hypot(s, sigma))
                          for wk, m, s in zip(weights, means, stds, strict=True)))  # fmt: skip

    h = 1e-5
    true_score = (log_p(grid + h) - log_p(grid - h)) / (2 * h)
    fitted = (features(torch.tensor(grid)[:, None]) @ w).numpy()
    assert np.abs(fitted - true_score).max() < 0.1, np.abs(fitted - true_score).max()


def test_mixture_score_matches_finite_differences():
    centres = torch.tensor([[0.0, 0.0], [2.0, 1.0], [-1.0, 2.0]], dtype=D64)
    x = torch.randn(10, 2, generator=torch.Generator().manual_seed(8), dtype=D64)
    var = 0.7

    def log_p(y):
        return torch.logsumexp(-((y[:, None] - centres) ** 2).sum(-1) / (2 * var), dim=1)

    expected = torch.autograd.functional.jacobian(lambda y: log_p(y).sum(), x)
    torch.testing.assert_close(mixture_score(x, centres, var), expected)


def test_noise_conditional_score_learns_ring():
    """Trained for a few hundred steps on the ring, the model's score at σ = 1 points
    the same way as the exact blurred score (mean cosine above 0.9)."""
    torch.manual_seed(0)
    data, _ = make_ring(4096, sigma=0.05, seed=0)
    sigmas = geometric_sigmas(1.0, 0.05, 6)
    model = NoiseConditionalScore(MLPDenoiser(2, (64, 64), max_period=10.0), sigmas)
    Trainer(model, epochs=40, batch_size=256, lr=3e-3, progress=False).fit(data)
    x = torch.randn(2000, 2)
    exact = mixture_score(x.double(), make_ring_centres(), 0.05**2 + 1.0).float()
    with torch.no_grad():
        learned = model.score(x, 1.0)
    cosine = torch.nn.functional.cosine_similarity(learned, exact).mean()
    assert cosine > 0.9, float(cosine)


def make_ring_centres():
    from companion.data.synthetic import ring_centers

    return ring_centers(8).double()


# --------------------------------------------------------------------------- models and training


def test_unet_shapes_and_size():
    net = UNet()
    x = torch.randn(3, 1, 28, 28)
    assert net(x, torch.tensor([1.0, 10.0, 500.0])).shape == (3, 1, 28, 28)
    assert sum(p.numel() for p in net.parameters()) <= 2_000_000


def test_timestep_embedding_is_sinusoidal():
    t = torch.tensor([0.0, 3.0])
    emb = timestep_embedding(t, 4, max_period=100.0)
    freqs = torch.tensor([1.0, 0.1])
    torch.testing.assert_close(emb, torch.cat([torch.cos(t[:, None] * freqs),
                                               torch.sin(t[:, None] * freqs)], 1))  # fmt: skip


def test_ddpm_trains_with_the_trainer_and_samples():
    torch.manual_seed(0)
    data, _ = make_ring(2048, sigma=0.05, seed=0)
    model = DDPM(MLPDenoiser(2, (64, 64)), (2,), T=50, ema_decay=0.9)
    history = Trainer(model, epochs=15, batch_size=128, lr=3e-3, progress=False).fit(data)
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    samples, path = model.sample(300, method="ddim", steps=10, trajectory_at=(50, 25, 0))
    assert samples.shape == (300, 2) and set(path) == {50, 25, 0}
    torch.testing.assert_close(path[0], samples)
    radius = samples.norm(dim=1)
    assert float(((radius - 1).abs() < 0.3).float().mean()) > 0.6  # near the unit ring
    assert model.sample(5).shape == (5, 2)


def test_unet_ddpm_loss_and_step():
    model = DDPM(UNet((8, 16, 16), time_width=16), (1, 28, 28), T=20)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    optimisers = model.configure_optimizers(1e-3)
    out = model.train_step(x, optimisers)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])


def test_ddim_levels():
    assert ddim_levels(1000, 1000) == list(range(1000, 0, -1))
    levels = ddim_levels(1000, 50)
    assert len(levels) == 50 and levels[0] == 1000 and levels[-1] == 1


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_give_clear_errors():
    schedule = NoiseSchedule(10)
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="t=11 is out of range"):
        schedule.q_sample(x, torch.tensor([1, 11]))
    with pytest.raises(ValueError, match="t=0 is out of range"):
        schedule.ddpm_step(x, torch.tensor([0, 1]), x)
    with pytest.raises(ValueError, match="kind='quadratic' is not one of"):
        NoiseSchedule(10, "quadratic")
    with pytest.raises(ValueError, match="T=1 must be >= 2"):
        linear_betas(1)
    with pytest.raises(ValueError, match="steps=20 is more than T=10"):
        ddim_levels(10, 20)
    with pytest.raises(ValueError, match="eta=2"):
        schedule.ddim_step(x, 5, 2, x, eta=2)
    with pytest.raises(ValueError, match="UNet expects images of shape"):
        UNet()(torch.zeros(2, 1, 32, 32), torch.ones(2))
    model = DDPM(MLPDenoiser(2, (8,)), (2,), T=10)
    with pytest.raises(ValueError, match="non-finite"):
        model.loss(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match=r"DDPM \(batch\) expects inputs of shape \(batch, 2\)"):
        model.loss(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="t=0 is out of range"):
        model.eps(torch.zeros(1, 2), 0)
    with pytest.raises(ValueError, match="ancestral sampling runs all"):
        model.sample(2, steps=5)
    with pytest.raises(ValueError, match="sigma=-1"):
        dsm_loss(lambda y: y, x, -1)
    with pytest.raises(ValueError, match="step_size=0"):
        langevin_sample(lambda y: y, x, step_size=0, n_steps=1)
    with pytest.raises(ValueError, match="sigmas must decrease"):
        NoiseConditionalScore(MLPDenoiser(2, (8,)), [0.1, 1.0])
    assert cosine_betas(10).shape == (10,)
