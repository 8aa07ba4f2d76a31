"""The VAE row of the continuous likelihood table: a Gaussian decoder with per-pixel
variances (``VAE(decoder_variance=True)``), its importance weighted bound in 8-bit
bits/dim, and the helpers of ``benchmarks/continuous_likelihood.py``."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from companion.models import VAE, dequantized_bits_per_dim, importance_weighted_nll
from companion.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64


def soft_floor_inverse(logvar: torch.Tensor, floor: float) -> torch.Tensor:
    """The decoder output h with floor + softplus(h - floor) = logvar."""
    return floor + torch.log(torch.expm1(logvar - floor))


def factor_model(floor: float | None):
    """A linear VAE whose posterior is exact, for x = W z + b + ε, ε ~ N(0, diag ψ).

    W's two columns act on disjoint pixels, so the true posterior
    N(Σ Wᵀ Ψ⁻¹ (x - b), Σ), Σ = (I + Wᵀ Ψ⁻¹ W)⁻¹, is diagonal and a linear
    encoder gives it exactly; the decoder outputs b + W z and the constant
    log ψ (through the soft floor when there is one). Returns the model and the
    exact marginal N(b, W Wᵀ + Ψ).
    """
    g = torch.Generator().manual_seed(0)
    D, d = 6, 2
    W = torch.zeros(D, d, dtype=F64)
    W[:3, 0] = torch.randn(3, generator=g, dtype=F64)
    W[3:, 1] = torch.randn(3, generator=g, dtype=F64)
    b = torch.rand(D, generator=g, dtype=F64)
    psi = torch.tensor([1e-3, 4e-3, 1e-2, 2e-3, 5e-2, 3e-2], dtype=F64)  # per pixel
    prec = torch.eye(d, dtype=F64) + W.T @ (W / psi[:, None])
    Sigma = torch.linalg.inv(prec)
    assert torch.allclose(Sigma, torch.diag(torch.diagonal(Sigma)))  # diagonal by design
    A = Sigma @ (W / psi[:, None]).T  # (d, D): posterior mean = A (x - b)
    encoder, decoder = nn.Linear(D, 2 * d).double(), nn.Linear(d, 2 * D).double()
    with torch.no_grad():
        encoder.weight.zero_()
        encoder.weight[:d] = A
        encoder.bias[:d] = -A @ b
        encoder.bias[d:] = torch.diagonal(Sigma).log()
        decoder.weight.zero_()
        decoder.weight[:D] = W
        decoder.bias[:D] = b
        log_psi = psi.log()
        decoder.bias[D:] = log_psi if floor is None else soft_floor_inverse(log_psi, floor)
    model = VAE(encoder, decoder, d, likelihood="gaussian", decoder_variance=True,
                min_obs_logvar=floor, input_dim=D)  # fmt: skip
    marginal = torch.distributions.MultivariateNormal(b, W @ W.T + torch.diag(psi))
    return model, marginal


@pytest.mark.parametrize("floor", [None, -9.0])
def test_iwae_of_an_exact_posterior_is_the_exact_log_density_for_every_k(floor):
    model, marginal = factor_model(floor)
    x = marginal.sample(
        (300,),
    )
    log_p = marginal.log_prob(x)
    torch.manual_seed(0)
    for k in (1, 7):  # every importance weight p(x, z)/q(z | x) equals p(x)
        nll = importance_weighted_nll(model, x, k=k, chunk=3, batch_size=64)
        torch.testing.assert_close(nll, -log_p, rtol=0, atol=1e-9)
    bpd = dequantized_bits_per_dim(-nll, 6)
    expected = (-log_p / 6 + math.log(256)) / math.log(2)
    torch.testing.assert_close(bpd, expected, rtol=0, atol=1e-12)


def test_a_poor_posterior_gives_a_bound_that_k_tightens():
    model, marginal = factor_model(-9.0)
    with torch.no_grad():
        model.encoder.bias[2:] += 1.5  # posterior variances e^1.5 too wide
    torch.manual_seed(0)
    x = marginal.sample((400,))
    log_p = marginal.log_prob(x).mean()
    elbo = model.elbo(x, n_samples=50).detach()
    bounds = [-importance_weighted_nll(model, x, k=k).mean() for k in (1, 100)]
    se = elbo.std() / math.sqrt(len(x))
    assert abs(bounds[0] - elbo.mean()) < 5 * se, (bounds[0], elbo.mean(), se)  # L_1 = ELBO
    assert log_p - bounds[0] > 1, (log_p, bounds)  # a real gap...
    assert 0 < log_p - bounds[1] < (log_p - bounds[0]) / 3, (log_p, bounds)  # ...that K closes


def test_decoder_log_likelihood_is_a_diagonal_gaussian_with_soft_floored_variances():
    torch.manual_seed(0)
    floor = -math.log(12 * 256**2)
    model = VAE.mlp(10, (8,), 3, likelihood="gaussian", decoder_variance=True,
                    min_obs_logvar=floor).double()  # fmt: skip
    assert model.decoder[-1].out_features == 20 and not hasattr(model, "obs_logvar")
    x = torch.rand(5, 10, dtype=F64)
    params = 4 * torch.randn(5, 20, dtype=F64) - 6  # some log-variance outputs far below the floor
    mean, h = params[:, :10], params[:, 10:]
    logvar = torch.log(torch.exp(torch.tensor(floor, dtype=F64)) + torch.exp(h))  # softplus form
    reference = torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(model.log_likelihood(x, params), reference)
    assert (logvar > floor).all()
    torch.testing.assert_close(model._mean(params), mean)  # decode() and sample() show the means
    assert model.sample(4).shape == (4, 10) and model.sample(4, mean=False).shape == (4, 10)
    unfloored = VAE.mlp(10, (8,), 3, likelihood="gaussian", decoder_variance=True).double()
    reference = torch.distributions.Normal(mean, (0.5 * h).exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(unfloored.log_likelihood(x, params), reference)


def test_draws_from_the_decoder_have_its_variances():
    model = VAE.mlp(4, (3,), 2, likelihood="gaussian", decoder_variance=True).double()
    params = torch.tensor([[0.0, 1.0, -1.0, 2.0, 0.0, -2.0, math.log(4), -6.0]], dtype=F64)
    torch.manual_seed(0)
    draws = model._draw(params.expand(20000, -1))
    torch.testing.assert_close(draws.mean(0), params[0, :4], atol=0.05, rtol=0)
    expected_var = params[0, 4:].exp()
    assert torch.allclose(draws.var(0) / expected_var, torch.ones(4, dtype=F64), atol=0.05)


def test_decoder_variance_bad_options_say_the_fix():
    with pytest.raises(ValueError, match="decoder_variance applies to likelihood='gaussian'"):
        VAE.mlp(decoder_variance=True)
    with pytest.raises(ValueError, match="drop obs_logvar"):
        VAE.mlp(likelihood="gaussian", decoder_variance=True, obs_logvar=0.0)
    with pytest.raises(ValueError, match="needs decoder_variance=True"):
        VAE.mlp(likelihood="gaussian", min_obs_logvar=-5.0)
    with pytest.raises(ValueError, match="must be finite"):
        VAE.mlp(likelihood="gaussian", decoder_variance=True, min_obs_logvar=-math.inf)
    single = VAE.mlp(4, (3,), 2, likelihood="gaussian")  # a decoder with D outputs, not 2·D
    model = VAE(single.encoder, single.decoder, 2, likelihood="gaussian", decoder_variance=True)
    with pytest.raises(ValueError, match=r"output \(batch, 8\) \(the means, then the log-var"):
        model.loss(torch.rand(3, 4))


# ------------------------------------------------------------ the benchmark's helpers
@pytest.fixture(scope="module")
def benchmark():
    sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "scripts")]
    try:
        import continuous_likelihood
    finally:
        del sys.path[:2]
    return continuous_likelihood


def test_rows_are_sorted_into_families(benchmark):
    names = {"independent pixels (256-bin histograms)": "classical", "PPCA (k = 64)": "classical",
             "Gaussian mixture (K = 5, full covariances)": "classical",
             benchmark.VAE_NAME: "latent variable", "RealNVP": "flow", "MAF": "flow"}  # fmt: skip
    assert {name: benchmark.family(name) for name in names} == names
    row = lambda name, bpd: {"model": name, "bits_per_dim": bpd}  # noqa: E731
    rows = [row("diagonal Gaussian", 7.9), row("MAF", 4.1), row("RealNVP", 4.3)]
    assert benchmark.best_flow_below_classical(rows) is True
    # the VAE is not classical: a VAE below the best flow does not break the claim...
    assert benchmark.best_flow_below_classical([*rows, row(benchmark.VAE_NAME, 3.0)]) is True
    # ...but a classical row below it does
    assert benchmark.best_flow_below_classical([*rows, row("PPCA (k = 8)", 4.0)]) is False
    assert benchmark.best_flow_below_classical(rows[:1]) is None
    shuffled = [row("MAF", 0), row(benchmark.VAE_NAME, 0), row("diagonal Gaussian", 0),
                row("independent pixels (256-bin histograms)", 0)]  # fmt: skip
    order = [r["model"] for r in sorted(shuffled, key=benchmark.row_rank)]
    assert order == ["independent pixels (256-bin histograms)", "diagonal Gaussian",
                     benchmark.VAE_NAME, "MAF"]  # fmt: skip


def test_best_on_validation_keeps_the_weights_of_the_best_epoch(benchmark):
    model = nn.Linear(2, 1)
    trainer = type("T", (), {"model": model})()
    keep = benchmark.BestOnValidation()
    for epoch, value in enumerate([3.0, 1.0, 2.0]):
        with torch.no_grad():
            model.weight.fill_(epoch)
        keep.on_epoch_end(trainer, epoch, {"val_negative_elbo": value})
    assert keep.epoch == 2 and keep.best == 1.0 and keep.history == [3.0, 1.0, 2.0]
    assert torch.equal(keep.state["weight"], torch.ones(1, 2))  # a copy, not the live weights


def test_best_on_validation_stops_a_fit_when_its_time_is_spent(benchmark):
    torch.manual_seed(0)
    model = VAE.mlp(6, (4,), 2, likelihood="gaussian", decoder_variance=True)
    keep = benchmark.BestOnValidation(seconds=0.0)  # spent before the first epoch ends
    trainer = Trainer(model, epochs=5, batch_size=8, device="cpu", callbacks=[keep],
                      progress=False)  # fmt: skip
    with pytest.raises(benchmark.OutOfTime, match="stopped after epoch 1"):
        trainer.fit(torch.rand(16, 6), torch.rand(8, 6))
    assert trainer.epoch == 1 and len(keep.history) == 1 and keep.epoch == 1
    assert keep.history[0] == trainer.history["val_negative_elbo"][0]
    unlimited = benchmark.BestOnValidation()
    Trainer(model, epochs=3, batch_size=8, device="cpu", callbacks=[unlimited],
            progress=False).fit(torch.rand(16, 6), torch.rand(8, 6))  # fmt: skip
    assert len(unlimited.history) == 3
