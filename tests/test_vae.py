"""Variational autoencoders, checked against closed forms: KL divergences, the
continuous Bernoulli by quadrature, and a linear Gaussian VAE against the exact
probabilistic-PCA likelihood."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from companion.classical import PCA
from companion.models import VAE, importance_weighted_nll, reparameterize
from companion.models.layers import ConvDecoder, ConvEncoder, mlp_decoder, mlp_encoder
from companion.models.likelihoods import (
    continuous_bernoulli_log_norm,
    continuous_bernoulli_log_prob,
    continuous_bernoulli_mean,
    continuous_bernoulli_sample,
    gaussian_kl,
    gaussian_kl_diag,
)
from companion.runtime import available_devices
from companion.training import KLWarmup, StepDecay, Trainer

F64 = torch.float64


# ---------------------------------------------------------------- Gaussians
def test_gaussian_kl_matches_torch_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu_q, lv_q, mu_p, lv_p = (torch.randn(6, 3, generator=g, dtype=F64) for _ in range(4))
    q = torch.distributions.Normal(mu_q, (0.5 * lv_q).exp())
    p = torch.distributions.Normal(mu_p, (0.5 * lv_p).exp())
    std = torch.distributions.Normal(torch.zeros_like(mu_q), torch.ones_like(mu_q))
    torch.testing.assert_close(gaussian_kl(mu_q, lv_q), torch.distributions.kl_divergence(q, std))
    torch.testing.assert_close(
        gaussian_kl_diag(mu_q, lv_q, mu_p, lv_p), torch.distributions.kl_divergence(q, p)
    )
    zero = torch.zeros(())
    torch.testing.assert_close(gaussian_kl_diag(mu_q, lv_q, zero, zero), gaussian_kl(mu_q, lv_q))
    # Monte Carlo: KL = E_q[log q(z) - log p(z)], within 5 standard errors
    z = q.sample((100_000,))
    ratio = q.log_prob(z) - p.log_prob(z)  # (S, 6, 3)
    error = (ratio.mean(0) - gaussian_kl_diag(mu_q, lv_q, mu_p, lv_p)).abs()
    assert (error < 5 * ratio.std(0) / math.sqrt(len(z))).all(), error


def test_reparameterised_samples_have_the_right_moments():
    torch.manual_seed(0)
    n = 200_000
    mu = torch.tensor([-1.0, 0.0, 2.0], dtype=F64)
    logvar = torch.tensor([-2.0, 0.0, 1.5], dtype=F64)
    z = reparameterize(mu.expand(n, 3), logvar.expand(n, 3))
    var = logvar.exp()
    assert ((z.mean(0) - mu).abs() < 5 * (var / n).sqrt()).all(), z.mean(0)
    # the sample variance has standard error sqrt(2 σ⁴ / n) for a Gaussian
    assert ((z.var(0) - var).abs() < 5 * var * math.sqrt(2 / n)).all(), z.var(0)
    assert torch.corrcoef(z.T).sub(torch.eye(3, dtype=F64)).abs().max() < 0.02


def test_pathwise_gradient_matches_the_score_function_estimator():
    """d/dθ E_{N(μ, σ²)}[sin z] by both estimators, and in closed form: ∇μ = cos μ e^{-σ²/2},
    ∇ log σ² = -½ σ² sin μ e^{-σ²/2}."""
    torch.manual_seed(0)
    n = 400_000
    mu0 = torch.tensor([0.3, -1.2], dtype=F64)
    lv0 = torch.tensor([-0.5, 0.4], dtype=F64)
    mu = mu0.expand(n, 2).clone().requires_grad_()  # one copy per sample: per-sample gradients
    logvar = lv0.expand(n, 2).clone().requires_grad_()
    z = reparameterize(mu, logvar)
    torch.sin(z).sum().backward()
    pathwise = torch.cat([mu.grad, logvar.grad], 1)  # (n, 4)
    z, var = z.detach(), lv0.exp()
    f = torch.sin(z)
    score = torch.cat([f * (z - mu0) / var, f * 0.5 * ((z - mu0) ** 2 / var - 1)], 1)
    decay = torch.exp(-var / 2)
    exact = torch.cat([torch.cos(mu0) * decay, -0.5 * var * torch.sin(mu0) * decay])
    se = (pathwise.var(0) / n + score.var(0) / n).sqrt()
    assert ((pathwise.mean(0) - score.mean(0)).abs() < 5 * se).all()
    assert ((pathwise.mean(0) - exact).abs() < 5 * pathwise.std(0) / math.sqrt(n)).all()


# ---------------------------------------------------- continuous Bernoulli
LOGITS = [-60.0, -20.0, -3.0, -0.5, -0.1, -0.0999, -1e-3, -1e-7, 0.0, 1e-4, 0.05, 0.1001, 2.0, 45.0]


def test_continuous_bernoulli_normaliser_and_mean_agree_with_quadrature():
    nodes, weights = np.polynomial.legendre.leggauss(300)
    x = torch.as_tensor((nodes + 1) / 2)  # Gauss-Legendre on [0, 1]
    w = torch.as_tensor(weights / 2)
    eta = torch.tensor(LOGITS, dtype=F64)[:, None]
    density = continuous_bernoulli_log_prob(eta.expand(-1, len(x)), x.expand(len(eta), -1)).exp()
    torch.testing.assert_close(density @ w, torch.ones(len(eta), dtype=F64), rtol=0, atol=1e-9)
    mean = continuous_bernoulli_mean(eta[:, 0])
    torch.testing.assert_close(mean, density @ (w * x), rtol=0, atol=1e-9)
    # float32 gives the float64 values (no cancellation near λ = ½, no overflow far from it)
    eta32 = eta[:, 0].float().requires_grad_()
    log_c = continuous_bernoulli_log_norm(eta32)
    log_c64 = continuous_bernoulli_log_norm(eta[:, 0])
    torch.testing.assert_close(log_c.double(), log_c64, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(
        continuous_bernoulli_mean(eta32).double(), mean, rtol=1e-6, atol=1e-6
    )
    (grad,) = torch.autograd.grad(log_c.sum(), eta32)
    # d log C / dη = 1/η - 1/sinh(η) (→ η/6 at 0): checks the gradient on both branches
    e = eta[:, 0]
    exact = torch.where(e.abs() < 1e-3, e / 6, 1 / e - 1 / torch.sinh(e))
    torch.testing.assert_close(grad.double(), exact, rtol=1e-4, atol=1e-6)


def test_continuous_bernoulli_draws_have_the_mean():
    torch.manual_seed(0)
    eta = torch.tensor([-40.0, -2.0, -1e-5, 0.0, 0.7, 9.0]).repeat(100_000, 1)
    x = continuous_bernoulli_sample(eta)
    assert x.min() >= 0 and x.max() <= 1
    mean = continuous_bernoulli_mean(eta[0])
    assert ((x.mean(0) - mean).abs() < 5 * x.std(0) / math.sqrt(len(x))).all(), (x.mean(0), mean)


# ------------------------------------------ linear Gaussian VAE = probabilistic PCA
def ppca_data(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(8, 2, generator=g, dtype=F64) * torch.tensor([3.0, 1.5], dtype=F64)
    z = torch.randn(n, 2, generator=g, dtype=F64)
    return z @ W.T + 0.5 * torch.randn(n, 8, generator=g, dtype=F64) + 1.0


def ppca_vae(pca: PCA, *, shrink: float = 1.0, widen: float = 0.0) -> VAE:
    """A linear Gaussian VAE whose decoder is the PPCA model of ``pca`` and whose encoder is
    that model's exact posterior (shrunk and widened on request).

    With W = U (Λ - σ² I)^{1/2} (Tipping & Bishop's ML solution, R = I), M = WᵀW + σ² I
    = Λ is diagonal, so q(z | x) = N(M⁻¹Wᵀ(x - m), σ² M⁻¹) is exactly representable.
    """
    U = torch.as_tensor(pca.components_).T  # (D, d)
    lam = torch.as_tensor(pca.explained_variance_)
    s2, mean = pca.noise_variance_, torch.as_tensor(pca.mean_)
    W = U * (lam - s2).sqrt()
    D, d = W.shape
    M = W.T @ W + s2 * torch.eye(d, dtype=F64)
    A = torch.linalg.solve(M, W.T)  # (d, D)
    encoder, decoder = nn.Linear(D, 2 * d).double(), nn.Linear(d, D).double()
    with torch.no_grad():
        encoder.weight.zero_()
        encoder.weight[:d] = shrink * A
        encoder.bias[:d] = -shrink * A @ mean
        encoder.bias[d:] = torch.log(s2 / torch.diagonal(M)) + widen
        decoder.weight.copy_(W)
        decoder.bias.copy_(mean)
    model = VAE(encoder, decoder, d, likelihood="gaussian", obs_logvar=0.0).double()
    model.obs_logvar.fill_(math.log(s2))  # in float64, not rounded through float32
    return model


@pytest.fixture(scope="module")
def ppca():
    X = ppca_data()
    pca = PCA(2).fit(X)
    return X, pca, torch.as_tensor(pca.score_samples(X))  # exact log p(x), (n,)


def closed_form_elbo(model: VAE, X: torch.Tensor) -> torch.Tensor:
    """E_q[log N(x; Wz + b, σ² I)] - KL(q ‖ p) for a linear decoder, per example."""
    with torch.no_grad():
        h = model.encoder(X)
        mu, var = h[:, :2], h[:, 2:].exp()
        W, b, s2 = model.decoder.weight, model.decoder.bias, model.obs_logvar.exp()
        D = X.shape[1]
        sq = (X - mu @ W.T - b).pow(2).sum(1) + (var * W.pow(2).sum(0)).sum(1)
        expected = -0.5 * (D * math.log(2 * math.pi * s2) + sq / s2)
        kl = 0.5 * (mu.pow(2) + var - 1 - var.log()).sum(1)
        return expected - kl


def test_elbo_reaches_the_ppca_log_likelihood_at_the_optimum(ppca):
    X, pca, logp = ppca
    model = ppca_vae(pca)
    torch.testing.assert_close(closed_form_elbo(model, X), logp)  # the bound is tight...
    torch.manual_seed(0)
    # ... every importance weight p(x, z)/q(z | x) equals p(x), so any k, chunk or batch gives it
    nll = importance_weighted_nll(model, X, k=7, chunk=3, batch_size=64)
    torch.testing.assert_close(nll, -logp, rtol=0, atol=1e-9)
    elbo = model.elbo(X, n_samples=20).detach()  # the Monte Carlo ELBO, in expectation
    se = (elbo - logp).std() / math.sqrt(len(X))
    assert abs((elbo - logp).mean()) < 4 * se, ((elbo - logp).mean(), se)
    with torch.no_grad():
        loss = model.loss(X.float().double())
    assert abs(loss["negative_elbo"] + logp.mean()) < 4 * math.sqrt(20) * se + 1e-9


def test_iwae_bound_rises_with_k_and_stays_below_the_log_likelihood(ppca):
    X, pca, logp = ppca
    model = ppca_vae(pca, shrink=0.7, widen=1.5)  # a poor posterior: a gap of ~25 nats
    torch.manual_seed(0)
    elbo = closed_form_elbo(model, X).mean()
    weights = model.log_importance_weights(X, 200).detach()  # (200, n)
    se = weights.mean(0).std() / math.sqrt(len(X))
    assert abs(weights.mean() - elbo) < 4 * se, (weights.mean(), elbo, se)  # L_1 = ELBO
    bounds = [-importance_weighted_nll(model, X, k=k, chunk=32).mean() for k in (1, 10, 100)]
    assert abs(bounds[0] - elbo) < 5 * weights.std() / math.sqrt(len(X))
    gaps = [logp.mean() - b for b in bounds]
    assert gaps[0] > 10 and gaps[1] < gaps[0] - 3 and gaps[2] < gaps[1] - 3, gaps
    assert gaps[2] > 1, gaps  # still a bound: below log p(x), by more than the noise


def test_learned_observation_variance_reaches_its_optimum(ppca):
    """With encoder and decoder frozen, the ELBO's optimal σ² is E_q‖x - Wz - b‖² / D."""
    X, pca, _ = ppca
    fixed = ppca_vae(pca)
    model = VAE(fixed.encoder, fixed.decoder, 2, likelihood="gaussian").double()
    assert any(p is model.obs_logvar for p in model.parameters())
    for module in (model.encoder, model.decoder):
        module.requires_grad_(False)
    with torch.no_grad():
        h = model.encoder(X)
        W, b = model.decoder.weight, model.decoder.bias
        residual = (X - h[:, :2] @ W.T - b).pow(2).sum(1) + (h[:, 2:].exp() * W.pow(2).sum(0)).sum(
            1
        )
        best = residual.mean() / X.shape[1]
    Trainer(model, epochs=25, batch_size=100, lr=0.05, device="cpu", progress=False).fit(X)
    assert abs(model.obs_logvar.exp() / best - 1) < 0.05, (model.obs_logvar.exp(), best)


# ------------------------------------------------------------ the loss
class FixedPosterior(nn.Module):
    """An 'encoder' that ignores x and returns given (μ, log σ²) rows."""

    def __init__(self, h: torch.Tensor):
        super().__init__()
        self.h = nn.Parameter(h)

    def forward(self, x):
        return self.h


def test_beta_and_free_bits_weight_the_kl_as_documented():
    r2 = math.sqrt(2.0)  # KL(N(√2, 1) ‖ N(0, 1)) = 1 nat
    h = torch.tensor([[0.0, r2, 0.0, 0.0], [r2, 0.0, 0.0, 0.0]])  # per-example KL [0, 1], [1, 0]
    torch.manual_seed(0)
    model = VAE(FixedPosterior(h), nn.Linear(2, 5), 2, beta=3.0, free_bits=0.8, input_dim=5)
    model.kl_weight = 0.5
    out = model.loss(torch.rand(2, 5))
    # batch-mean KL per dimension is [0.5, 0.5] -> free bits give 0.8 + 0.8 = 1.6 nats, not the
    # 1.8 that clamping each example would give
    torch.testing.assert_close(out["loss"] - out["reconstruction"], torch.tensor(3.0 * 0.5 * 1.6))
    torch.testing.assert_close(out["kl"], torch.tensor(1.0))
    torch.testing.assert_close(out["negative_elbo"], out["reconstruction"] + 1.0)
    plain = VAE(FixedPosterior(h), nn.Linear(2, 5), 2, input_dim=5)
    out = plain.loss(torch.rand(2, 5))
    torch.testing.assert_close(out["loss"], out["negative_elbo"])


def test_kl_warmup_is_computed_from_the_epoch_and_survives_resuming(tmp_path):
    x = (torch.rand(256, 20, generator=torch.Generator().manual_seed(0)) < 0.3).float()

    class Record:
        def __init__(self):
            self.weights = []

        def on_epoch_start(self, trainer, epoch):
            self.weights.append(trainer.model.kl_weight)

    def run(epochs, record, resume=False):
        torch.manual_seed(1)
        model = VAE.mlp(20, (16,), 3)
        trainer = Trainer(
            model, epochs=epochs, batch_size=64, device="cpu", progress=False,
            checkpoint_path=tmp_path / "vae.pt", callbacks=[KLWarmup(4), record],
        )  # fmt: skip
        return trainer.fit(x, resume=resume)

    full = Record()
    history = run(6, full)
    assert full.weights == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert history["loss"][0] < history["negative_elbo"][0]  # weight 0: the KL is not in the loss
    assert history["loss"][-1] == pytest.approx(history["negative_elbo"][-1], rel=1e-5)
    (tmp_path / "vae.pt").unlink()
    first, second = Record(), Record()
    run(3, first)
    resumed = run(6, second, resume=True)
    assert first.weights + second.weights == full.weights
    assert resumed["negative_elbo"] == pytest.approx(history["negative_elbo"], rel=1e-6)
    assert KLWarmup(10, start=0.2).weight(5) == pytest.approx(0.6)
    with pytest.raises(AttributeError, match=r"sets Linear.kl_weight, which does not exist"):
        KLWarmup(3).on_epoch_start(SimpleNamespace(model=nn.Linear(2, 2)), 0)


def binary_mixture(n, seed, D=48, K=4, flip=0.05):
    """Noisy copies of K binary prototypes, and each example's exact log-likelihood."""
    protos = (torch.rand(K, D, generator=torch.Generator().manual_seed(99)) < 0.5).float()
    g = torch.Generator().manual_seed(seed)
    x = (
        protos[torch.randint(K, (n,), generator=g)] - (torch.rand(n, D, generator=g) < flip).float()
    ).abs()
    agree = (x[:, None] == protos[None]).sum(-1).double()
    logp = torch.logsumexp(agree * math.log(1 - flip) + (D - agree) * math.log(flip), 1)
    return x, logp - math.log(K)


@pytest.mark.parametrize("device", available_devices()[:2])
def test_trained_vae_approaches_the_true_likelihood(device):
    """Trained through the shared Trainer, on held-out data: true NLL ≤ IWAE NLL < −ELBO, and
    the IWAE estimate is within 1.5 nats of the truth (it starts about 22 nats away)."""
    x, _ = binary_mixture(1000, seed=0)
    x_test, logp = binary_mixture(500, seed=1)
    torch.manual_seed(0)
    model = VAE.mlp(48, (64,), 2)
    Trainer(model, epochs=8, batch_size=50, lr=5e-3, device=device, progress=False).fit(x)
    x_test = x_test.to(device)
    torch.manual_seed(1)
    nll = importance_weighted_nll(model, x_test, k=100)
    assert nll.device == x_test.device and nll.shape == (500,)
    iwae = nll.cpu().double().mean()
    nelbo = -model.elbo(x_test, n_samples=10).detach().cpu().double().mean()
    truth = -logp.mean()
    assert truth - 0.2 < iwae < nelbo - 0.2, (truth, iwae, nelbo)
    assert iwae - truth < 1.5, (iwae, truth)


# ------------------------------------------------------- interface and errors
@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian"])
def test_sample_reconstruct_and_encode(likelihood):
    torch.manual_seed(0)
    model = VAE.mlp(30, (16, 8), 4, likelihood=likelihood)
    x = torch.rand(6, 30).round() if likelihood == "bernoulli" else torch.rand(6, 30)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, 4)
    means, draws = model.sample(5), model.sample(200, mean=False)
    assert means.shape == (5, 30) and draws.shape == (200, 30)
    if likelihood != "gaussian":
        assert 0 < means.min() and means.max() < 1 and 0 <= draws.min() and draws.max() <= 1
    if likelihood == "bernoulli":
        assert set(draws.unique().tolist()) == {0.0, 1.0}
    if likelihood == "gaussian":  # draws scatter around the mean with the learned σ = 1
        assert (draws - model.decode(torch.zeros(1, 4))).std() > 0.5
    assert torch.equal(model.reconstruct(x), model.reconstruct(x))  # at z = μ: deterministic
    assert not torch.equal(model.reconstruct(x, sample=True), model.reconstruct(x))
    torch.testing.assert_close(model.reconstruct(x), model.decode(mu).detach())


