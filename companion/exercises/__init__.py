"""Checks that students run on their own answers to the book's code exercises.

Each ``check_*`` function calls the student's function on data it makes,
compares the result with an independent reference, and either prints a short
confirmation or raises :class:`ExerciseError` explaining in plain words what
is wrong (shape, value off by how much) with a hint. Never a bare
``AssertionError``.

The experiment checks (one per chapter: ``check_isomap_neighbours``, ``check_heldout_k``,
``check_heldout_components``, ``check_denoising_level``, ``check_beta_sweep``,
``check_d_steps``, ``check_made_hidden``, ``check_annealing_range``,
``check_coupling_layers``) take a function that
trains or fits a model (or runs a sampler) for one value of a setting and returns what it
measured; they sweep the setting on data of their own, drawn from ``seed``, and judge the
measurements: a trend, or a level that a correct run reaches whatever the seed.

One module per chapter; this package re-exports every check.
"""

from companion.exercises._common import ExerciseError
from companion.exercises.autoencoders import (
    check_bce_loss,
    check_denoising_level,
    check_hamming_distances,
    check_kl_sparsity,
    check_linear_autoencoder,
    check_masking_noise,
    check_optimal_denoiser,
    check_precision_at_k,
    check_sigmoid_jacobian_norm,
)
from companion.exercises.clustering import (
    check_e_step,
    check_heldout_components,
    check_kmeans_assignment,
    check_kmeans_update,
)
from companion.exercises.diffusion import (
    check_annealing_range,
    check_ddim_step,
    check_dsm_loss,
    check_q_sample,
    check_reverse_step,
)
from companion.exercises.evaluation import (
    check_bits_per_dim,
    check_chain_rule_log_prob,
    check_made_hidden,
    check_made_masks,
    check_masked_conv_mask,
)
from companion.exercises.evaluation_samples import (
    check_knn_precision,
    check_nearest_distances,
    check_parzen_log_likelihood,
)
from companion.exercises.flows import (
    check_affine_flow_fit,
    check_coupling_inverse,
    check_coupling_layers,
    check_coupling_log_det,
    check_dequantized_bits_per_dim,
)
from companion.exercises.gans import (
    check_d_steps,
    check_discriminator_loss,
    check_gaussian_frechet,
    check_js_divergence,
    check_minibatch_features,
    check_mode_count,
    check_optimal_discriminator,
)
from companion.exercises.manifolds import check_isomap_neighbours
from companion.exercises.pca import (
    check_heldout_k,
    check_pca_projection,
    check_reconstruction_error,
)
from companion.exercises.vae import (
    check_active_units,
    check_beta_sweep,
    check_gaussian_kl,
    check_gaussian_log_likelihood,
    check_iwae_bound,
    check_reparameterize,
    check_score_function_gradient,
)

__all__ = [
    "ExerciseError",
    "check_annealing_range",
    "check_ddim_step",
    "check_dsm_loss",
    "check_q_sample",
    "check_reverse_step",
    "check_active_units",
    "check_affine_flow_fit",
    "check_coupling_inverse",
    "check_coupling_layers",
    "check_coupling_log_det",
    "check_dequantized_bits_per_dim",
    "check_bce_loss",
    "check_beta_sweep",
    "check_bits_per_dim",
    "check_chain_rule_log_prob",
    "check_d_steps",
    "check_denoising_level",
    "check_discriminator_loss",
    "check_e_step",
    "check_gaussian_frechet",
    "check_gaussian_kl",
    "check_gaussian_log_likelihood",
    "check_hamming_distances",
    "check_heldout_components",
    "check_heldout_k",
    "check_isomap_neighbours",
    "check_iwae_bound",
    "check_js_divergence",
    "check_kl_sparsity",
    "check_kmeans_assignment",
    "check_kmeans_update",
    "check_knn_precision",
    "check_linear_autoencoder",
    "check_made_hidden",
    "check_made_masks",
    "check_masked_conv_mask",
    "check_masking_noise",
    "check_minibatch_features",
    "check_mode_count",
    "check_nearest_distances",
    "check_optimal_denoiser",
    "check_optimal_discriminator",
    "check_parzen_log_likelihood",
    "check_pca_projection",
    "check_precision_at_k",
    "check_reconstruction_error",
    "check_reparameterize",
    "check_score_function_gradient",
    "check_sigmoid_jacobian_norm",
]
