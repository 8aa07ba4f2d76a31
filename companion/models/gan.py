"""Generative adversarial networks (Goodfellow et al., 2014) on the shared trainer.

The discriminator D(x) = σ(logit(x)) is trained to tell data from samples
G(z), z ~ N(0, I), by minimising binary cross-entropy with targets α for
data and β for samples:

    L_D = -E_data[α log D + (1-α) log(1-D)] - E_z[β log D(G(z)) + (1-β) log(1-D(G(z)))].

For fixed G its minimiser is D*(x) = (α p_data + β p_g) / (p_data + p_g);
α = 1, β = 0 gives p_data / (p_data + p_g). One-sided label smoothing
(Salimans et al., 2016) lowers α only. The generator minimises either

* ``"minimax"``: E_z log(1 - D(G(z))), the game's value; its gradient
  vanishes where D(G(z)) ≈ 0, that is early in training, or
* ``"non_saturating"``: -E_z log D(G(z)), same fixed points, strong gradient
  where D(G(z)) ≈ 0.

``unrolled_steps = k > 0`` (Metz et al., 2017) computes the generator loss
against a copy of D moved k gradient steps ahead, and differentiates through
those steps, so the generator anticipates how D will respond.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from companion._validation import check_model_input, check_positive_int
from companion.models.gan_layers import VirtualBatchNorm, update_reference
from companion.models.layers import input_width

LOSSES = ("minimax", "non_saturating")


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    real_label: float = 1.0,
    fake_label: float = 0.0,
) -> torch.Tensor:
    """L_D: binary cross-entropy of D on data (target α) plus on samples (target β), scalar."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.full_like(fake_logits, fake_label))
    return real + fake


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """Generator loss from D's logits on samples, averaged over the batch.

    minimax: mean log(1 - D) = mean(-softplus(l)); d/dD = -1/(1-D) per example.
    non_saturating: mean -log D = mean(softplus(-l)); d/dD = -1/D per example.
    """
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    if kind == "non_saturating":
        return F.softplus(-fake_logits).mean()
    raise ValueError(f"loss={kind!r} is not one of {LOSSES}.")


