"""The autoencoder chapter's exercise checks accept correct answers and explain wrong ones."""

import pytest
import torch
import torch.nn.functional as F

from companion.exercises import (
    ExerciseError,
    check_bce_loss,
    check_hamming_distances,
    check_kl_sparsity,
    check_linear_autoencoder,
    check_masking_noise,
    check_optimal_denoiser,
    check_precision_at_k,
    check_sigmoid_jacobian_norm,
)


def _rejects(check, answer, message):
    with pytest.raises(ExerciseError, match=message):
        check(answer)


# --------------------------------------------------------------------- BCE
def bce(logits, x):
    return -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(1)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda a, x: bce(a, x) / a.shape[1], r"D times too small"),
        (lambda a, x: -bce(a, x), r"wrong sign"),
        (lambda a, x: bce(a, x).mean(), r"one number; return one loss per example"),
        (lambda a, x: bce(a, x)[:, None], r"shape \(8, 1\), expected \(8,\)"),
        (
            lambda a, x: -(x * a.sigmoid().log() + (1 - x) * (1 - a.sigmoid()).log()).sum(1),
            r"inf or NaN .*softplus",
        ),
        (
            lambda a, x: F.binary_cross_entropy(a.sigmoid().sigmoid(), x, reduction="none").sum(1),
            r"sigmoid twice",
        ),  # fmt: skip
    ],
)
def test_bce_loss(answer, message, capsys):
    check_bce_loss(bce)
    check_bce_loss(lambda a, x: F.binary_cross_entropy_with_logits(a, x, reduction="none").sum(1))
    assert "correct" in capsys.readouterr().out
    _rejects(check_bce_loss, answer, message)


# -------------------------------------------------------------- KL penalty
def kl(rho, q):
    return rho * torch.log(rho / q) + (1 - rho) * torch.log((1 - rho) / (1 - q))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            lambda rho, q: q * torch.log(q / rho) + (1 - q) * torch.log((1 - q) / (1 - rho)),
            r"KL\(ρ̂ ‖ ρ\), the arguments swapped",
        ),  # fmt: skip
        (lambda rho, q: rho * torch.log(rho / q), r"kept only the first term"),
        (lambda rho, q: kl(rho, q).sum(), r"shape \(\), expected \(5,\)"),
    ],
)
def test_kl_sparsity(answer, message, capsys):
    check_kl_sparsity(kl)
    assert "correct" in capsys.readouterr().out
    _rejects(check_kl_sparsity, answer, message)


# ----------------------------------------------------------- masking noise
def mask(x, level):
    return x.masked_fill(torch.rand_like(x) < level, 0.0)


def mask_in_place(x, level):
    x[torch.rand_like(x) < level] = 0.0
    return x


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            lambda x, level: x.masked_fill(torch.rand_like(x) >= level, 0.0),
            r"probability 1 − level: `level` is the share of entries destroyed",
        ),
        (lambda x, level: F.dropout(x, level) if level < 1 else x * 0, r"dropout's rescaling"),
        (mask_in_place, r"changed its input x in place"),
        (lambda x, level: x * (torch.rand(x.shape[1]) >= level), r"same mask"),
    ],
)
def test_masking_noise(answer, message, capsys):
    check_masking_noise(mask)
    assert "correct" in capsys.readouterr().out
    _rejects(check_masking_noise, answer, message)


# ------------------------------------------------------- contractive norm
def jacobian_norm(W, b, x):
    h = torch.sigmoid(x @ W.T + b)
    return ((h * (1 - h)) ** 2 * W.pow(2).sum(1)).sum(1)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda W, b, x: jacobian_norm(W, b, x).sqrt(), r"the norm itself"),
        (
            lambda W, b, x: (
                torch.sigmoid(x @ W.T + b) * (1 - torch.sigmoid(x @ W.T + b)) * W.pow(2).sum(1)
            ).sum(1),
            r"squared W's entries but not the sigmoid's derivative",
        ),  # fmt: skip
        (lambda W, b, x: W.pow(2).sum().expand(x.shape[0]), r"left out the sigmoid's derivative"),
        (lambda W, b, x: jacobian_norm(W, b, x)[:, None], r"shape \(6, 1\), expected \(6,\)"),
    ],
)
def test_sigmoid_jacobian_norm(answer, message, capsys):
    check_sigmoid_jacobian_norm(jacobian_norm)
    assert "correct" in capsys.readouterr().out
    _rejects(check_sigmoid_jacobian_norm, answer, message)


