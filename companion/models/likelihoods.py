"""Log-densities and KL divergences that variational autoencoders are built from.

Every function works elementwise and returns per-dimension values; callers
sum over pixels or latent dimensions. Logits are η = log(λ / (1 - λ)).
:func:`nats_to_bits_per_dim` is the one conversion of a negative log-likelihood
to bits per dimension (the autoregressive models' losses and
:mod:`companion.evaluation` use it).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from companion._validation import check_positive_int

LOG_2PI = math.log(2 * math.pi)
_SMALL = 0.1  # |η| below which the continuous Bernoulli uses its Taylor series


def nats_to_bits_per_dim(nats: float | torch.Tensor, dim: int) -> float | torch.Tensor:
    """Negative log-likelihood per example in nats -> bits per dimension: nats / (dim · ln 2)."""
    return nats / (check_positive_int(dim, name="dim") * math.log(2))


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) per dimension: ½(μ² + σ² - 1 - log σ²); same shape as μ."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_kl_diag(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(μ_q, σ_q²) ‖ N(μ_p, σ_p²)) per dimension (broadcasting).

    ½(log σ_p² - log σ_q² + (σ_q² + (μ_q - μ_p)²) / σ_p² - 1).
    """
    return 0.5 * (
        logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) * (-logvar_p).exp() - 1.0
    )


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; μ, σ²) per dimension (broadcasting)."""
    return -0.5 * (LOG_2PI + logvar + (x - mu).pow(2) * (-logvar).exp())


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, 1) per dimension."""
    return -0.5 * (LOG_2PI + z.pow(2))


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x log λ + (1 - x) log(1 - λ) per pixel, from logits (the negative BCE)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none")


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(λ) of the continuous Bernoulli (Loaiza-Ganem & Cunningham, 2019).

    p(x | λ) = C(λ) λ^x (1 - λ)^(1 - x) on [0, 1], with
    C(λ) = 2 artanh(1 - 2λ) / (1 - 2λ) = η / tanh(η/2) in terms of the logit η.
    C is even in η; we evaluate log C = log|η| - log tanh(|η|/2), writing
    log tanh(a) = log1p(-e^{-2a}) - log1p(e^{-2a}) so that large |η| stay
    exact, and use the series log 2 + u²/3 - 7u⁴/90 + 62u⁶/2835 (u = η/2)
    near η = 0 (λ = ½), where the ratio is 0/0.
    """
    a = logits.abs()
    safe = torch.where(a < _SMALL, torch.ones_like(a), a)  # keeps the unused branch finite
    e = torch.exp(-safe)  # e^{-2·(a/2)}
    direct = torch.log(safe) - (torch.log1p(-e) - torch.log1p(e))
    u2 = (0.5 * logits).pow(2)
    series = math.log(2.0) + u2 * (1.0 / 3 + u2 * (-7.0 / 90 + u2 * 62.0 / 2835))
    return torch.where(a < _SMALL, series, direct)


def continuous_bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | λ) of the continuous Bernoulli per pixel, x in [0, 1]."""
    return bernoulli_log_prob(logits, x) + continuous_bernoulli_log_norm(logits)


def continuous_bernoulli_mean(logits: torch.Tensor) -> torch.Tensor:
    """E[x] under the continuous Bernoulli: λ/(2λ - 1) + 1/(2 artanh(1 - 2λ)).

    In logits, σ(η)/tanh(η/2) - 1/η; near η = 0 the series ½ + η/12 - η³/720.
    Unlike the Bernoulli, the mean is not λ: it is pulled towards ½.
    """
    small = logits.abs() < _SMALL
    safe = torch.where(small, torch.ones_like(logits), logits)
    direct = torch.sigmoid(safe) / torch.tanh(0.5 * safe) - 1.0 / safe
    series = 0.5 + logits * (1.0 / 12 - logits.pow(2) / 720)
    return torch.where(small, series, direct)


def continuous_bernoulli_sample(logits: torch.Tensor) -> torch.Tensor:
    """One draw per entry by inverting the CDF: x = log1p(u (e^η - 1)) / η, u ~ U(0, 1).

    For η > 0 the same value is computed as 1 + log(u + (1 - u) e^{-η}) / η,
    which does not overflow.
    """
    u = torch.rand_like(logits)
    small = logits.abs() < 1e-4
    safe = torch.where(small, torch.ones_like(logits), logits)
    negative = torch.log1p(u * torch.expm1(safe.clamp(max=0))) / safe
    positive = 1.0 + torch.log(u + (1 - u) * torch.exp(-safe.clamp(min=0))) / safe
    x = torch.where(safe > 0, positive, negative)
    return torch.where(small, u, x).clamp(0.0, 1.0)
