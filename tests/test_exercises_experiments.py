"""The "modify, train and compare" exercises: each check judges what the student measured.

For every chapter's experiment exercise the check must

* pass a correct run for several seeds (the data and the training both change with the
  seed), so that a student who did it right never fails on an unlucky draw;
* refuse a constant answer (the setting never reaches the model) and a typical wrong
  run (the trend reversed, the wrong set scored, the wrong units), with a message that
  names the likely mistake and does not hand out the answer line.

The reference runs are those of the notebooks' solutions, written out here again. Runs
are cached by their arguments, so that the wrong answers built from them cost nothing.
"""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch

from companion.classical import PCA, GaussianMixture
from companion.exercises import (
    ExerciseError,
    check_beta_sweep,
    check_d_steps,
    check_denoising_level,
    check_heldout_components,
    check_heldout_k,
    check_isomap_neighbours,
    check_made_hidden,
)
from companion.models import GAN, MADE, VAE, DenoisingAutoencoder, MLPDiscriminator, MLPGenerator
from companion.training import Trainer

SEEDS = (0, 1, 2)
# Fragments of the answers' lines that no message may contain.
ANSWER_LINES = (
    "Isomap(n_neighbors",
    "torch.corrcoef",
    "inverse_transform(",
    "pca.score(",
    "GaussianMixture(K",
    "level=level",
    "beta=beta",
    "d_steps=d_steps",
    "MADE(",
    "torch.autograd.grad",
    ".sort()",
)


def cached(fn):
    """``fn`` remembering its results by its arguments (tensors by their size and sum)."""
    results = {}

    def key(value):
        if torch.is_tensor(value):
            return (tuple(value.shape), round(value.double().sum().item(), 6))
        return value

    def run(*args):
        k = tuple(map(key, args))
        if k not in results:
            results[k] = fn(*args)
        return results[k]

    return run


def refusal(check, answer, seed=0) -> str:
    with pytest.raises(ExerciseError) as info:
        check(answer, seed=seed)
    message = str(info.value)
    leaked = [line for line in ANSWER_LINES if line in message]
    assert leaked == [], f"the message gives the answer away ({leaked}): {message}"
    return message


def passes(check, answer, seed, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nbgrader gives 0 to a cell that warns
        check(answer, seed=seed)
    out = capsys.readouterr()
    assert "correct" in out.out and out.err == ""


# ---------------------------------------------------------------- manifolds: Isomap's k
@cached
def unrolling_quality(X, flat, n_neighbors, *, components=2):
    from sklearn.manifold import Isomap

    embedding = Isomap(n_neighbors=n_neighbors, n_components=components).fit_transform(X.numpy())
    a, b = torch.pdist(torch.from_numpy(embedding)), torch.pdist(flat.to(torch.float64))
    return torch.corrcoef(torch.stack([a, b]))[0, 1].item()


def _distance_correlation(a, b):
    return torch.corrcoef(torch.stack([torch.pdist(a), torch.pdist(b)]))[0, 1].item()


@pytest.mark.parametrize("seed", SEEDS)
def test_isomap_neighbours_passes_a_correct_run(seed, capsys):
    passes(check_isomap_neighbours, unrolling_quality, seed, capsys)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda X, flat, k: 0.97, r"does not use its n_neighbors"),
        (lambda X, flat, k: _distance_correlation(X, flat), r"Straight-line distances in 3-D"),
        (lambda X, flat, k: _distance_correlation(X, flat) + k / 1e3, r"no\s+better at any k"),
        # k as the number of components, the neighbours left at the default 5
        (lambda X, flat, k: unrolling_quality(X, flat, 5), r"does not use its n_neighbors"),
        (lambda X, flat, k: unrolling_quality(X, flat, 46 - k), r"not as the number of comp"),
        (lambda X, flat, k: 0.9 * unrolling_quality(X, flat, k), r"above 0.95 at k = 6"),
        (lambda X, flat, k: 5.0, r"not a correlation"),
    ],
)
def test_isomap_neighbours_names_the_mistake(answer, message):
    assert re.search(message, refusal(check_isomap_neighbours, answer))


# ---------------------------------------------------------------- PCA: k on held-out data
def heldout_scores(X_train, X_test, k):
    pca = PCA(k).fit(X_train)
    error = (X_test - pca.inverse_transform(pca.transform(X_test))).pow(2).sum(1).mean()
    return error.item(), pca.score(X_test)


