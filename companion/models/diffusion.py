"""Denoising diffusion probabilistic models (Ho et al., 2020) and DDIM (Song et al., 2021).

Indices follow the papers: the data is x₀, the noised versions are x₁, …, x_T,
and arrays indexed by t have length T + 1 with entry 0 standing for the data
(β₀ = 0, ᾱ₀ = 1). With αₜ = 1 − βₜ and ᾱₜ = α₁⋯αₜ,

* forward step:     q(xₜ | xₜ₋₁) = N(√αₜ xₜ₋₁, βₜ I),
* forward marginal: q(xₜ | x₀) = N(√ᾱₜ x₀, (1 − ᾱₜ) I), so xₜ = √ᾱₜ x₀ + √(1 − ᾱₜ) ε,
* posterior:        q(xₜ₋₁ | xₜ, x₀) = N(μ̃ₜ(xₜ, x₀), β̃ₜ I) with
  μ̃ₜ = √ᾱₜ₋₁ βₜ/(1 − ᾱₜ) x₀ + √αₜ (1 − ᾱₜ₋₁)/(1 − ᾱₜ) xₜ and β̃ₜ = (1 − ᾱₜ₋₁)/(1 − ᾱₜ) βₜ.

A network ε_θ(xₜ, t) predicts the noise; the reverse step is the posterior with x₀
replaced by its estimate x̂₀ = (xₜ − √(1 − ᾱₜ) ε_θ)/√ᾱₜ (Tweedie's formula when ε_θ
is the conditional mean of ε). Everything here works on tensors of any shape
(B, ...): points (B, 2) or images (B, 1, 28, 28).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from companion._validation import (
    batch_inputs,
    check_model_input,
    check_positive_int,
)
from companion.runtime import resolve_device

SCHEDULES = ("linear", "cosine")
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (B, ...), t (B,)) -> ε̂


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """βₜ, t = 1..T, evenly spaced from ``beta_start`` to ``beta_end`` (Ho et al., 2020), scaled
    by 1000/T so that a shorter chain reaches the same noise (Nichol & Dhariwal, 2021).
    float64 (T,)."""
    T = check_positive_int(T, name="T", minimum=2)
    scale = 1000 / T
    return torch.linspace(beta_start * scale, min(beta_end * scale, 0.999), T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """βₜ from ᾱₜ = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2) (Nichol & Dhariwal, 2021),
    clipped at ``max_beta``. float64 (T,)."""
    T = check_positive_int(T, name="T", minimum=2)
    t = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


class NoiseSchedule:
    """The fixed forward process of a DDPM: βₜ, αₜ, ᾱₜ and the Gaussians built from them.

    Parameters
    ----------
    T : int
        Number of noising steps (at least 2).
    kind : {"linear", "cosine"}
        How βₜ grows (:func:`linear_betas`, :func:`cosine_betas`).
    betas : tensor (T,), optional
        Use these βₜ ∈ (0, 1) instead (``T`` and ``kind`` are then ignored).

    Attributes (float64, length T + 1, index 0 the data)
    ----------
    betas, alphas, alpha_bars, posterior_variance (β̃ₜ; β̃₁ = 0)
    """

    def __init__(self, T: int = 1000, kind: str = "linear", *, betas: torch.Tensor | None = None):
        if betas is None:
            if kind not in SCHEDULES:
                raise ValueError(f"kind={kind!r} is not one of {SCHEDULES}.")
            betas = linear_betas(T) if kind == "linear" else cosine_betas(T)
        else:
            betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
            if len(betas) < 2 or not bool(((betas > 0) & (betas < 1)).all()):
                raise ValueError(
                    "betas must hold at least 2 values, each in (0, 1); got "
                    f"{betas.tolist()[:5]}{'...' if len(betas) > 5 else ''}."
                )
        self.kind = kind
        self.T = len(betas)
        self.betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas])
        self.alphas = 1 - self.betas
        self.alpha_bars = torch.cumprod(self.alphas, 0)
        previous = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])
        self.posterior_variance = torch.zeros_like(self.betas)
        self.posterior_variance[1:] = (1 - previous[1:]) / (1 - self.alpha_bars[1:]) * betas

    def __repr__(self) -> str:
        return f"NoiseSchedule(T={self.T}, kind={self.kind!r})"

    # ------------------------------------------------------------------ helpers
    def check_t(self, t, *, batch: int | None = None, low: int = 1) -> torch.Tensor:
        """``t`` as int64, each entry in [low, T]; a number is repeated ``batch`` times."""
        t = torch.as_tensor(t)
        if t.is_floating_point():
            if not bool((t == t.round()).all()):
                raise ValueError(f"t must hold whole steps in [{low}, {self.T}], got {t.tolist()}.")
            t = t.long()
        if t.ndim == 0 and batch is not None:
            t = t.expand(batch)
        if t.numel() and (int(t.min()) < low or int(t.max()) > self.T):
            bad = t[(t < low) | (t > self.T)][0].item()
            raise ValueError(
                f"t={bad} is out of range: steps run from {low} to T={self.T} "
                "(t = 0 is the data itself)."
            )
        if batch is not None and t.shape != (batch,):
            raise ValueError(
                f"t must have shape ({batch},), one step per example; got {tuple(t.shape)}."
            )
        return t.long()

    def _at(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` shaped (B, 1, …) to broadcast against ``like`` (B, …), in its dtype."""
        out = values.to(like.device)[t.to(like.device)].to(like.dtype)
        return out.reshape(-1, *([1] * (like.ndim - 1)))

    # ------------------------------------------------------------------ forward process
    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor | None = None) -> torch.Tensor:
        """A draw of xₜ ~ q(xₜ | x₀) = N(√ᾱₜ x₀, (1 − ᾱₜ) I). x0 (B, …), t (B,) in 1..T."""
        t = self.check_t(t, batch=x0.shape[0], low=0)
        if noise is None:
            noise = torch.randn_like(x0)
        return (
            self._at(self.alpha_bars.sqrt(), t, x0) * x0
            + self._at((1 - self.alpha_bars).sqrt(), t, x0) * noise
        )

    def q_step(self, x_prev: torch.Tensor, t, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One forward step: a draw of xₜ ~ q(xₜ | xₜ₋₁) = N(√αₜ xₜ₋₁, βₜ I)."""
        t = self.check_t(t, batch=x_prev.shape[0])
        if noise is None:
            noise = torch.randn_like(x_prev)
        return (
            self._at(self.alphas.sqrt(), t, x_prev) * x_prev
            + self._at(self.betas.sqrt(), t, x_prev) * noise
        )

    def posterior(self, x0: torch.Tensor, xt: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean μ̃ₜ (B, …) and variance β̃ₜ (B, 1, …) of q(xₜ₋₁ | xₜ, x₀)."""
        t = self.check_t(t, batch=xt.shape[0])
        previous = self.alpha_bars[(t - 1).clamp(min=0)]
        a_bar, beta, alpha = self.alpha_bars[t], self.betas[t], self.alphas[t]
        c0 = self._reshape(previous.sqrt() * beta / (1 - a_bar), xt)
        ct = self._reshape(alpha.sqrt() * (1 - previous) / (1 - a_bar), xt)
        return c0 * x0 + ct * xt, self._at(self.posterior_variance, t, xt)

    def _reshape(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.device, like.dtype).reshape(-1, *([1] * (like.ndim - 1)))

    def predict_x0(self, xt: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """x̂₀ = (xₜ − √(1 − ᾱₜ) ε̂)/√ᾱₜ: the data the noise estimate points back to."""
        t = self.check_t(t, batch=xt.shape[0])
        return (xt - self._at((1 - self.alpha_bars).sqrt(), t, xt) * eps) / self._at(
            self.alpha_bars.sqrt(), t, xt
        )

    # ------------------------------------------------------------------ reverse steps
    def ddpm_step(
        self,
        xt: torch.Tensor,
        t,
        eps: torch.Tensor,
        noise: torch.Tensor | None = None,
        *,
        variance: str = "posterior",
    ) -> torch.Tensor:
        """One ancestral step xₜ -> xₜ₋₁ ~ N(μ_θ, σₜ² I) with μ_θ = (xₜ − βₜ/√(1 − ᾱₜ) ε̂)/√αₜ.

        ``variance="posterior"``: σₜ² = β̃ₜ; ``"beta"``: σₜ² = βₜ (both in Ho et al.).
        No noise is added at t = 1.
        """
        t = self.check_t(t, batch=xt.shape[0])
        mean = self.reverse_mean(xt, t, eps)
        if variance not in ("posterior", "beta"):
            raise ValueError(f"variance={variance!r} is not one of ('posterior', 'beta').")
        var = self.posterior_variance if variance == "posterior" else self.betas
        if noise is None:
            noise = torch.randn_like(xt)
        keep = self._reshape((t > 1).double(), xt)
        return mean + keep * self._at(var.sqrt(), t, xt) * noise

    def reverse_mean(self, xt: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """μ_θ(xₜ, t) = (xₜ − βₜ/√(1 − ᾱₜ) ε̂)/√αₜ, which equals μ̃ₜ(xₜ, x̂₀)."""
        t = self.check_t(t, batch=xt.shape[0])
        coef = self._at(self.betas / (1 - self.alpha_bars).clamp(min=1e-300).sqrt(), t, xt)
        return (xt - coef * eps) / self._at(self.alphas.sqrt(), t, xt)

    def ddim_step(
        self,
        xt: torch.Tensor,
        t,
        t_prev,
        eps: torch.Tensor,
        *,
        eta: float = 0.0,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One DDIM step from level t to an earlier level ``t_prev`` (0 = the data).

        x_{t'} = √ᾱ_{t'} x̂₀ + √(1 − ᾱ_{t'} − σ²) ε̂ + σ z, with
        σ = η √((1 − ᾱ_{t'})/(1 − ᾱₜ)) √(1 − ᾱₜ/ᾱ_{t'}); η = 0 is deterministic.
        """
        t = self.check_t(t, batch=xt.shape[0])
        t_prev = self.check_t(t_prev, batch=xt.shape[0], low=0)
        if bool((t_prev >= t).any()):
            raise ValueError("t_prev must be smaller than t (DDIM steps go towards the data).")
        if not 0 <= eta <= 1:
            raise ValueError(f"eta={eta} must be in [0, 1] (0: DDIM, 1: DDPM-like noise).")
        x0 = self.predict_x0(xt, t, eps)
        a, a_prev = self.alpha_bars[t], self.alpha_bars[t_prev]
        sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
        direction = (1 - a_prev - sigma**2).clamp(min=0).sqrt()
        out = self._reshape(a_prev.sqrt(), xt) * x0 + self._reshape(direction, xt) * eps
        if eta > 0:
            if noise is None:
                noise = torch.randn_like(xt)
            out = out + self._reshape(sigma, xt) * noise
        return out


def gaussian_kl(
    mean1: torch.Tensor, var1: torch.Tensor, mean2: torch.Tensor, var2: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean1, var1) ‖ N(mean2, var2)) elementwise, for diagonal Gaussians (broadcasts)."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


def step_kl(
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    xt: torch.Tensor,
    t,
    eps_hat: torch.Tensor,
    *,
    variance: str = "posterior",
) -> torch.Tensor:
    """The ELBO's term Lₜ₋₁ = KL(q(xₜ₋₁ | xₜ, x₀) ‖ p_θ(xₜ₋₁ | xₜ)) per example (B,), t ≥ 2,
    in its ε-form: βₜ²/(2σₜ² αₜ (1 − ᾱₜ)) ‖ε − ε̂‖² (plus the variance terms when σₜ² ≠ β̃ₜ),
    where ε = (xₜ − √ᾱₜ x₀)/√(1 − ᾱₜ) is the noise that made xₜ."""
    t = schedule.check_t(t, batch=xt.shape[0], low=2)
    var = schedule.posterior_variance if variance == "posterior" else schedule.betas
    s2 = schedule._at(var, t, xt)
    eps = (xt - schedule._at(schedule.alpha_bars.sqrt(), t, xt) * x0) / schedule._at(
        (1 - schedule.alpha_bars).sqrt(), t, xt
    )
    a_bar, alpha, beta = (schedule._at(v, t, xt) for v in
                          (schedule.alpha_bars, schedule.alphas, schedule.betas))  # fmt: skip
    weight = beta**2 / (2 * s2 * alpha * (1 - a_bar))
    post_var = schedule._at(schedule.posterior_variance, t, xt)
    variance_terms = 0.5 * (torch.log(s2 / post_var) + post_var / s2 - 1)
    per_dim = weight * (eps - eps_hat) ** 2 + variance_terms
    return per_dim.reshape(len(xt), -1).sum(1)


class DDPM(nn.Module):
    """A diffusion model: a noise schedule and a network ε_θ(xₜ, t) that predicts the noise.

    ``loss(batch)`` is the simplified objective of Ho et al. (2020),
    E_{t, x₀, ε} ‖ε − ε_θ(√ᾱₜ x₀ + √(1 − ᾱₜ) ε, t)‖² with t uniform on 1..T
    (mean over dimensions), so :class:`~companion.training.Trainer` trains it.
    ``sample`` draws by ancestral (DDPM) or deterministic DDIM sampling.

    Parameters
    ----------
    network : nn.Module
        ``network(x_t (B, *data_shape), t (B,) float) -> (B, *data_shape)``, e.g.
        :class:`~companion.models.unet.UNet` or :class:`~companion.models.unet.MLPDenoiser`.
    data_shape : tuple of int
        Shape of one example, e.g. (1, 28, 28) or (2,).
    T : int
        Number of noise levels.
    schedule : {"linear", "cosine"}
    ema_decay : float, optional
        Also keep an exponential moving average of the network's weights
        (``self.ema``, updated after every step with this decay, e.g. 0.999);
        sampling then uses the average, which gives cleaner samples.
    grad_clip : float, optional
        Clip the norm of the gradients to this value before each step.

    Training goes through :meth:`train_step` (Adam from :meth:`configure_optimizers`),
    so that the average is updated after every step; checkpoints hold it.
    """

    def __init__(
        self,
        network: nn.Module,
        data_shape: Sequence[int],
        *,
        T: int = 1000,
        schedule: str = "linear",
        ema_decay: float | None = None,
        grad_clip: float | None = None,
    ):
        super().__init__()
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ValueError(f"ema_decay={ema_decay} must be in (0, 1), e.g. 0.999, or None.")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip={grad_clip} must be positive, or None.")
        self.network = network
        self.ema_decay, self.grad_clip = ema_decay, grad_clip
        self.ema = copy.deepcopy(network).requires_grad_(False) if ema_decay else None
        self.data_shape = tuple(check_positive_int(d, name="data_shape entry") for d in data_shape)
        self.schedule = NoiseSchedule(T, schedule)
        self.T = self.schedule.T

    def _check(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        """``x`` checked like every model's input (tensor, width, float, the weights' dtype and
        device, finite), then given the shape (batch, *data_shape)."""
        width = math.prod(self.data_shape)
        ref = next(self.network.parameters(), None)
        rows = check_model_input(x, width, name=f"DDPM ({name})", like=ref)
        if x.ndim > 2 and tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(
                f"DDPM expects {name} of shape (batch, {', '.join(map(str, self.data_shape))}), "
                f"got {tuple(x.shape)}; reshape the data or build the model with "
                f"data_shape={tuple(x.shape[1:])}."
            )
        return rows.reshape(len(rows), *self.data_shape)

    def eps(self, xt: torch.Tensor, t) -> torch.Tensor:
        """ε_θ(xₜ, t) (B, *data_shape); t a number or (B,) in 1..T."""
        xt = self._check(xt, "x_t")
        t = self.schedule.check_t(t, batch=xt.shape[0])
        return self.network(xt, t.to(xt.device).float())

    def forward(self, xt: torch.Tensor, t) -> torch.Tensor:
        return self.eps(xt, t)

    def loss(self, batch) -> dict[str, torch.Tensor]:
        x0 = self._check(batch_inputs(batch), "batch")
        t = torch.randint(1, self.T + 1, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        xt = self.schedule.q_sample(x0, t, noise)
        mse = (self.network(xt, t.float()) - noise).pow(2).mean()
        return {"loss": mse}

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        """Adam on the network's weights (the average is not trained)."""
        return {"model": torch.optim.Adam(self.network.parameters(), lr=lr)}

    def train_step(self, batch, optimizers: dict) -> dict[str, torch.Tensor]:
        """One Adam step on :meth:`loss`, then the moving average's update."""
        optimizer = optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        out = self.loss(batch)
        out["loss"].backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.network.parameters(), self.grad_clip)
        optimizer.step()
        if self.ema is not None:
            with torch.no_grad():
                for avg, new in zip(self.ema.parameters(), self.network.parameters(), strict=True):
                    avg.lerp_(new, 1 - self.ema_decay)
                for avg, new in zip(self.ema.buffers(), self.network.buffers(), strict=True):
                    avg.copy_(new)
        return out

    @property
    def sampler_network(self) -> nn.Module:
        """The network sampling uses: the moving average if kept, else the trained one."""
        return self.ema if self.ema is not None else self.network

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        method: str = "ddpm",
        steps: int | None = None,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        trajectory_at: Sequence[int] = (),
        batch_size: int = 500,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """``n`` samples (n, *data_shape), on the model's device.

        ``method="ddpm"``: ancestral sampling through all T steps. ``method="ddim"``:
        ``steps`` evenly spaced levels (all T by default), deterministic for ``eta=0``.
        With ``trajectory_at`` (levels t), also returns ``{t: x_t}`` for those levels
        (t = 0 is the sample), on the CPU.
        """
        n = check_positive_int(n, name="n")
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        outs, paths = [], {t: [] for t in trajectory_at}
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            x = torch.randn((m, *self.data_shape), generator=generator, device="cpu").to(device)

            def eps_fn(x, t):
                return self.sampler_network(x, t.to(device).float())

            x, path = _sample_loop(
                eps_fn, self.schedule, x, method=method, steps=steps, eta=eta,
                generator=generator, keep=set(trajectory_at),
            )  # fmt: skip
            outs.append(x)
            for t in trajectory_at:
                paths[t].append(path[t].cpu())
        self.train(was_training)
        samples = torch.cat(outs)
        if trajectory_at:
            return samples, {t: torch.cat(v) for t, v in paths.items()}
        return samples


def ddim_levels(T: int, steps: int) -> list[int]:
    """``steps`` levels from T down to 1, evenly spaced (then 0, the data, is the last target)."""
    steps = check_positive_int(steps, name="steps")
    if steps > T:
        raise ValueError(f"steps={steps} is more than T={T}; use at most {T} steps.")
    return sorted({int(round(v)) for v in torch.linspace(T, 1, steps).tolist()}, reverse=True)


def _sample_loop(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    x: torch.Tensor,
    *,
    method: str,
    steps: int | None,
    eta: float,
    generator: torch.Generator | None,
    keep: set[int],
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    if method not in ("ddpm", "ddim"):
        raise ValueError(f"method={method!r} is not one of ('ddpm', 'ddim').")
    if method == "ddpm" and steps not in (None, schedule.T):
        raise ValueError(
            f"steps={steps}: ancestral sampling runs all T={schedule.T} steps; "
            "use method='ddim' for fewer."
        )
    bad = [t for t in keep if not 0 <= t <= schedule.T]
    if bad:
        raise ValueError(
            f"trajectory_at={sorted(keep)}: {bad} are not levels in [0, {schedule.T}]."
        )
    path = {schedule.T: x.clone()} if schedule.T in keep else {}
    B = x.shape[0]

    def noise_like(x):
        return torch.randn(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)

    if method == "ddpm":
        for t in range(schedule.T, 0, -1):
            tt = torch.full((B,), t, dtype=torch.long)
            x = schedule.ddpm_step(x, tt, eps_fn(x, tt), noise_like(x) if t > 1 else None)
            if t - 1 in keep:
                path[t - 1] = x.clone()
        return x, path
    levels = ddim_levels(schedule.T, steps or schedule.T) + [0]
    for t, t_prev in zip(levels[:-1], levels[1:], strict=True):
        tt = torch.full((B,), t, dtype=torch.long)
        tp = torch.full((B,), t_prev, dtype=torch.long)
        noise = noise_like(x) if eta > 0 else None
        x = schedule.ddim_step(x, tt, tp, eps_fn(x, tt), eta=eta, noise=noise)
        for k in keep:  # record the level reached at or just below each asked level
            if t_prev <= k < t:
                path[k] = x.clone()
    return x, path


def sample_with(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    *,
    method: str = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Sample (shape) by DDPM or DDIM with any noise predictor ``eps_fn(x_t, t) -> ε̂``
    (a trained network, or the exact one of a known density in the tests)."""
    device = resolve_device(device)
    x = torch.randn(tuple(shape), generator=generator, dtype=dtype).to(device)
    x, _ = _sample_loop(eps_fn, schedule, x, method=method, steps=steps, eta=eta,
                        generator=generator, keep=set())  # fmt: skip
    return x
