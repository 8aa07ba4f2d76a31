"""What the exercise checks say, and what they must never do.

* Every exercise that asks for stability feeds extreme inputs, and the unstable
  textbook answer is refused with a message naming underflow/overflow and the
  stable way round it (log-sum-exp, softplus/logsigmoid).
* The messages name the likely mistake without handing out the answer line: each
  improved message is met with the typical wrong answer behind it.
* A check writes nothing to stderr (nbgrader gives 0 to a cell that does): no
  warnings of its own, and a student's warnings are shown on stdout.
* A RuntimeError of autograd raised by an answer becomes an ExerciseError in plain words.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from companion.exercises import (
    ExerciseError,
    check_active_units,
    check_bce_loss,
    check_bits_per_dim,
    check_chain_rule_log_prob,
    check_discriminator_loss,
    check_e_step,
    check_gaussian_frechet,
    check_gaussian_kl,
    check_gaussian_log_likelihood,
    check_iwae_bound,
    check_linear_autoencoder,
    check_masked_conv_mask,
    check_masking_noise,
    check_nearest_distances,
    check_optimal_denoiser,
    check_parzen_log_likelihood,
    check_reparameterize,
    check_score_function_gradient,
    check_sigmoid_jacobian_norm,
)

# Fragments of answer lines that no message may contain: a message names the mistake,
# the student writes the line.
ANSWER_LINES = (
    "torch.logsumexp(",
    "torch.tril(W, -1)",
    "torch.cdist(",
    "rand_like",
    "masked_fill",
    "exp(0.5 * logvar)",
    "F.binary_cross_entropy_with_logits",
    "-softplus(-a)",
    "F.logsigmoid(−a)",
    ".var() > 0.01",
    "V A⁻¹",
)


def refusal(check, answer) -> str:
    with pytest.raises(ExerciseError) as info:
        check(answer)
    message = str(info.value)
    leaked = [line for line in ANSWER_LINES if line in message]
    assert leaked == [], f"the message gives the answer away ({leaked}): {message}"
    return message


# ---------------------------------------------------------------- stability
def naive_bce(logits, x):
    p = torch.sigmoid(logits)
    return -(x * p.log() + (1 - x) * (1 - p).log()).sum(1)


def naive_d_loss(real, fake):
    return -(real.sigmoid().log().mean() + (1 - fake.sigmoid()).log().mean())


def naive_iwae(log_w):
    return log_w.exp().mean(0).log()


def naive_fvsbn(x, W, b):
    a = x @ torch.tril(W, -1).T + b
    p = torch.sigmoid(a)
    return (x * p.log() + (1 - x) * (1 - p).log()).sum(1)


def naive_parzen(x, s, sigma):
    d = x.shape[1]
    sq = torch.cdist(x, s).pow(2)
    kernels = torch.exp(-sq / (2 * sigma**2)) / (2 * math.pi * sigma**2) ** (d / 2)
    return kernels.mean(1).log()


def naive_e_step(X, weights, means, variances):
    d = X.shape[1]
    dens = torch.exp(-0.5 * torch.cdist(X, means).pow(2) / variances)
    dens = weights * dens / (2 * math.pi * variances) ** (d / 2)
    return dens / dens.sum(1, keepdim=True)


@pytest.mark.parametrize(
    ("check", "answer", "fix"),
    [
        (check_bce_loss, naive_bce, r"softplus"),
        (check_discriminator_loss, naive_d_loss, r"softplus"),
        (check_iwae_bound, naive_iwae, r"log-sum-exp"),
        (check_chain_rule_log_prob, naive_fvsbn, r"logsigmoid"),
        (check_parzen_log_likelihood, naive_parzen, r"logsumexp"),
        (check_e_step, naive_e_step, r"log-sum-exp"),
    ],
    ids=["bce", "discriminator loss", "iwae", "fvsbn", "parzen", "e-step"],
)
def test_the_unstable_answer_is_refused_with_the_reason(check, answer, fix):
    message = refusal(check, answer)
    assert re.search(r"underflow|overflow", message), message
    assert re.search(fix, message), message


# ---------------------------------------------------------------- the Fréchet distance
def sqrt_psd(S):
    values, vectors = torch.linalg.eigh(S)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet(ma, ca, mb, cb, mean_power=2, factor=2, inner_root=True, product=False, sign=-1):
    root = sqrt_psd(ca)
    if product:
        middle = root @ sqrt_psd(cb)
    else:
        middle = sqrt_psd(root @ cb @ root) if inner_root else root @ cb @ root
    mean_term = ((ma - mb) ** 2).sum() ** (mean_power / 2)
    return mean_term + torch.trace(ca + cb + sign * factor * middle)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda *a: frechet(*a, mean_power=1), r"squared distance ‖μ_a − μ_b‖², not the distance"),
        (lambda *a: frechet(*a, factor=1), r"missing its factor 2"),
        (lambda *a: frechet(*a, inner_root=False), r"needs its own square root"),
        (lambda *a: frechet(*a, product=True), r"only when the two covariances commute"),
        (lambda *a: frechet(*a, sign=1), r"subtracts twice the square root; you added it"),
        (
            lambda ma, ca, mb, cb: (
                ((ma - mb) ** 2).sum()
                + torch.trace(ca + cb - 2 * (ca.sqrt() @ cb @ ca.sqrt()).sqrt())
            ),
            r"Tensor.sqrt\(\) takes the root of each entry",
        ),
        (lambda ma, ca, mb, cb: ((ma - mb) ** 2).sum(), r"Only the means count"),
    ],
    ids=["norm", "factor 2", "inner root", "product of roots", "sign", "entrywise", "means"],
)
def test_gaussian_frechet_names_each_mistake(answer, message):
    check_gaussian_frechet(frechet)  # the reference this file's mistakes start from
    assert re.search(message, refusal(check_gaussian_frechet, answer))


def test_gaussian_frechet_messages_differ_for_different_mistakes():
    answers = [
        lambda *a: frechet(*a, mean_power=1),
        lambda *a: frechet(*a, factor=1),
        lambda *a: frechet(*a, inner_root=False),
        lambda *a: frechet(*a, product=True),
    ]
    hints = {refusal(check_gaussian_frechet, a).split(".", 2)[-1] for a in answers}
    assert len(hints) == len(answers)


def test_a_complex_answer_with_rounding_noise_passes_without_a_warning(capsys):
    """FID code often takes the root with eigvals or sqrtm: complex, imaginary part ~0."""

    def via_eigvals(ma, ca, mb, cb):
        roots = torch.linalg.eigvals(ca @ cb).sqrt()  # complex
        return ((ma - mb) ** 2).sum() + torch.trace(ca + cb) - 2 * roots.sum()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_gaussian_frechet(via_eigvals)
    captured = capsys.readouterr()
    assert "correct" in captured.out
    assert captured.err == ""


def test_a_truly_complex_answer_is_refused():
    message = refusal(check_gaussian_frechet, lambda *a: frechet(*a) + 1j)
    assert "is complex, with imaginary parts up to 1" in message


# ---------------------------------------------------------------- other improved messages
def kl(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)


def reparam(mu, logvar, eps):
    return mu + (0.5 * logvar).exp() * eps


def reparam_in_place(mu, logvar, eps):
    mu += (0.5 * logvar).exp() * eps
    return mu


def reparam_calls_backward(mu, logvar, eps):
    z = reparam(mu, logvar, eps)
    z.sum().backward()
    return z


def score_by_autograd(f, mu, sigma, eps):
    z = mu + sigma * eps
    log_q = torch.distributions.Normal(mu, sigma).log_prob(z.detach())
    (grad,) = torch.autograd.grad((f(z) * log_q).mean(), mu)  # mu carries no gradient
    return grad


def gauss(x, mean, logvar):
    D = x.shape[1]
    var = math.exp(logvar)
    return -0.5 * ((x - mean) ** 2).sum(1) / var - 0.5 * D * math.log(2 * math.pi * var)


def fvsbn(x, W, b, transpose=False):
    Wm = torch.tril(W, -1)
    a = x @ (Wm if transpose else Wm.T) + b
    return (x * F.logsigmoid(a) + (1 - x) * F.logsigmoid(-a)).sum(1)


def linear_ae(X, k):
    Xc = X - X.mean(0)
    V = torch.linalg.eigh(Xc.T @ Xc).eigenvectors.flip(1)[:, :k]
    return V.T, V


def same_mask_for_every_row(x, level):
    return x * (torch.rand(x.shape[1]) >= level)


def mask_in_place(x, level):
    x[torch.rand(x.shape) < level] = 0.0
    return x


@pytest.mark.parametrize(
    ("check", "answer", "message"),
    [
        (check_gaussian_kl, lambda mu, lv: kl(mu, lv) / mu.shape[1], r"averaged over the latent"),
        (check_gaussian_kl, lambda mu, lv: kl(mu, lv) + 0.3, r"Check each term of the closed"),
        (check_reparameterize, lambda mu, lv, eps: mu + (0.5 * lv).exp(), r"left out ε"),
        (
            check_reparameterize,
            lambda mu, lv, eps: mu + (-0.5 * lv).exp() * eps,
            r"divided ε by σ",
        ),
        (check_reparameterize, lambda mu, lv, eps: mu + eps, r"Scale the standard normal noise"),
        (check_reparameterize, reparam_in_place, r"in place .*autograd forbids"),
        (check_reparameterize, reparam_calls_backward, r"calls backward\(\) itself"),
        (check_score_function_gradient, score_by_autograd, r"does not depend on a tensor with"),
        (
            check_score_function_gradient,
            lambda f, mu, s, eps: (eps / s).mean(),
            r"averaged the score alone",
        ),
        (
            check_score_function_gradient,
            lambda f, mu, s, eps: -(f(mu + s * eps) * eps / s).mean(),
            r"wrong sign",
        ),
        (check_iwae_bound, lambda lw: lw.max(0).values, r"largest log-weight alone"),
        (
            check_gaussian_log_likelihood,
            lambda x, m, lv: gauss(x, m, lv) / x.shape[1],
            r"averaged over the pixels",
        ),
        (
            check_active_units,
            lambda means: int((means.var(0) > 0.1).sum()),
            r"varies across the examples",
        ),
        (
            check_discriminator_loss,
            lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum(),
            r"B times too large: average each batch",
        ),
        (
            check_bits_per_dim,
            lambda nll, shape: nll.mean() / math.prod(shape) / math.log(10),
            r"Check the three steps",
        ),
        (
            check_chain_rule_log_prob,
            lambda x, W, b: fvsbn(x, W, b, transpose=True),
            r"used column d of W",
        ),
        (
            check_masked_conv_mask,
            lambda k, t: torch.ones(k, k).triu(),
            r"rows above it and, in its own row, the pixels to its left",
        ),
        (
            check_parzen_log_likelihood,
            lambda x, s, sigma: torch.zeros(x.shape[0]),
            r"log of the average over the samples",
        ),
        (
            check_nearest_distances,
            lambda q, r: torch.cdist(q, r).min(1).values + 0.1,
            r"Euclidean distance to the closest reference row",
        ),
        (check_masking_noise, same_mask_for_every_row, r"one random number per column"),
        (check_masking_noise, mask_in_place, r"changed its input x in place"),
        (
            check_sigmoid_jacobian_norm,
            lambda W, b, x: torch.zeros(x.shape[0]) + 1,
            r"Write J with the chain rule",
        ),
        (
            check_optimal_denoiser,
            lambda xn, data, s: xn,
            r"weighted by the Gaussian likelihood",
        ),
        (
            check_linear_autoencoder,
            lambda X, k: (2 * linear_ae(X, k)[0], linear_ae(X, k)[1]),
            r"not a projector",
        ),
    ],
)
def test_each_message_names_the_mistake(check, answer, message):
    assert re.search(message, refusal(check, answer))


# ---------------------------------------------------------------- nothing on stderr
def test_a_warning_from_the_students_code_goes_to_stdout(capsys):
    def noisy_kl(mu, logvar):
        warnings.warn("something old is deprecated", DeprecationWarning, stacklevel=1)
        return kl(mu, logvar)

    check_gaussian_kl(noisy_kl)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "a warning from your code: DeprecationWarning: something old" in captured.out
    assert "check_gaussian_kl: correct" in captured.out


def test_a_read_only_numpy_answer_is_read_without_a_warning(capsys):
    def read_only(mu, logvar):
        out = kl(mu, logvar).numpy().copy()
        out.flags.writeable = False
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_gaussian_kl(read_only)
        check_gaussian_kl(lambda mu, lv: np.asarray(kl(mu, lv), dtype=np.float32) * 1.0)
    assert capsys.readouterr().err == ""
