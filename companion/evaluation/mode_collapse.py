"""The mode-collapse experiment: one GAN recipe, four tricks, two Gaussian mixtures.

The protocol of the VEEGAN and PacGAN papers on 2-D data: train a small GAN
on the 8-mode ring (σ = 0.01) or the 25-mode grid (σ = 0.05), draw 2,500
samples and count the modes covered and the share of high-quality samples
(:func:`~companion.evaluation.mode_coverage.mode_coverage`). Every trick gets the same
networks, optimiser, data and number of generator updates; only the trick
changes. The chapter's notebook and ``benchmarks/gan.py`` both call
:func:`fit_mixture_gan`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from companion.data.synthetic import (
    grid_centers,
    make_grid,
    make_ring,
    ring_centers,
)
from companion.evaluation.mode_coverage import ModeCoverage, mode_coverage
from companion.models.gan import GAN
from companion.models.gan_layers import MLPDiscriminator, MLPGenerator
from companion.runtime import seed_everything
from companion.training.callbacks import StepDecay
from companion.training.trainer import Trainer


@dataclass(frozen=True)
class Mixture:
    """A benchmark mixture and the recipe every trick shares on it.

    centers (k, 2); sigma, the std of each mode; sample(n, seed) -> (n, 2);
    the recipe: hidden widths of the generator (ReLU) and of the discriminator
    (LeakyReLU), batch norm in the generator or not, and Adam's learning rate.
    """

    centers: torch.Tensor
    sigma: float
    sample: Callable[[int, int], torch.Tensor]
    generator_hidden: tuple[int, ...]
    discriminator_hidden: tuple[int, ...]
    generator_norm: str | None
    lr: float


MIXTURES: dict[str, Mixture] = {
    "ring": Mixture(
        ring_centers(8), 0.01, lambda n, seed: make_ring(n, sigma=0.01, seed=seed)[0],
        generator_hidden=(128,) * 3, discriminator_hidden=(128,) * 2,
        generator_norm=None, lr=3e-4,
    ),
    "grid": Mixture(
        grid_centers(), 0.05, lambda n, seed: make_grid(n, sigma=0.05, seed=seed)[0],
        generator_hidden=(256,) * 4, discriminator_hidden=(256,) * 3,
        generator_norm="batch", lr=2e-4,
    ),
}  # fmt: skip

# trick -> (GAN keyword arguments, discriminator keyword arguments)
TRICKS: dict[str, tuple[dict, dict]] = {
    "vanilla": ({}, {}),
    "label smoothing": ({"label_smoothing": 0.2}, {}),
    "minibatch discrimination": ({}, {"minibatch": "discrimination"}),
    "unrolled (k=5)": ({"unrolled_steps": 5}, {}),
}


@dataclass
class MixtureRun:
    """A trained GAN, its coverage on ``n_eval`` samples, and the samples themselves."""

    gan: GAN
    coverage: ModeCoverage
    samples: torch.Tensor  # (n_eval, 2)
    history: dict[str, list[float]]


def fit_mixture_gan(
    mixture: str,
    trick: str,
    *,
    seed: int = 0,
    steps: int = 6000,
    batch_size: int = 256,
    decay_at: float = 0.8,
    n_eval: int = 2500,
    device: str = "cpu",
    progress: bool = False,
) -> MixtureRun:
    """Train the mixture's recipe with ``trick`` for ``steps`` generator updates.

    The recipe (see :data:`MIXTURES`): latent N(0, I₂); a ReLU generator and a
    LeakyReLU discriminator of the mixture's widths; the non-saturating loss;
    Adam (β₁ = 0.5) at the mixture's learning rate for both players, divided by
    10 after the fraction ``decay_at`` of the steps; a fresh data set of
    100 × ``batch_size`` points per seed (one epoch = 100 steps).
    """
    if mixture not in MIXTURES:
        raise ValueError(f"mixture={mixture!r} is not one of {sorted(MIXTURES)}.")
    if trick not in TRICKS:
        raise ValueError(f"trick={trick!r} is not one of {sorted(TRICKS)}.")
    if steps < 100 or steps % 100:
        raise ValueError(f"steps={steps} must be a positive multiple of 100 (one epoch).")
    spec = MIXTURES[mixture]
    gan_kwargs, disc_kwargs = TRICKS[trick]
    seed_everything(seed)
    data = spec.sample(100 * batch_size, seed)
    gan = GAN(
        MLPGenerator(2, 2, spec.generator_hidden, norm=spec.generator_norm),
        MLPDiscriminator(2, spec.discriminator_hidden, **disc_kwargs),
        **gan_kwargs,
    )
    epochs = steps // 100
    trainer = Trainer(
        gan, epochs=epochs, batch_size=batch_size, lr=spec.lr, seed=seed, device=device,
        callbacks=[StepDecay(spec.lr, int(decay_at * epochs))], progress=progress,
    )  # fmt: skip
    history = trainer.fit(data)
    gan.eval()
    samples = gan.sample(n_eval).cpu()
    return MixtureRun(gan, mode_coverage(samples, spec.centers, spec.sigma), samples, history)
