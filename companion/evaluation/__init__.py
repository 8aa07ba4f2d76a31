"""Evaluating generative models: exact and bounded likelihoods, the Fréchet distance,
nearest-neighbour checks (memorisation, precision and recall), Parzen windows, and
mode coverage on the GAN chapter's mixtures."""

from companion.evaluation.diffusion_coverage import fit_mixture_diffusion
from companion.evaluation.frechet import (
    FrechetScorer,
    frechet_distance,
    frechet_distance_gaussians,
    gaussian_statistics,
)
from companion.evaluation.likelihood import (
    Estimate,
    bits_per_dim,
    log_likelihoods,
    nats_to_bits_per_dim,
    nll_nats,
    vae_nll,
)
from companion.evaluation.mode_collapse import (
    MIXTURES,
    TRICKS,
    fit_mixture_gan,
)
from companion.evaluation.mode_coverage import mode_coverage
from companion.evaluation.neighbours import (
    memorisation_check,
    nearest_distances,
    precision_recall,
)
from companion.evaluation.parzen import ParzenWindow

__all__ = [
    "Estimate",
    "bits_per_dim",
    "log_likelihoods",
    "nats_to_bits_per_dim",
    "nll_nats",
    "vae_nll",
    "FrechetScorer",
    "frechet_distance",
    "frechet_distance_gaussians",
    "gaussian_statistics",
    "memorisation_check",
    "nearest_distances",
    "precision_recall",
    "ParzenWindow",
    "mode_coverage",
    "MIXTURES",
    "TRICKS",
    "fit_mixture_gan",
    "fit_mixture_diffusion",
]
