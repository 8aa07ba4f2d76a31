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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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
    """A trained GAN, its coverage on ``n_eval`` samples, and the samples themselves;
    ``snapshots`` maps a number of generator updates to the coverage measured then."""

    gan: GAN
    coverage: ModeCoverage
    samples: torch.Tensor  # (n_eval, 2)
    history: dict[str, list[float]]
    snapshots: dict[int, ModeCoverage] = field(default_factory=dict)


class _CoverageSnapshots:
    """Trainer callback: the coverage of ``n_eval`` samples after chosen numbers of
    generator updates (one epoch = 100). The random state is saved and restored around
    the sampling, so a run with snapshots trains exactly as one without."""

    def __init__(self, gan: GAN, spec: Mixture, at: Sequence[int], n_eval: int):
        self.gan, self.spec, self.at, self.n_eval = gan, spec, set(at), n_eval
        self.snapshots: dict[int, ModeCoverage] = {}

    def on_epoch_end(self, trainer, epoch: int, logs) -> None:  # noqa: ARG002 - protocol
        steps = 100 * (epoch + 1)
        if steps not in self.at:
            return
        state = torch.get_rng_state()
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        self.gan.eval()
        with torch.no_grad():
            samples = self.gan.sample(self.n_eval).cpu()
        self.gan.train()
        torch.set_rng_state(state)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        self.snapshots[steps] = mode_coverage(samples, self.spec.centers, self.spec.sigma)


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
    eval_at: Sequence[int] = (),
    d_steps: int = 1,
) -> MixtureRun:
    """Train the mixture's recipe with ``trick`` for ``steps`` generator updates.

    The recipe (see :data:`MIXTURES`): latent N(0, I₂); a ReLU generator and a
    LeakyReLU discriminator of the mixture's widths; the non-saturating loss;
    Adam (β₁ = 0.5) at the mixture's learning rate for both players, divided by
    10 after the fraction ``decay_at`` of the steps; a fresh data set of
    100 × ``batch_size`` points per seed (one epoch = 100 steps). ``eval_at`` lists
    numbers of updates (multiples of 100, at most ``steps``) after which the coverage
    is also measured, in ``MixtureRun.snapshots``, without changing the training.
    ``d_steps`` discriminator updates come before each generator update (``GAN(d_steps=...)``);
    ``steps`` still counts generator updates.
    """
    if mixture not in MIXTURES:
        raise ValueError(f"mixture={mixture!r} is not one of {sorted(MIXTURES)}.")
    if trick not in TRICKS:
        raise ValueError(f"trick={trick!r} is not one of {sorted(TRICKS)}.")
    if steps < 100 or steps % 100:
        raise ValueError(f"steps={steps} must be a positive multiple of 100 (one epoch).")
    bad = [a for a in eval_at if a % 100 or not 100 <= a <= steps]
    if bad:
        raise ValueError(
            f"eval_at={list(eval_at)}: {bad} are not multiples of 100 in [100, {steps}]."
        )
    spec = MIXTURES[mixture]
    gan_kwargs, disc_kwargs = TRICKS[trick]
    seed_everything(seed)
    data = spec.sample(100 * batch_size, seed)
    gan = GAN(
        MLPGenerator(2, 2, spec.generator_hidden, norm=spec.generator_norm),
        MLPDiscriminator(2, spec.discriminator_hidden, **disc_kwargs),
        **{"d_steps": d_steps, **gan_kwargs},
    )
    epochs = steps // 100
    snapshots = _CoverageSnapshots(gan, spec, eval_at, n_eval)
    trainer = Trainer(
        gan, epochs=epochs, batch_size=batch_size, lr=spec.lr, seed=seed, device=device,
        callbacks=[StepDecay(spec.lr, int(decay_at * epochs)), snapshots], progress=progress,
    )  # fmt: skip
    history = trainer.fit(data)
    gan.eval()
    samples = gan.sample(n_eval).cpu()
    coverage = mode_coverage(samples, spec.centers, spec.sigma)
    return MixtureRun(gan, coverage, samples, history, snapshots.snapshots)
