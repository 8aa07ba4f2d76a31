"""RBM: free energy, partition function, conditionals and CD gradients against brute-force
enumeration of every (v, h) state of tiny machines; Gibbs sampling against the exact p(v);
training and greedy pretraining with RBMs."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.models import RBM, Autoencoder
from companion.training import Trainer, greedy_pretrain


def states(n: int) -> torch.Tensor:
    """Every binary vector of length n, (2^n, n) float64, by itertools (independent of RBM)."""
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=torch.float64)


def random_rbm(n_visible: int, n_hidden: int, seed: int, scale: float = 1.0) -> RBM:
    torch.manual_seed(seed)
    rbm = RBM(n_visible, n_hidden, init_std=scale).double()
    with torch.no_grad():
        rbm.visible_bias.normal_(0, scale)
        rbm.hidden_bias.normal_(0, scale)
    return rbm


def joint_log_weights(rbm: RBM) -> torch.Tensor:
    """-E(v, h) for every v (rows) and h (columns), from the energy's definition."""
    vs, hs = states(rbm.n_visible), states(rbm.n_hidden)
    W, b, c = rbm.weight.double(), rbm.visible_bias.double(), rbm.hidden_bias.double()
    return (vs @ b)[:, None] + (hs @ c)[None, :] + vs @ W @ hs.T  # (2^V, 2^H)


def brute_log_pv(rbm: RBM) -> torch.Tensor:
    """log p(v) for every v in states(V) order, by summing exp(-E) over all (v, h)."""
    logw = joint_log_weights(rbm)
    return torch.logsumexp(logw, 1) - torch.logsumexp(logw.flatten(), 0)


def index_of(v: torch.Tensor) -> torch.Tensor:
    """Row of states(V) that each binary row of v is."""
    powers = 2 ** torch.arange(v.shape[1] - 1, -1, -1, dtype=torch.float64)
    return (v.double() @ powers).long()


@settings(max_examples=25, deadline=None)
@given(
    n_visible=st.integers(1, 5),
    n_hidden=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    scale=st.floats(0.1, 3.0),
)
def test_free_energy_partition_and_likelihood_match_enumeration(n_visible, n_hidden, seed, scale):
    rbm = random_rbm(n_visible, n_hidden, seed, scale)
    logw = joint_log_weights(rbm)
    vs = states(n_visible)
    # F(v) = -log Σ_h exp(-E(v, h))
    torch.testing.assert_close(rbm.free_energy(vs).detach(), -torch.logsumexp(logw, 1))
    # log Z over all (v, h): the method sums over the smaller layer only (both branches hit)
    torch.testing.assert_close(rbm.log_partition(), torch.logsumexp(logw.flatten(), 0))
    log_pv = rbm.log_likelihood(vs)
    torch.testing.assert_close(log_pv, brute_log_pv(rbm))
    torch.testing.assert_close(log_pv.exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    # the energy method agrees with the definition on a few pairs
    hs = states(n_hidden)
    pairs_v, pairs_h = vs.repeat_interleave(len(hs), 0), hs.repeat(len(vs), 1)
    torch.testing.assert_close(-rbm.energy(pairs_v, pairs_h).detach(), logw.flatten())


def test_conditionals_match_the_joint():
    rbm = random_rbm(4, 3, seed=1)
    logw = joint_log_weights(rbm)  # (16, 8)
    p_h_given_v = torch.softmax(logw, 1)  # (16, 8)
    marginal = p_h_given_v @ states(3)  # p(h_j = 1 | v), (16, 3)
    torch.testing.assert_close(rbm.hidden_probs(states(4)).detach(), marginal)
    p_v_given_h = torch.softmax(logw, 0).T  # (8, 16)
    torch.testing.assert_close(rbm.visible_probs(states(3)).detach(), p_v_given_h @ states(4))


def _gradient(loss: torch.Tensor, rbm: RBM) -> torch.Tensor:
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(rbm.parameters()))])


