"""The GAN chapter's mode-collapse protocol applied to a diffusion model.

The same mixtures (:data:`~companion.evaluation.mode_collapse.MIXTURES`: the 8-mode
ring, σ = 0.01, and the 25-mode grid, σ = 0.05), the same fresh data set of
100 × ``batch_size`` points per seed, the same number of updates (one epoch = 100),
the same learning-rate decay after 80 % of them, and the same score: 2,500
samples, modes with at least 20 high-quality samples, and the share of samples
within 3σ of a centre (:func:`~companion.evaluation.mode_coverage.mode_coverage`).

The model: a :class:`~companion.models.diffusion.DDPM` whose noise predictor is an
:class:`~companion.models.unet.MLPDenoiser`, trained with the simplified loss on the
data divided by its standard deviation (one number per data set; samples are
multiplied back), sampled by ancestral sampling through all T levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from companion._validation import check_positive_int
from companion.evaluation.mode_collapse import MIXTURES
from companion.evaluation.mode_coverage import ModeCoverage, mode_coverage
from companion.models.diffusion import DDPM
from companion.models.unet import MLPDenoiser
from companion.runtime import seed_everything
from companion.training.callbacks import StepDecay
from companion.training.trainer import Trainer


@dataclass
class DiffusionMixtureRun:
    """A trained DDPM, the coverage of its ``n_eval`` samples, the samples (n_eval, 2) in
    data units, the training history and the scale the data was divided by."""

    model: DDPM
    coverage: ModeCoverage
    samples: torch.Tensor
    history: dict[str, list[float]]
    scale: float


def fit_mixture_diffusion(
    mixture: str,
    *,
    seed: int = 0,
    steps: int = 5000,
    batch_size: int = 256,
    n_eval: int = 2500,
    T: int = 1000,
    hidden: tuple[int, ...] = (256, 256, 256),
    lr: float = 1e-3,
    decay_at: float = 0.8,
    ema_decay: float = 0.999,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> DiffusionMixtureRun:
    """Train a DDPM on ``mixture`` ("ring" or "grid") for ``steps`` updates and score it.

    ``steps`` must be a positive multiple of 100 (one epoch of the fixed data set).
    """
    if mixture not in MIXTURES:
        raise ValueError(f"mixture={mixture!r} is not one of {sorted(MIXTURES)}.")
    steps = check_positive_int(steps, name="steps")
    if steps < 100 or steps % 100:
        raise ValueError(f"steps={steps} must be a positive multiple of 100 (one epoch).")
    n_eval = check_positive_int(n_eval, name="n_eval")
    spec = MIXTURES[mixture]
    seed_everything(seed)
    data = spec.sample(100 * batch_size, seed)
    scale = float(data.std())
    model = DDPM(MLPDenoiser(2, hidden), (2,), T=T, ema_decay=ema_decay)
    epochs = steps // 100
    trainer = Trainer(
        model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
        callbacks=[StepDecay(lr, int(decay_at * epochs))], progress=progress,
    )  # fmt: skip
    history = trainer.fit(data / scale)
    generator = torch.Generator().manual_seed(seed)
    samples = model.sample(n_eval, generator=generator, batch_size=n_eval).cpu() * scale
    coverage = mode_coverage(samples, spec.centers, spec.sigma)
    return DiffusionMixtureRun(model, coverage, samples, history, scale)
