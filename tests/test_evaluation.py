"""Evaluation of generative models against hand computations, known densities, constructed cases."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from companion.errors import NotFittedError
from companion.evaluation import (
    ParzenWindow,
    bits_per_dim,
    log_likelihoods,
    memorisation_check,
    nats_to_bits_per_dim,
    nearest_distances,
    nll_nats,
    precision_recall,
    vae_nll,
)
from companion.models import MADE, VAE, importance_weighted_nll

F64 = torch.float64


class IndependentBernoulli(nn.Module):
    """p(x) = Π_j p_j^x_j (1 - p_j)^(1 - x_j): a model whose log-likelihood is known by hand."""

    def __init__(self, probs: torch.Tensor):
        super().__init__()
        self.logits = nn.Parameter(torch.logit(probs))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        assert not torch.is_grad_enabled() and not self.training
        p = torch.sigmoid(self.logits)
        x = x.reshape(len(x), -1)
        return (x * p.log() + (1 - x) * (1 - p).log()).sum(1)


# ------------------------------------------------------------ likelihoods
def test_nll_and_bits_per_dim_match_a_hand_computation():
    model = IndependentBernoulli(torch.tensor([0.5, 0.25, 0.5, 0.5], dtype=F64))
    x = torch.tensor([[1, 1, 0, 1], [0, 0, 1, 1], [1, 0, 0, 0]], dtype=F64)
    # -log p = 3 log 2 + (-log 1/4 | -log 3/4 | -log 3/4)
    per_example = torch.tensor(
        [math.log(2) * 3 + math.log(4)] + [math.log(2) * 3 + math.log(4 / 3)] * 2, dtype=F64
    )
    mean, stderr = nll_nats(model, x, batch_size=2)
    assert mean == pytest.approx(float(per_example.mean()), rel=1e-12)
    assert stderr == pytest.approx(float(per_example.std() / math.sqrt(3)), rel=1e-12)
    bpd, bpd_se = bits_per_dim(model, x.reshape(3, 1, 2, 2))
    assert bpd == pytest.approx(mean / (4 * math.log(2)), rel=1e-12)
    assert bpd_se == pytest.approx(stderr / (4 * math.log(2)), rel=1e-12)
    assert model.training, "the evaluation restores training mode"


def test_bits_per_dim_conversion_by_hand():
    # a uniform distribution over {0,1}^784 has exactly 1 bit per dimension
    assert nats_to_bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0, rel=1e-15)
    assert nats_to_bits_per_dim(230.17, 784) == pytest.approx(230.17 / 543.4273, rel=1e-6)
    with pytest.raises(ValueError, match="dim=0"):
        nats_to_bits_per_dim(1.0, 0)


def test_nll_of_made_is_its_log_prob():
    model = MADE(6, (8,), seed=0).double()
    x = torch.bernoulli(torch.full((10, 6), 0.5, dtype=F64))
    with torch.no_grad():
        expected = -model.log_prob(x)
    assert nll_nats(model, x, batch_size=3).mean == pytest.approx(float(expected.mean()), rel=1e-12)


def test_models_without_log_prob_are_pointed_to_vae_nll():
    with pytest.raises(TypeError, match="use vae_nll"):
        log_likelihoods(nn.Linear(2, 2), torch.zeros(3, 2))


def test_vae_nll_reuses_the_importance_weighted_bound():
    torch.manual_seed(0)
    model = VAE.mlp(6, (5,), 2).double()
    x = torch.bernoulli(torch.full((7, 6), 0.5, dtype=F64))
    torch.manual_seed(1)
    estimate = vae_nll(model, x, k=20, chunk=7)
    torch.manual_seed(1)
    model.eval()
    direct = importance_weighted_nll(model, x, k=20, chunk=7)
    assert estimate.mean == pytest.approx(float(direct.mean()), rel=1e-12)
    assert estimate.stderr == pytest.approx(float(direct.std() / math.sqrt(7)), rel=1e-12)


# ------------------------------------------------------------ Parzen
@pytest.mark.parametrize("d", [1, 2])
def test_parzen_approaches_the_true_log_density_as_n_grows(d):
    g = torch.Generator().manual_seed(0)
    test = torch.randn(2000, d, generator=g, dtype=F64)
    val = torch.randn(1000, d, generator=g, dtype=F64)
    true = float((-0.5 * test.pow(2) - 0.5 * math.log(2 * math.pi)).sum(1).mean())
    errors = []
    for n in (30, 300, 3000):
        samples = torch.randn(n, d, generator=g, dtype=F64)
        parzen = ParzenWindow(torch.logspace(-1.5, 0.5, 15)).fit(samples, X_val=val)
        errors.append(abs(parzen.score(test) - true))
    assert errors[2] < errors[0], errors
    assert errors[2] < 0.02 * d, errors


def test_parzen_matches_a_direct_mixture_density():
    g = torch.Generator().manual_seed(1)
    samples, x = (
        torch.randn(7, 3, generator=g, dtype=F64),
        torch.randn(5, 3, generator=g, dtype=F64),
    )
    parzen = ParzenWindow([0.7], chunk=2).fit(samples, X_val=x)
    components = torch.distributions.MultivariateNormal(samples, 0.49 * torch.eye(3, dtype=F64))
    direct = torch.logsumexp(components.log_prob(x[:, None, :]), 1) - math.log(7)
    torch.testing.assert_close(parzen.score_samples(x), direct)
    assert parzen.sigma_ == 0.7


def test_parzen_picks_a_bandwidth_by_validation_and_checks_input():
    g = torch.Generator().manual_seed(0)
    parzen = ParzenWindow([0.001, 0.3, 100.0])
    with pytest.raises(NotFittedError, match="call fit"):
        parzen.score(torch.zeros(1, 2))
    parzen.fit(torch.randn(500, 2, generator=g), X_val=torch.randn(200, 2, generator=g))
    assert parzen.sigma_ == 0.3
    assert parzen.val_log_likelihoods_.shape == (3,)
    with pytest.raises(ValueError, match="X has 3 features, but ParzenWindow is expecting 2"):
        parzen.score(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="X_val has 3 features, but ParzenWindow is expecting 2"):
        ParzenWindow().fit(torch.zeros(3, 2), X_val=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="must be positive"):
        ParzenWindow([0.1, -1.0]).fit(torch.zeros(3, 2), X_val=torch.zeros(3, 2))
    with pytest.raises(TypeError, match=r"got a matrix as y; .*X_val=validation"):
        ParzenWindow().fit(torch.zeros(3, 2), torch.zeros(3, 2))  # the old positional form


def test_parzen_without_validation_data_picks_sigma_by_leave_one_out():
    """Checked against a brute-force leave-one-out score written out sample by sample."""
    g = torch.Generator().manual_seed(3)
    samples = torch.randn(40, 2, generator=g, dtype=F64)
    sigmas = [0.05, 0.2, 0.5, 1.0, 3.0]
    parzen = ParzenWindow(sigmas).fit(samples)

    def loo(sigma: float) -> float:
        total = 0.0
        for i in range(len(samples)):
            others = torch.cat([samples[:i], samples[i + 1 :]])
            normal = torch.distributions.MultivariateNormal(
                others, sigma**2 * torch.eye(2, dtype=F64)
            )
            total += float(torch.logsumexp(normal.log_prob(samples[i]), 0) - math.log(39))
        return total / len(samples)

    brute = [loo(s) for s in sigmas]
    torch.testing.assert_close(parzen.val_log_likelihoods_, torch.tensor(brute, dtype=F64))
    assert parzen.sigma_ == sigmas[max(range(5), key=brute.__getitem__)]
    assert 0.05 < parzen.sigma_ < 3.0  # neither extreme: with itself included σ → 0 would win


# ------------------------------------------------------------ memorisation
def test_memorisation_check_flags_a_copied_training_set():
    g = torch.Generator().manual_seed(0)
    train, test = torch.rand(2000, 10, generator=g), torch.rand(500, 10, generator=g)
    copied = memorisation_check(train[:300], train, test)
    assert copied.suspicious_fraction == 1.0
    assert float(copied.generated_to_train.max()) < 1e-6
    fresh = memorisation_check(torch.rand(300, 10, generator=g), train, test, quantile=0.05)
    assert fresh.suspicious_fraction < 0.15
    assert fresh.test_to_train.shape == (500,) and fresh.generated_to_train.shape == (300,)


def test_nearest_distances_match_brute_force():
    g = torch.Generator().manual_seed(0)
    q, r = torch.randn(37, 4, generator=g), torch.randn(50, 4, generator=g)
    brute = ((q[:, None] - r[None]) ** 2).sum(-1).sqrt().sort(1).values[:, :3]
    torch.testing.assert_close(nearest_distances(q, r, 3, chunk=8), brute)


# ------------------------------------------------------------ precision / recall
def test_precision_recall_identical_same_and_disjoint():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(1000, 2, generator=g)
    assert precision_recall(real, real, k=3) == (1.0, 1.0)
    precision, recall = precision_recall(real, torch.randn(1000, 2, generator=g), k=3)
    assert precision > 0.9 and recall > 0.9, (precision, recall)
    assert precision_recall(real, torch.randn(1000, 2, generator=g) + 20.0) == (0.0, 0.0)


def test_precision_recall_separate_quality_from_coverage():
    # samples from one half of the real distribution: realistic (high precision), poor recall
    g = torch.Generator().manual_seed(1)
    real = torch.randn(2000, 2, generator=g)
    half = torch.randn(4000, 2, generator=g)
    half = half[half[:, 0] > 0][:1000]
    precision, recall = precision_recall(real, half, k=3, chunk=256)
    assert precision > 0.9 and 0.4 < recall < 0.7, (precision, recall)


def test_precision_recall_input_errors():
    with pytest.raises(ValueError, match="real has 2 features but generated has 3"):
        precision_recall(torch.zeros(10, 2), torch.zeros(10, 3))
    with pytest.raises(ValueError, match="at least 4 are needed"):
        precision_recall(torch.zeros(3, 2), torch.zeros(10, 2), k=3)
    with pytest.raises(ValueError, match="quantile=1.5"):
        memorisation_check(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2), quantile=1.5)