# ----------------------------------------------------------------- hashing
def hamming(a, b):
    return (a[:, None, :] != b[None, :, :]).sum(2)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda a, b: (a[:, None, :] == b[None, :, :]).sum(2), r"counted the bits that agree"),
        (lambda a, b: hamming(a, b).T, r"transposed"),
        (lambda a, b: hamming(a, b).clamp(max=8), r"For a\[\d\] and b\[\d\] you gave"),
    ],
)
def test_hamming_distances(answer, message, capsys):
    check_hamming_distances(hamming)
    check_hamming_distances(lambda a, b: torch.cdist(a.float(), b.float(), p=0))
    assert "correct" in capsys.readouterr().out
    _rejects(check_hamming_distances, answer, message)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda r, q: (r == q[:, None]).sum() / len(q), r"k times too large"),
        (lambda r, q: (r == q[None, : r.shape[1]]).double().mean(), r"its own query label"),
        (lambda r, q: (r == q[:, None]).double().mean(1), r"return one number"),
    ],
)
def test_precision_at_k(answer, message, capsys):
    check_precision_at_k(lambda r, q: (r == q[:, None]).double().mean().item())
    assert "correct" in capsys.readouterr().out
    _rejects(check_precision_at_k, answer, message)


# ---------------------------------------------------------------- denoiser
def denoise(x_noisy, data, sigma):
    weights = torch.softmax(-(torch.cdist(x_noisy, data) ** 2) / (2 * sigma**2), dim=1)
    return weights @ data


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda x, d, s: denoise(x, d, s**0.5), r"used σ where the Gaussian needs σ²"),
        (lambda x, d, s: d[torch.cdist(x, d).argmin(1)], r"nearest data point"),
        (lambda x, d, s: torch.exp(-(torch.cdist(x, d) ** 2) / (2 * s**2)) @ d, r"Normalise"),
        (lambda x, d, s: x, r"off by up to"),
    ],
)
def test_optimal_denoiser(answer, message, capsys):
    check_optimal_denoiser(denoise)
    assert "correct" in capsys.readouterr().out
    _rejects(check_optimal_denoiser, answer, message)


# ------------------------------------------------------ linear autoencoder
def top_components(X, k):
    values, vectors = torch.linalg.eigh(torch.cov(X.T))
    return vectors.flip(1)[:, :k]


def linear_ae(X, k):
    V = top_components(X, k)
    return V.T, V


def mixed_linear_ae(X, k):
    V = top_components(X, k)
    A = torch.tensor([[2.0, 1.0], [0.5, 3.0]], dtype=X.dtype)
    return A @ V.T, V @ torch.linalg.inv(A)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            lambda X, k: (
                torch.linalg.eigh(torch.cov(X.T))[1][:, :k].T,
                torch.linalg.eigh(torch.cov(X.T))[1][:, :k],
            ),
            r"smallest-variance",
        ),  # fmt: skip
        (
            lambda X, k: (2 * linear_ae(X, k)[0], linear_ae(X, k)[1]),
            r"not a projector \(P @ P ≠ P\)",
        ),
        (lambda X, k: (linear_ae(X, k)[1], linear_ae(X, k)[0]), r"encoder has shape \(6, 2\)"),
        (lambda X, k: linear_ae(X, k)[0], r"return two things"),
    ],
)
def test_linear_autoencoder(answer, message, capsys):
    check_linear_autoencoder(linear_ae)
    check_linear_autoencoder(mixed_linear_ae)  # any invertible mixing is optimal too
    assert "correct" in capsys.readouterr().out
    _rejects(check_linear_autoencoder, answer, message)