@pytest.mark.parametrize("seed", SEEDS)
def test_heldout_k_passes_a_correct_run(seed, capsys):
    passes(check_heldout_k, heldout_scores, seed, capsys)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda tr, te, k: (1.0, -2.0), r"does not pass k"),
        (lambda tr, te, k: heldout_scores(tr, tr, k), r"error on X_train"),
        (lambda tr, te, k: heldout_scores(te, te, k), r"Fit on X_train only"),
        (
            lambda tr, te, k: (heldout_scores(tr, te, k)[0] / tr.shape[1], 0.0),
            r"d times too small",
        ),
        (
            lambda tr, te, k: (heldout_scores(tr, te, k)[0], -heldout_scores(tr, te, k)[1]),
            r"wrong sign",
        ),
        (
            lambda tr, te, k: (heldout_scores(tr, te, k)[0], PCA(k).fit(tr).score(tr)),
            r"training set's score",
        ),
        (lambda tr, te, k: heldout_scores(tr, te, k)[0], r"return two numbers"),
    ],
)
def test_heldout_k_names_the_mistake(answer, message):
    assert re.search(message, refusal(check_heldout_k, answer))


# ---------------------------------------------------------------- clustering: K held out
def heldout_loglik(X_train, X_test, K, seed):
    return GaussianMixture(K, covariance_type="full", random_state=seed).fit(X_train).score(X_test)


@pytest.mark.parametrize("seed", SEEDS)
def test_heldout_components_passes_a_correct_run(seed, capsys):
    passes(check_heldout_components, heldout_loglik, seed, capsys)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda tr, te, K, s: -3.7, r"does not\s+pass K"),
        (lambda tr, te, K, s: heldout_loglik(tr, tr, K, s), r"scoring X_train instead of X_test"),
        (lambda tr, te, K, s: -heldout_loglik(tr, te, K, s), r"not its negative"),
        (lambda tr, te, K, s: len(te) * heldout_loglik(tr, te, K, s), r"not the sum"),
        # K + 2 components: the curve peaks two early
        (lambda tr, te, K, s: heldout_loglik(tr, te, K + 2, s), r"highest at K = 2"),
        (lambda tr, te, K, s: heldout_loglik(tr, te, min(K, 4), s), r"still rising \(or flat\)"),
    ],
)
def test_heldout_components_names_the_mistake(answer, message):
    assert re.search(message, refusal(check_heldout_components, answer))


# ---------------------------------------------------------------- autoencoders: DAE level
def _dae(x_train, x_test, level, seed, direction):
    torch.manual_seed(seed)
    model = DenoisingAutoencoder(
        [2, 64, 64, 2], corruption="gaussian", level=level, output="gaussian"
    )
    Trainer(model, epochs=20, batch_size=50, lr=3e-3, seed=seed, device="cpu", progress=False).fit(
        x_train
    )
    model.eval()
    x = x_test.clone().requires_grad_(True)
    r = model(x)
    rows = [torch.autograd.grad(r[:, i].sum(), x, retain_graph=True)[0] for i in range(2)]
    J = torch.stack(rows, dim=1)
    n = x_test / x_test.norm(dim=1, keepdim=True)
    if direction == "tangent":
        n = torch.stack([-n[:, 1], n[:, 0]], 1)
    normal = (J @ n.unsqueeze(2)).squeeze(2).norm(dim=1).mean()
    return {"error": (r - x_test).pow(2).sum(1).mean().item(), "normal": normal.item()}


@cached
def dae_level(x_train, x_test, level, seed):
    return _dae(x_train, x_test, level, seed, "normal")


@pytest.mark.parametrize("seed", SEEDS)
def test_denoising_level_passes_a_correct_run(seed, capsys):
    passes(check_denoising_level, dae_level, seed, capsys)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda tr, te, v, s: {"error": 0.01, "normal": 0.3}, r"does\s+not pass level"),
        # the levels in the wrong order (a keep probability, say)
        (lambda tr, te, v, s: dae_level(tr, te, 0.3 - v, s), r"grows with the noise"),
        (lambda tr, te, v, s: _dae(tr, te, v, s, "tangent"), r"direction across the circle"),
        (lambda tr, te, v, s: dae_level(tr, te, min(v, 0.1), s), r"at every step"),
        (lambda tr, te, v, s: {"error": 0.01}, r"not 'normal'"),
        (lambda tr, te, v, s: (0.01, 0.3), r"return a dict"),
    ],
)
def test_denoising_level_names_the_mistake(answer, message):
    assert re.search(message, refusal(check_denoising_level, answer))


# ---------------------------------------------------------------- VAE: a β sweep
@cached
def beta_run(x_train, x_test, beta, seed):
    torch.manual_seed(seed)
    model = VAE.mlp(x_train.shape[1], (64,), 8, beta=beta)
    Trainer(model, epochs=30, batch_size=100, lr=3e-3, seed=seed, device="cpu", progress=False).fit(
        x_train
    )
    model.eval()
    with torch.no_grad():
        parts = model.loss(x_test)
    return {"rate": parts["kl"].item(), "distortion": parts["reconstruction"].item()}