def test_builders_and_the_convolutional_vae_learn():
    def widths(net):
        return [m.out_features for m in net if isinstance(m, nn.Linear)]

    assert widths(mlp_encoder(784, (512, 256), 10)) == [512, 256, 20]
    assert widths(mlp_decoder(10, (256, 512), 784)) == [256, 512, 784]
    assert ConvEncoder(6)(torch.rand(3, 784)).shape == (3, 12)
    assert ConvDecoder(6)(torch.rand(3, 6)).shape == (3, 784)
    torch.manual_seed(0)
    model = VAE.conv(latent_dim=4, channels=(8, 16))
    assert model.input_dim == 784 and VAE.mlp().input_dim == 784
    x, _ = binary_mixture(128, seed=0, D=784)
    x = x.view(128, 1, 28, 28)  # images are flattened
    history = Trainer(model, epochs=6, batch_size=32, lr=1e-2, device="cpu", progress=False).fit(x)
    assert history["negative_elbo"][-1] < 0.9 * history["negative_elbo"][0]


def test_gaussian_vae_loss_matches_an_independent_computation():
    """The loss of a Gaussian VAE takes data outside [0, 1]; recomputed with torch.distributions
    from its encoder and decoder and the same draw of ε."""
    torch.manual_seed(0)
    model = VAE.mlp(4, (3,), 2, likelihood="gaussian", obs_logvar=0.7)
    x = 10 * torch.randn(5, 4)
    torch.manual_seed(1)
    out = model.loss(x)
    torch.manual_seed(1)
    with torch.no_grad():
        mu, logvar = model.encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        p_x = torch.distributions.Normal(model.decoder(z), math.exp(0.5 * 0.7))
        rec = -p_x.log_prob(x).sum(1).mean()
        q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
        prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
        kl = torch.distributions.kl_divergence(q, prior).sum(1).mean()
    torch.testing.assert_close(out["reconstruction"], rec)
    torch.testing.assert_close(out["kl"], kl)
    torch.testing.assert_close(out["loss"].detach(), rec + kl)


