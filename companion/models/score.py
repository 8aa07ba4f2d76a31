"""Score matching and Langevin sampling (Hyvärinen, 2005; Vincent, 2011; Song & Ermon, 2019).

A *score* is the gradient of a log-density, s(x) = ∇ₓ log p(x). Denoising score
matching (DSM) learns the score of the data blurred by Gaussian noise of std σ,
p_σ = p * N(0, σ² I), by regressing onto the score of the noising kernel:

    J_DSM(θ) = E_{x ~ p, x̃ ~ N(x, σ² I)} ‖s_θ(x̃) − (x − x̃)/σ²‖²,

whose minimiser is ∇ log p_σ (Vincent, 2011). At several noise levels σ₁ > … > σ_L
one network s_θ(x, σ) is trained with the weights λ(σ) = σ² (Song & Ermon, 2019), and
annealed Langevin dynamics samples by running Langevin steps at each level in turn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from companion._validation import (
    batch_inputs,
    check_finite,
    check_model_input,
    check_positive_int,
)

ScoreFn = Callable[[torch.Tensor], torch.Tensor]  # x (B, d) -> ∇ log p(x) (B, d)
LeveledScoreFn = Callable[[torch.Tensor, float], torch.Tensor]  # (x, σ) -> ∇ log p_σ(x)


def _check_sigma(sigma, name: str = "sigma") -> None:
    values = torch.as_tensor(sigma, dtype=torch.float64)
    if values.numel() == 0 or not bool(torch.isfinite(values).all() & (values > 0).all()):
        raise ValueError(f"{name}={sigma!r} must be positive noise standard deviation(s).")


def dsm_target(x: torch.Tensor, x_noisy: torch.Tensor, sigma) -> torch.Tensor:
    """The regression target of DSM, ∇_{x̃} log N(x̃; x, σ²I) = (x − x̃)/σ² (same shape as x);
    ``sigma`` a number or a tensor broadcasting against x (one level per example)."""
    _check_sigma(sigma)
    return (x - x_noisy) / sigma**2


def dsm_loss(
    score: Callable[..., torch.Tensor],
    x: torch.Tensor,
    sigma,
    *,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Denoising score matching loss at noise std ``sigma``, averaged over the batch.

    ``score(x_noisy)`` (one level) or, when ``sigma`` is a tensor of shape (B,),
    ``score(x_noisy, sigma)`` (one level per example); x (B, d).
    Returns ½·mean over examples of σ²‖s(x̃) − (x − x̃)/σ²‖² summed over dimensions
    (σ² weighting, so that every level contributes alike; at one level it is
    σ² times the right side of the denoising score matching identity, without
    its constant).
    """
    check_finite(x, name="x")
    _check_sigma(sigma)
    per_example = isinstance(sigma, torch.Tensor) and sigma.ndim == 1
    if per_example and len(sigma) != len(x):
        raise ValueError(f"sigma has {len(sigma)} levels for {len(x)} examples; give one each.")
    s = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x) if per_example else sigma
    if noise is None:
        noise = torch.randn_like(x)
    x_noisy = x + s * noise
    predicted = score(x_noisy, sigma) if per_example else score(x_noisy)
    residual = predicted - dsm_target(x, x_noisy, s)
    return 0.5 * (s**2 * residual**2).reshape(len(x), -1).sum(1).mean()


def geometric_sigmas(sigma_max: float, sigma_min: float, n_levels: int) -> torch.Tensor:
    """σ₁ > … > σ_L, a geometric sequence from ``sigma_max`` to ``sigma_min`` (float64 (L,))."""
    n_levels = check_positive_int(n_levels, name="n_levels", minimum=2)
    _check_sigma([sigma_max, sigma_min], "sigmas")
    if not sigma_max > sigma_min:
        raise ValueError(f"sigma_max={sigma_max} must exceed sigma_min={sigma_min}.")
    return torch.logspace(math.log10(sigma_max), math.log10(sigma_min), n_levels,
                          dtype=torch.float64)  # fmt: skip


