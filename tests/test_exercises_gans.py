"""The GAN chapter's exercise checks accept correct answers and explain wrong ones."""

import math

import pytest
import torch
import torch.nn.functional as F

from companion.exercises import (
    ExerciseError,
    check_discriminator_loss,
    check_gaussian_frechet,
    check_js_divergence,
    check_minibatch_features,
    check_mode_count,
    check_optimal_discriminator,
)


def _rejects(check, answer, message):
    with pytest.raises(ExerciseError, match=message):
        check(answer)


def d_star(p_data, p_model, alpha, beta):
    return (alpha * p_data + beta * p_model) / (p_data + p_model)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda pd, pm, a, b: pd / (pd + pm), r"ignored the labels"),
        (lambda pd, pm, a, b: pm / (pd + pm), r"swapped the densities"),
        (lambda pd, pm, a, b: d_star(pd, pm, 1 - a, b), r"real_label is α itself"),
        (lambda pd, pm, a, b: d_star(pd, pm, a, b)[:-1], r"one value per point"),
    ],
)
def test_optimal_discriminator(answer, message, capsys):
    check_optimal_discriminator(d_star)
    assert "correct" in capsys.readouterr().out
    _rejects(check_optimal_discriminator, answer, message)


def d_loss(real, fake):
    return F.softplus(-real).mean() + F.softplus(fake).mean()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda r, f: -d_loss(r, f), r"wrong sign"),
        (lambda r, f: d_loss(r, f) / 2, r"half the expected value"),
        (lambda r, f: d_loss(-r, -f), r"swapped the targets"),
        (
            lambda r, f: -(r.sigmoid().log().mean() + (1 - f.sigmoid()).log().mean()),
            r"inf or NaN for logits of ±50",
        ),
    ],
)
def test_discriminator_loss(answer, message, capsys):
    check_discriminator_loss(d_loss)
    assert "correct" in capsys.readouterr().out
    _rejects(check_discriminator_loss, answer, message)


def js(p, q):
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return (a[mask] * (a[mask] / b[mask]).log()).sum()

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda p, q: js(p, q) / math.log(2), r"in bits"),
        (lambda p, q: 2 * js(p, q), r"twice too large"),
        (lambda p, q: 0.5 * (p * (2 * p / (p + q)).log()).sum(), r"0 log 0 = 0|expected"),
        (lambda p, q: js(p, q).reshape(1, 1).expand(2, 1), r"return one number"),
    ],
)
def test_js_divergence(answer, message, capsys):
    check_js_divergence(js)
    assert "correct" in capsys.readouterr().out
    _rejects(check_js_divergence, answer, message)


def modes(samples, centers, sigma):
    nearest, index = torch.cdist(samples, centers).min(1)
    return len(torch.unique(index[nearest <= 3 * sigma]))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda s, c, sig: len(torch.unique(torch.cdist(s, c).argmin(1))), r"only samples within"),
        (
            lambda s, c, sig: int((torch.cdist(s, c).min(1).values <= 3 * sig).sum()),
            r"number of high-quality samples",
        ),  # fmt: skip
        (lambda s, c, sig: modes(s, c, sig**2), r"3σ, not 3σ²"),
    ],
)
def test_mode_count(answer, message, capsys):
    check_mode_count(modes)
    assert "correct" in capsys.readouterr().out
    _rejects(check_mode_count, answer, message)


def minibatch_features(M):
    l1 = torch.cdist(M.transpose(0, 1), M.transpose(0, 1), p=1)  # (K, B, B)
    return (torch.exp(-l1).sum(2) - 1).T


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda M: minibatch_features(M) + 1, r"included j = i"),
        (
            lambda M: torch.exp(-((M[:, None] - M[None, :]) ** 2).sum(-1)).sum(1) - 1,
            r"L1 distance",
        ),
        (lambda M: minibatch_features(M).T, r"one value per example and kernel"),
        (lambda M: minibatch_features(M) * 0.5, r"off by up to"),
    ],
)
def test_minibatch_features(answer, message, capsys):
    check_minibatch_features(minibatch_features)
    assert "correct" in capsys.readouterr().out
    _rejects(check_minibatch_features, answer, message)


def _sqrt_psd(S):
    values, vectors = torch.linalg.eigh(S)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet(ma, ca, mb, cb):
    root = _sqrt_psd(ca)
    return ((ma - mb) ** 2).sum() + torch.trace(ca + cb - 2 * _sqrt_psd(root @ cb @ root))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda ma, ca, mb, cb: ((ma - mb) ** 2).sum(), r"Only the means count"),
        (lambda ma, ca, mb, cb: frechet(ma, ca, mb, cb).clamp_min(0).sqrt(), r"squared distance"),
        (
            lambda ma, ca, mb, cb: (
                ((ma - mb) ** 2).sum() + torch.trace(ca + cb - 2 * _sqrt_psd(ca @ cb))
            ),
            r"not symmetric",
        ),
        (
            lambda ma, ca, mb, cb: frechet(ma, ca, mb, cb) + 1,
            r"Check the mean term, then each part of the trace term",
        ),
    ],
)
def test_gaussian_frechet(answer, message, capsys):
    check_gaussian_frechet(frechet)
    assert "correct" in capsys.readouterr().out
    _rejects(check_gaussian_frechet, answer, message)


def test_gaussian_frechet_agrees_with_the_companion():
    from companion.evaluation import frechet_distance_gaussians

    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(3, 3, generator=g), torch.randn(3, 3, generator=g)
    args = (torch.randn(3), A @ A.T + torch.eye(3), torch.randn(3), B @ B.T + torch.eye(3))
    args = tuple(t.double() for t in args)
    assert abs(float(frechet(*args)) - frechet_distance_gaussians(*args)) < 1e-9