def test_bad_inputs_and_arguments_are_explained():
    model = VAE.mlp(784, (32,), 4)
    x = torch.rand(4, 784).round()
    x[1, 5] = float("nan")
    with pytest.raises(ValueError, match=r"\(first: nan at index \[1, 5\]\); remove or impute"):
        model.loss(x)
    with pytest.raises(ValueError, match=r"shape \(batch, 784\).*got shape \(4, 100\)"):
        model.loss(torch.rand(4, 100))
    with pytest.raises(TypeError, match=r"got torch.uint8; scale them with to_float"):
        model.encode(torch.zeros(2, 784, dtype=torch.uint8))
    with pytest.raises(
        ValueError, match=r"needs inputs in \[0, 1\], got values in \[-1, .*to_float"
    ):
        model.loss(torch.full((2, 784), -1.0))
    wrong_encoder = VAE(nn.Linear(10, 6), nn.Linear(4, 10), 4)
    message = r"encoder returned shape \(2, 6\).*latent_dim=4 needs \(2, 8\).*output 8 features"
    with pytest.raises(ValueError, match=message):
        wrong_encoder.loss(torch.rand(2, 10))
    wrong_decoder = VAE(nn.Linear(10, 8), nn.Linear(4, 12), 4)
    with pytest.raises(ValueError, match=r"decoder returned shape \(2, 12\).*inputs have 10"):
        wrong_decoder.loss(torch.rand(2, 10))
    with pytest.raises(ValueError, match=r"likelihood='poisson' is not one of"):
        VAE.mlp(likelihood="poisson")
    with pytest.raises(ValueError, match=r"beta=-1 must be >= 0"):
        VAE.mlp(beta=-1)
    with pytest.raises(ValueError, match=r"obs_logvar applies to likelihood='gaussian' only"):
        VAE.mlp(obs_logvar=0.0)
    with pytest.raises(ValueError, match=r"k=0 must be >= 1"):
        importance_weighted_nll(model, torch.rand(2, 784), k=0)
    with pytest.raises(ValueError, match=r"epochs=-1 must be >= 0"):
        KLWarmup(-1)


def test_step_decay_sets_the_rate_by_epoch_in_every_optimiser():
    model = torch.nn.Linear(2, 1)
    trainer = SimpleNamespace(optimizers={"m": torch.optim.SGD(model.parameters(), lr=0.5)})
    schedule = StepDecay(1e-2, at=3)
    rates = []
    for epoch in range(5):
        schedule.on_epoch_start(trainer, epoch)
        rates.append(trainer.optimizers["m"].param_groups[0]["lr"])
    assert rates == pytest.approx([1e-2, 1e-2, 1e-2, 1e-3, 1e-3])
    assert StepDecay(1e-2, at=None).rate(100) == 1e-2
    with pytest.raises(ValueError, match="at=-1 must be"):
        StepDecay(1e-2, at=-1)