@pytest.mark.parametrize("seed", SEEDS)
def test_beta_sweep_passes_a_correct_run(seed, capsys):
    passes(check_beta_sweep, beta_run, seed, capsys)


def _swapped(run):
    return {"rate": run["distortion"], "distortion": run["rate"]}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda tr, te, b, s: {"rate": 5.0, "distortion": 12.0}, r"does not\s+pass beta"),
        # β on the reconstruction: the same as 1/β on the KL, up to the step size
        (lambda tr, te, b, s: beta_run(tr, te, 1 / b, s), r"β weighs the reconstruction"),
        (lambda tr, te, b, s: _swapped(beta_run(tr, te, b, s)), r"the two numbers are swapped"),
        (lambda tr, te, b, s: beta_run(tr, te, min(b, 1.0), s), r"smaller rate at every step"),
        (
            lambda tr, te, b, s: {"rate": -beta_run(tr, te, b, s)["rate"], "distortion": 1.0},
            r"never negative",
        ),
        (lambda tr, te, b, s: {"rate": float("nan"), "distortion": 1.0}, r"diverged"),
    ],
)
def test_beta_sweep_names_the_mistake(answer, message):
    assert re.search(message, refusal(check_beta_sweep, answer))


# ---------------------------------------------------------------- GANs: d_steps
@cached
def gan_run(x, d_steps, loss, seed):
    torch.manual_seed(seed)
    gan = GAN(MLPGenerator(1, 1, (32,)), MLPDiscriminator(1, (32,)), loss=loss, d_steps=d_steps)
    Trainer(
        gan, epochs=5, batch_size=len(x) // 20, lr=2e-3, seed=seed, device="cpu", progress=False
    ).fit(x)
    with torch.no_grad():
        samples = gan.sample(len(x))
        d_fake = torch.sigmoid(gan.discriminator(samples)).mean()
    w1 = (samples.flatten().sort().values - x.flatten().sort().values).abs().mean()
    return {"w1": w1.item(), "d_fake": d_fake.item()}


@pytest.mark.parametrize("seed", SEEDS)
def test_d_steps_passes_a_correct_run(seed, capsys):
    passes(check_d_steps, gan_run, seed, capsys)


def _logit(p):
    return math.log(p / (1 - p))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda x, k, loss, s: {"w1": 1.0, "d_fake": 0.4}, r"does not pass d_steps"),
        (lambda x, k, loss, s: gan_run(x, k, "non_saturating", s), r"does\s+not pass loss"),
        # the discriminator steps the wrong way round
        (lambda x, k, loss, s: gan_run(x, 11 - k, loss, s), r"more sure"),
        (
            lambda x, k, loss, s: {**gan_run(x, k, loss, s), "d_fake": -3.0},
            r"Apply the sigmoid",
        ),
        (lambda x, k, loss, s: gan_run(x, 1, loss, s), r"does not pass d_steps"),
    ],
)
def test_d_steps_names_the_mistake(answer, message):
    assert re.search(message, refusal(check_d_steps, answer))


# ---------------------------------------------------------------- evaluation: MADE's width
@cached
def made_nll(x_train, x_test, hidden, seed):
    torch.manual_seed(seed)
    model = MADE(x_train.shape[1], (hidden,), seed=seed)
    Trainer(model, epochs=30, batch_size=100, lr=3e-3, seed=seed, device="cpu", progress=False).fit(
        x_train
    )
    model.eval()
    with torch.no_grad():
        return -model.log_prob(x_test).mean().item()


@pytest.mark.parametrize("seed", SEEDS)
def test_made_hidden_passes_a_correct_run(seed, capsys):
    passes(check_made_hidden, made_nll, seed, capsys)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda tr, te, h, s: 15.0, r"does not pass hidden"),
        (lambda tr, te, h, s: made_nll(tr, te, 130 - h, s), r"improves at every step"),
        (lambda tr, te, h, s: -made_nll(tr, te, h, s), r"that is the log-likelihood"),
        (
            lambda tr, te, h, s: made_nll(tr, te, h, s) / (tr.shape[1] * math.log(2)),
            r"not bits per dimension",
        ),
        (lambda tr, te, h, s: made_nll(tr, te, min(h, 2), s) - h / 1000, r"at least 5 nats"),
    ],
)
def test_made_hidden_names_the_mistake(answer, message):
    assert re.search(message, refusal(check_made_hidden, answer))