class GAN(nn.Module):
    """A GAN that owns its alternating update; train it with :class:`~companion.training.Trainer`.

    Parameters
    ----------
    generator : nn.Module
        z (B, latent_dim) -> samples (B, ...), the shape of the data.
    discriminator : nn.Module
        Samples (B, ...) -> logits (B,) or (B, 1).
    loss : {"minimax", "non_saturating"}
        The generator's loss (see the module docstring).
    label_smoothing : float in [0, 1)
        One-sided smoothing: the data target is α = 1 - label_smoothing.
    fake_label : float in [0, 1)
        The sample target β; β > 0 is two-sided smoothing, which Salimans et
        al. advise against (D* then rewards samples where p_data = 0).
        Needs β < α.
    d_steps : int
        Discriminator updates per generator update; each uses the same data
        batch and fresh noise.
    unrolled_steps : int
        k > 0 unrolls k SGD steps of D inside the generator's loss. Each
        unrolled step uses the same data batch and fresh noise. The real D is
        updated only by its ordinary step.
    unroll_lr : float, optional
        Step size of the unrolled SGD steps; by default the discriminator
        optimiser's current learning rate. Metz et al. unrolled Adam steps,
        which move every weight by about the learning rate whatever the
        gradient's size; plain SGD keeps the unrolling simple but needs a
        larger step (e.g. 100 × Adam's) to look as far ahead.
    latent_dim : int, optional
        By default the generator's ``latent_dim`` attribute or the width of its
        first linear layer.
    betas : tuple
        Adam betas for both players; (0.5, 0.999) as in DCGAN.

    If the generator has :class:`~companion.models.gan_layers.VirtualBatchNorm`
    layers, a reference batch of 64 latent codes is drawn once here (buffer
    ``reference_z``) and its statistics are refreshed before every generator pass.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        loss: str = "non_saturating",
        label_smoothing: float = 0.0,
        fake_label: float = 0.0,
        d_steps: int = 1,
        unrolled_steps: int = 0,
        unroll_lr: float | None = None,
        latent_dim: int | None = None,
        betas: tuple[float, float] = (0.5, 0.999),
    ):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(
                f"loss={loss!r} is not one of {LOSSES}; 'non_saturating' is the usual choice."
            )
        if not 0 <= label_smoothing < 1:
            raise ValueError(
                f"label_smoothing={label_smoothing} must be in [0, 1); 0.1 is a common value "
                "(the data target becomes 0.9)."
            )
        if not 0 <= fake_label < 1 - label_smoothing:
            raise ValueError(
                f"fake_label={fake_label} must be in [0, {1 - label_smoothing:g}), below the "
                f"data target 1 - label_smoothing; use fake_label=0.0 (one-sided smoothing)."
            )
        self.d_steps = check_positive_int(d_steps, name="d_steps")
        self.unrolled_steps = check_positive_int(unrolled_steps, name="unrolled_steps", minimum=0)
        if unroll_lr is not None and not unroll_lr > 0:
            raise ValueError(f"unroll_lr={unroll_lr} must be positive, or None for D's rate.")
        self.unroll_lr = unroll_lr
        self.generator, self.discriminator = generator, discriminator
        self.loss_kind = loss
        self.real_label, self.fake_label = 1.0 - float(label_smoothing), float(fake_label)
        self.betas = betas
        if latent_dim is None:
            latent_dim = input_width(generator, "latent_dim")
            if latent_dim is None:
                raise ValueError(
                    f"cannot tell the latent dimension of {type(generator).__name__}; "
                    "pass latent_dim=..."
                )
        self.latent_dim = check_positive_int(latent_dim, name="latent_dim")
        self.uses_virtual_bn = any(isinstance(m, VirtualBatchNorm) for m in generator.modules())
        if self.uses_virtual_bn:
            self.register_buffer("reference_z", torch.randn(64, self.latent_dim))

    # ------------------------------------------------------------ pieces
    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        """Adam for each player, same learning rate; called by the trainer."""
        return {
            "discriminator": torch.optim.Adam(
                self.discriminator.parameters(), lr=lr, betas=self.betas
            ),
            "generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=self.betas),
        }

    def _data(self, batch) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if isinstance(x, torch.Tensor) and (x.ndim == 0 or x.shape[0] < 1):
            raise ValueError(
                f"GAN got a batch of shape {tuple(x.shape)}; give at least one example."
            )
        like = next(self.discriminator.parameters(), None)
        check_model_input(x, None, name="GAN", like=like)  # type, dtype, device, NaN/inf
        return x

    def _noise(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, dtype=like.dtype, device=like.device)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z), refreshing the virtual-BN reference statistics first if there are any."""
        if self.uses_virtual_bn:
            update_reference(self.generator, self.reference_z.to(z.dtype))
        return self.generator(z)

    def _logits(self, x: torch.Tensor, params=None) -> torch.Tensor:
        if params is None:
            out = self.discriminator(x)
        else:
            out = functional_call(self.discriminator, params, (x,))
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim != 1 or out.shape[0] != x.shape[0]:
            raise ValueError(
                f"the discriminator returned shape {tuple(out.shape)} for {x.shape[0]} inputs; "
                f"it must return one logit per example, ({x.shape[0]},) or ({x.shape[0]}, 1)."
            )
        return out

    def _d_loss(self, x, fake, params=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        real_logits, fake_logits = self._logits(x, params), self._logits(fake, params)
        loss = discriminator_loss(real_logits, fake_logits, self.real_label, self.fake_label)
        return loss, real_logits, fake_logits

    def _unrolled_fake_logits(self, x, fake, lr: float) -> torch.Tensor:
        """D's logits on ``fake`` after k differentiable SGD steps on a functional copy of D."""
        params = {
            n: p.detach().requires_grad_(True) for n, p in self.discriminator.named_parameters()
        }
        names = list(params)
        buffers = {n: b.clone() for n, b in self.discriminator.named_buffers()}  # BN stats stay put
        for _ in range(self.unrolled_steps):
            other = self.generate(self._noise(x.shape[0], x))
            loss, _, _ = self._d_loss(x, other, {**params, **buffers})
            grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True)
            params = {
                **params,
                **{n: params[n] - lr * g for n, g in zip(names, grads, strict=True)},
            }
        return self._logits(fake, {**params, **buffers})

    # ------------------------------------------------------------ trainer hooks
    def train_step(self, batch, optimizers: dict) -> dict[str, float]:
        """``d_steps`` discriminator updates, then one generator update."""
        x = self._data(batch)
        n = x.shape[0]
        opt_d, opt_g = optimizers["discriminator"], optimizers["generator"]
        for _ in range(self.d_steps):
            with torch.no_grad():
                fake = self.generate(self._noise(n, x))
            d_loss, real_logits, fake_logits = self._d_loss(x, fake)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

        fake = self.generate(self._noise(n, x))
        d_params = list(self.discriminator.parameters())
        flags = [p.requires_grad for p in d_params]
        for p in d_params:
            p.requires_grad_(False)  # the generator step must not touch D's gradients
        try:
            if self.unrolled_steps:
                lr = self.unroll_lr or float(opt_d.param_groups[0]["lr"])
                g_logits = self._unrolled_fake_logits(x, fake, lr)
            else:
                g_logits = self._logits(fake)
            g_loss = generator_loss(g_logits, self.loss_kind)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
        finally:
            for p, flag in zip(d_params, flags, strict=True):
                p.requires_grad_(flag)
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": torch.sigmoid(real_logits).mean().detach(),
            "d_fake": torch.sigmoid(fake_logits).mean().detach(),
        }

    @torch.no_grad()
    def loss(self, batch) -> dict[str, torch.Tensor]:
        """Both players' losses on a batch without updating anything (for validation).

        ``loss`` is the discriminator's loss L_D.
        """
        x = self._data(batch)
        d_loss, _, fake_logits = self._d_loss(x, self.generate(self._noise(x.shape[0], x)))
        return {"loss": d_loss, "g_loss": generator_loss(fake_logits, self.loss_kind)}

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """n samples G(z), z ~ N(0, I), in the generator's current train/eval mode."""
        n = check_positive_int(n, name="n")
        ref = next(self.generator.parameters())
        return self.generate(self._noise(n, ref))