class NoiseConditionalScore(nn.Module):
    """A noise-conditional score model s_θ(x, σ) = network(x, log σ)/σ (Song & Ermon, 2019;
    dividing by σ is their "technique 3", so the network predicts −ε, of order one).

    ``loss(batch)`` is :func:`dsm_loss` with one level per example drawn uniformly
    from ``sigmas``, so :class:`~companion.training.Trainer` trains it.

    Parameters
    ----------
    network : nn.Module
        ``network(x (B, d), log σ (B,)) -> (B, d)``, e.g. ``MLPDenoiser(max_period=...)``.
    sigmas : sequence of float
        The noise levels, largest first (see :func:`geometric_sigmas`).
    """

    def __init__(self, network: nn.Module, sigmas: Sequence[float]):
        super().__init__()
        sigmas = torch.as_tensor(sigmas, dtype=torch.float32).flatten()
        _check_sigma(sigmas, "sigmas")
        if len(sigmas) > 1 and not bool((sigmas[:-1] > sigmas[1:]).all()):
            raise ValueError("sigmas must decrease strictly (largest noise first).")
        self.network = network
        self.register_buffer("sigmas", sigmas)

    def score(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """s_θ(x, σ) (B, d); σ a number or (B,)."""
        x = self._check(x)
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        _check_sigma(sigma)
        if sigma.ndim == 0:
            sigma = sigma.expand(len(x))
        return self.network(x, sigma.log()) / sigma.reshape(-1, *([1] * (x.ndim - 1)))

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        return self.score(x, sigma)

    def _check(self, x) -> torch.Tensor:
        """Points (B, d) checked like every model's input (see ``check_model_input``)."""
        ref = next(self.network.parameters(), None)
        width = getattr(self.network, "dim", None)
        return check_model_input(x, width, name="NoiseConditionalScore", like=ref)

    def loss(self, batch) -> dict[str, torch.Tensor]:
        x = self._check(batch_inputs(batch))
        index = torch.randint(len(self.sigmas), (len(x),), device=x.device)
        return {"loss": dsm_loss(self.score, x, self.sigmas[index])}


def langevin_sample(
    score: ScoreFn,
    x: torch.Tensor,
    *,
    step_size: float,
    n_steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Unadjusted Langevin dynamics from ``x`` (B, d):
    x ← x + (δ/2)·s(x) + √δ·z, z ~ N(0, I), ``n_steps`` times with δ = ``step_size``."""
    if not step_size > 0:
        raise ValueError(f"step_size={step_size} must be positive, e.g. 1e-3.")
    n_steps = check_positive_int(n_steps, name="n_steps")
    check_finite(x, name="x")
    for _ in range(n_steps):
        z = torch.randn(x.shape, generator=generator).to(x)
        x = x + 0.5 * step_size * score(x) + math.sqrt(step_size) * z
    return x


def annealed_langevin_sample(
    score: LeveledScoreFn,
    x: torch.Tensor,
    sigmas: Sequence[float],
    *,
    eps: float = 2e-5,
    steps_per_level: int = 100,
    generator: torch.Generator | None = None,
    denoise: bool = True,
) -> torch.Tensor:
    """Annealed Langevin dynamics (Song & Ermon, 2019, algorithm 1) from ``x`` (B, d).

    At each level σᵢ (largest first), ``steps_per_level`` Langevin steps with step
    δᵢ = eps·σᵢ²/σ_L² using ``score(x, σᵢ)``. With ``denoise``, a last step
    x + σ_L² s(x, σ_L) (Tweedie's formula) removes the smallest noise (Jolicoeur-Martineau
    et al., 2021).
    """
    sigmas = [float(s) for s in torch.as_tensor(sigmas, dtype=torch.float64).flatten()]
    _check_sigma(sigmas, "sigmas")
    if not eps > 0:
        raise ValueError(f"eps={eps} must be positive, e.g. 2e-5.")
    for sigma in sigmas:
        step = eps * sigma**2 / sigmas[-1] ** 2
        x = langevin_sample(lambda y, s=sigma: score(y, s), x, step_size=step,
                            n_steps=steps_per_level, generator=generator)  # fmt: skip
    if denoise:
        x = x + sigmas[-1] ** 2 * score(x, sigmas[-1])
    return x


def mixture_score(x: torch.Tensor, centers: torch.Tensor, variance) -> torch.Tensor:
    """Exact score of an equal-weight mixture of N(cₖ, v I) at x (B, d): the posterior-weighted
    pull Σₖ wₖ(x)(cₖ − x)/v. With v = σ_data² + σ², the score of the mixture blurred by σ."""
    diff = centers[None].to(x) - x[:, None]  # (B, K, d)
    logits = -(diff**2).sum(-1) / (2 * variance)  # (B, K)
    weights = torch.softmax(logits, dim=1)
    return (weights[..., None] * diff).sum(1) / variance