def test_cd_gradient_tracks_the_exact_gradient():
    """With many Gibbs steps CD's estimate is the exact gradient of the mean NLL (up to Monte
    Carlo noise); CD-1 points the same way but is measurably biased."""
    rbm = random_rbm(4, 3, seed=0, scale=1.0)
    data = torch.tensor(
        [[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 1], [0, 1, 0, 0], [1, 1, 1, 0]],
        dtype=torch.float64,
    )
    vs = states(4)
    W, b, c = rbm.weight, rbm.visible_bias, rbm.hidden_bias
    hs = states(3)
    logw = (vs @ b)[:, None] + (hs @ c)[None, :] + vs @ W @ hs.T  # differentiable brute force
    log_pv = torch.logsumexp(logw, 1) - torch.logsumexp(logw.flatten(), 0)
    exact = _gradient(-log_pv[index_of(data)].mean(), rbm)
    batch = data.repeat(10_000, 1)  # 60,000 chains: Monte Carlo error about 2e-3
    errors = {}
    for k in (1, 50):
        rbm.k = k
        torch.manual_seed(1)
        estimate = _gradient(rbm.loss(batch)["loss"], rbm)
        errors[k] = (estimate - exact).abs().max().item()
        cosine = torch.nn.functional.cosine_similarity(estimate, exact, 0).item()
        assert cosine > 0.99, (k, cosine)
    assert errors[50] < 0.01, errors
    assert errors[1] > 3 * errors[50], errors  # CD-1's bias shows above the noise


def test_long_gibbs_chains_sample_the_exact_distribution():
    rbm = random_rbm(4, 3, seed=2, scale=1.0)
    torch.manual_seed(0)
    samples = rbm.sample(40_000, steps=30)
    found = torch.bincount(index_of(samples), minlength=16).double() / len(samples)
    total_variation = 0.5 * (found - brute_log_pv(rbm).exp()).abs().sum().item()
    assert total_variation < 0.02, total_variation


def test_cd_training_beats_the_independent_pixel_model():
    """On data with correlated bits (noisy copies of two prototypes), CD-1 raises the exact
    log-likelihood well above the best model without hidden units, where it starts."""
    g = torch.Generator().manual_seed(0)
    prototypes = torch.tensor([[1.0] * 5 + [0.0] * 5, [0.0] * 5 + [1.0] * 5])
    X = prototypes[torch.randint(0, 2, (2000,), generator=g)]
    X = (X + (torch.rand(X.shape, generator=g) < 0.05).float()) % 2
    torch.manual_seed(0)
    rbm = RBM(10, 4).init_visible_bias(X)
    with torch.no_grad():
        rbm.weight.zero_()
        independent = rbm.log_likelihood(X).mean().item()
        rbm.weight.normal_(0, 0.01)
    Trainer(rbm, epochs=20, batch_size=50, lr=1e-2, device="cpu", progress=False).fit(X)
    trained = rbm.log_likelihood(X).mean().item()
    # independent bits: 10 log 2 ≈ 6.93 nats; the mixture is near 2.0 nats + log 2
    assert independent < -6.8 and trained > independent + 3.0, (independent, trained)


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match=r"k=0 must be >= 1 Gibbs steps"):
        RBM(4, 3, k=0)
    with pytest.raises(ValueError, match=r"enumerates 2\^30 states.*at most 24 hidden"):
        RBM(40, 30).log_partition()
    with pytest.raises(ValueError, match=r"RBM expects inputs of shape \(batch, 4\)"):
        RBM(4, 3).free_energy(torch.rand(2, 5))
    with pytest.raises(ValueError, match=r"layer='rbm' needs activation='sigmoid'"):
        greedy_pretrain([6, 3], torch.rand(8, 6), layer="rbm", activation="relu")
    with pytest.raises(ValueError, match=r"layer='dbn' is not one of"):
        greedy_pretrain([6, 3], torch.rand(8, 6), layer="dbn")


def test_greedy_pretraining_with_rbms_stacks_their_weights(monkeypatch):
    import companion.training.pretraining as pretraining

    stages = []

    class RecordingTrainer(pretraining.Trainer):
        def __init__(self, model, **kwargs):
            stages.append(model)
            super().__init__(model, **kwargs)

    monkeypatch.setattr(pretraining, "Trainer", RecordingTrainer)
    torch.manual_seed(0)
    X = (torch.rand(256, 12) < 0.3).float()
    deep, histories = greedy_pretrain([12, 8, 3], X, layer="rbm", epochs=2, lr=1e-2, device="cpu")
    assert isinstance(deep, Autoencoder) and deep.dims == [12, 8, 3]
    assert [(s.n_visible, s.n_hidden) for s in stages] == [(12, 8), (8, 3)]
    assert all(isinstance(s, RBM) for s in stages) and len(histories) == 2
    with torch.no_grad():  # the deep encoder is the stack of hidden probabilities ...
        torch.testing.assert_close(deep.encode(X), stages[1](stages[0](X)))
        # ... and the decoder the stack of visible probabilities, top down
        code = deep.encode(X)
        torch.testing.assert_close(
            deep.decode(code), stages[0].visible_probs(stages[1].visible_probs(code))
        )
