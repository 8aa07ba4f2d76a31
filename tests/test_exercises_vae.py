"""The VAE chapter's exercise checks accept correct answers and explain wrong ones."""

import math

import pytest
import torch

from companion.exercises import (
    ExerciseError,
    check_active_units,
    check_gaussian_kl,
    check_gaussian_log_likelihood,
    check_iwae_bound,
    check_reparameterize,
    check_score_function_gradient,
)


def _rejects(check, answer, message):
    with pytest.raises(ExerciseError, match=message):
        check(answer)


def kl(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda mu, lv: 2 * kl(mu, lv), r"twice the right value"),
        (lambda mu, lv: -kl(mu, lv), r"wrong sign"),
        (lambda mu, lv: 0.5 * (mu**2 + (0.5 * lv).exp() - 1 - 0.5 * lv).sum(1), r"σ where σ²"),
        (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv), r"Sum over the latent dimensions"),
    ],
)
def test_gaussian_kl(answer, message, capsys):
    check_gaussian_kl(kl)
    assert "correct" in capsys.readouterr().out
    _rejects(check_gaussian_kl, answer, message)


def reparam(mu, logvar, eps):
    return mu + (0.5 * logvar).exp() * eps


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda mu, lv, eps: mu + lv.exp() * eps, r"scaled ε by the variance"),
        (lambda mu, lv, eps: mu + lv * eps, r"logvar is log σ²"),
        (lambda mu, lv, eps: reparam(mu, lv, eps).detach(), r"carries no gradient"),
        (lambda mu, lv, eps: reparam(mu, lv, eps).T, r"shape \(3, 5\), expected \(5, 3\)"),
    ],
)
def test_reparameterize(answer, message, capsys):
    check_reparameterize(reparam)
    assert "correct" in capsys.readouterr().out
    _rejects(check_reparameterize, answer, message)


def iwae(log_w):
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda lw: lw.exp().mean(0).log(), r"-inf or NaN: exp\(-1000\) underflows"),
        (lambda lw: torch.logsumexp(lw, 0), r"too large by log k"),
        (lambda lw: lw.mean(0), r"mean of the log-weights"),
        (lambda lw: iwae(lw.T), r"shape \(50,\).*transposed"),
    ],
)
def test_iwae_bound(answer, message, capsys):
    check_iwae_bound(iwae)
    assert "correct" in capsys.readouterr().out
    _rejects(check_iwae_bound, answer, message)


def gauss(x, mean, logvar):
    D = x.shape[1]
    return -0.5 * ((x - mean) ** 2).sum(1) / math.exp(logvar) - 0.5 * D * (
        math.log(2 * math.pi) + logvar
    )


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda x, m, lv: -0.5 * ((x - m) ** 2).sum(1) / math.exp(lv), r"normalising constant"),
        (lambda x, m, lv: gauss(x, m, 0.5 * lv), r"σ where σ² belongs"),
        (lambda x, m, lv: -gauss(x, m, lv), r"wrong sign"),
        (lambda x, m, lv: gauss(x, m, lv).sum(), r"shape \(\), expected \(5,\)"),
    ],
)
def test_gaussian_log_likelihood(answer, message, capsys):
    check_gaussian_log_likelihood(gauss)
    check_gaussian_log_likelihood(
        lambda x, m, lv: torch.distributions.Normal(m, math.exp(0.5 * lv)).log_prob(x).sum(1)
    )
    assert "correct" in capsys.readouterr().out
    _rejects(check_gaussian_log_likelihood, answer, message)


def score(f, mu, sigma, eps):
    z = mu + sigma * eps
    return (f(z) * (z - mu) / sigma**2).mean()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda f, mu, s, eps: (f(mu + s * eps) * eps / 1).mean(), r"divided by σ only"),
        (lambda f, mu, s, eps: (2 * (mu + s * eps - 3)).mean(), r"reparameterisation \(pathwise\)"),
        (lambda f, mu, s, eps: f(mu + s * eps) * eps / s, r"average over the draws"),
        (lambda f, mu, s, eps: f(mu + s * eps).mean(), r"expected"),
    ],
)
def test_score_function_gradient(answer, message, capsys):
    check_score_function_gradient(score)
    assert "correct" in capsys.readouterr().out
    _rejects(check_score_function_gradient, answer, message)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda m: int((m.std(0) > 0.01).sum()), r"standard deviation"),
        (lambda m: int((m.var(1) > 0.01).sum()), r"across examples"),
        (lambda m: int((m.var(0) <= 0.01).sum()), r"counted the inactive"),
        (lambda m: m.var(0) > 0.01, r"return one number"),
    ],
)
def test_active_units(answer, message, capsys):
    check_active_units(lambda m: int((m.var(0) > 0.01).sum()))
    check_active_units(lambda m: (m.var(0) > 0.01).sum())
    assert "correct" in capsys.readouterr().out
    _rejects(check_active_units, answer, message)


# --------------------------------------------------------------- one set of helpers
def test_the_checks_share_one_shape_aware_close():
    """The VAE and autoencoder checks use _common's helpers, whose _close refuses a
    wrongly shaped answer instead of broadcasting it: (4, 1) against (4,) would be
    compared entry by entry as (4, 4) and pass for equal values."""
    from companion.exercises import _common, autoencoders, vae

    for module in (vae, autoencoders):
        assert module._shape is _common._shape, module.__name__
        assert not hasattr(module, "_expect_shape"), module.__name__
    assert vae._close is _common._close
    column, row = torch.zeros(4, 1), torch.zeros(4)
    assert not vae._close(column, row) and not vae._close(row, column)
    assert vae._close(row, row.clone())


@pytest.mark.parametrize(
    ("check", "answer", "message"),
    [
        (check_gaussian_kl, lambda mu, lv: kl(mu, lv)[:, None], r"shape \(6, 1\), expected \(6,\)"),
        (check_iwae_bound, lambda lw: iwae(lw)[:, None], r"shape \(.*, 1\), expected"),
        (
            check_gaussian_log_likelihood,
            lambda x, m, lv: gauss(x, m, lv)[:, None],
            r"shape \(5, 1\), expected \(5,\)",
        ),
    ],
)
def test_a_right_answer_of_the_wrong_shape_is_refused(check, answer, message):
    _rejects(check, answer, message)
