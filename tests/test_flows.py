"""Normalizing flows, checked against autograd, numerical integration and closed forms.

Each layer's log|det J| is compared with the log-determinant of the full
Jacobian that autograd computes; the 2-D densities are integrated on a grid;
the 8-bit bits/dim of PPCA and the Gaussian mixture computed by
``dequantized_bits_per_dim`` on [0, 1) data are compared with the same models
fitted and scored on the 0..256 scale directly, where no conversion is needed.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.classical import PCA, GaussianMixture
from companion.data import UniformDequantizer, dequantize, make_two_moons
from companion.models import (
    ActNorm,
    AffineCoupling,
    Flow,
    LogitTransform,
    MaskedAutoregressive,
    Permutation,
    dequantized_bits_per_dim,
)
from companion.models.flows import (
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    fashion_flow,
)
from companion.models.likelihoods import nats_to_bits_per_dim
from companion.training import Trainer

F64 = torch.float64


def randomise(module: torch.nn.Module, scale: float = 0.3, seed: int = 0) -> torch.nn.Module:
    """float64, every parameter perturbed (the flows start as the identity), eval mode."""
    module = module.double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=F64))
    return module.eval()


def full_jacobian(layer, x: torch.Tensor) -> torch.Tensor:
    """∂z/∂x (D, D) of one row x (D,), J[i, j] = ∂z_i/∂x_j."""
    return torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], x)


def rows(n: int, d: int, seed: int = 1, *, unit: bool = False) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if unit:
        return torch.rand(n, d, generator=generator, dtype=F64) * 0.98 + 0.01
    return torch.randn(n, d, generator=generator, dtype=F64)


def layers_and_inputs():
    """(name, layer in float64 with random weights, data it accepts)."""
    actnorm = ActNorm(6).double().train()
    actnorm(rows(50, 6, seed=5) * 3 + 1)  # the data-dependent start, then perturbed
    return [
        ("coupling-alternating", randomise(AffineCoupling(alternating_mask(6), (16, 16))),
         rows(4, 6)),
        ("coupling-checkerboard", randomise(AffineCoupling(checkerboard_mask(4, 4, 1), (16,))),
         rows(4, 16)),
        ("coupling-channel", randomise(AffineCoupling(channel_mask(2, 2, 3), (16,))),
         rows(4, 12)),
        ("maf-natural", randomise(MaskedAutoregressive(6, (24,))), rows(4, 6)),
        ("maf-random", randomise(MaskedAutoregressive(6, (24, 24), ordering=[3, 0, 5, 1, 4, 2],
                                                      seed=2)), rows(4, 6)),
        ("actnorm", randomise(actnorm), rows(4, 6)),
        ("permutation", Permutation(6, seed=3).double(), rows(4, 6)),
        ("reversal", Permutation(6).double(), rows(4, 6)),
        ("logit", LogitTransform(0.05).double(), rows(4, 6, unit=True)),
        ("realnvp", randomise(Flow.realnvp(6, 4, (16,))), rows(4, 6)),
        ("realnvp-image-logit", randomise(Flow.realnvp(16, 3, (16,), image_shape=(4, 4),
                                                       logit=0.05)), rows(4, 16, unit=True)),
        ("maf-flow", randomise(Flow.maf(6, 3, (16,))), rows(4, 6)),
        ("maf-flow-logit", randomise(Flow.maf(6, 2, (16,), logit=0.01)), rows(4, 6, unit=True)),
    ]  # fmt: skip


CASES = layers_and_inputs()
IDS = [name for name, _, _ in CASES]


@pytest.mark.parametrize("name, layer, x", CASES, ids=IDS)
def test_log_det_equals_autograd_log_det(name, layer, x):
    z, logdet = layer(x)
    assert z.shape == x.shape and logdet.shape == (len(x),)
    for i in range(len(x)):
        sign, reference = torch.linalg.slogdet(full_jacobian(layer, x[i]))
        assert sign != 0
        torch.testing.assert_close(logdet[i], reference, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name, layer, x", CASES, ids=IDS)
def test_inverse_undoes_forward(name, layer, x):
    z, _ = layer(x)
    assert (layer.inverse(z) - x).abs().max() < 1e-5
    assert (layer(layer.inverse(z))[0] - z).abs().max() < 1e-5


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["realnvp", "maf"]),
       scale=st.floats(0.05, 0.6))  # fmt: skip
def test_inverse_and_log_det_hold_for_random_weights(seed, kind, scale):
    dim = 5
    flow = Flow.realnvp(dim, 4, (12,)) if kind == "realnvp" else Flow.maf(dim, 3, (12,))
    flow = randomise(flow, scale, seed)
    x = rows(3, dim, seed=seed + 1)
    z, logdet = flow(x)
    assert (flow.inverse(z) - x).abs().max() < 1e-5
    reference = torch.linalg.slogdet(full_jacobian(flow, x[0]))[1]
    torch.testing.assert_close(logdet[0], reference, rtol=1e-8, atol=1e-8)


def test_maf_jacobian_is_triangular_under_its_ordering():
    ordering = [4, 1, 6, 0, 3, 7, 2, 5]
    layer = randomise(MaskedAutoregressive(8, (40, 40), ordering=ordering, seed=1))
    position = torch.empty(8, dtype=torch.long)
    position[torch.tensor(ordering)] = torch.arange(8)
    for x in rows(3, 8):
        J = full_jacobian(layer, x)  # J[i, j] = ∂z_i/∂x_j
        later = position[None, :] > position[:, None]  # x_j comes after z_i's variable
        assert torch.all(J[later] == 0), "z_i depends on a later variable"
        earlier = position[None, :] < position[:, None]
        assert int((J[earlier] != 0).sum()) > earlier.sum() // 2, "hardly any dependence"
        assert torch.all(J.diagonal() > 0)


def test_coupling_leaves_the_masked_half_unchanged():
    mask = checkerboard_mask(4, 4)
    layer = randomise(AffineCoupling(mask, (16,)))
    x = rows(5, 16)
    z, _ = layer(x)
    kept = mask.bool()
    assert torch.equal(z[:, kept], x[:, kept])
    assert (z[:, ~kept] - x[:, ~kept]).abs().min() > 0


def test_masks():
    assert alternating_mask(5).tolist() == [1, 0, 1, 0, 1]
    assert checkerboard_mask(2, 3, 1).tolist() == [0, 1, 0, 1, 0, 1]
    assert channel_mask(2, 1, 2).tolist() == [1, 1, 0, 0]
    assert channel_mask(2, 1, 2, 1).tolist() == [0, 0, 1, 1]


def test_new_layers_start_as_the_identity():
    x = rows(4, 6).float()
    for flow in (Flow.realnvp(6, 2, (8,), actnorm=False), Flow.maf(6, 2, (8,), actnorm=False)):
        z, logdet = flow.eval()(x)
        assert torch.equal(z, x) and torch.equal(logdet, torch.zeros(4))


def test_actnorm_starts_from_the_first_batch_statistics():
    layer = ActNorm(3).train()
    x = torch.randn(500, 3) * torch.tensor([0.5, 2.0, 7.0]) + torch.tensor([1.0, -3.0, 0.0])
    z, logdet = layer(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(logdet, -torch.log(x.std(0)).sum().expand(500), rtol=1e-4, atol=0)
    before = layer.loc.clone()
    layer(x + 10)  # started once: a second batch changes nothing
    assert torch.equal(layer.loc, before)


# ------------------------------------------------------------ normalisation
@pytest.mark.parametrize("kind", ["realnvp", "maf"])
def test_2d_density_integrates_to_one(kind):
    """Midpoint rule on [-12, 12]², 1201² cells; tolerance 1e-4. The weights are perturbed
    mildly (0.15) so that the mass beyond the box is negligible: with larger perturbations
    some draws put visible mass beyond ±20, which a box cannot count. The density is far
    from the base's (its peak is checked), and a log-determinant off by a constant or a
    sign moves the integral by far more than the tolerance."""
    # the initial weights are seeded too, so that the test does not depend on test order:
    # some initial weights give tails with mass beyond the box (1.6e-3 for the MAF from
    # seed 0), which the midpoint rule cannot count
    torch.manual_seed(1)
    flow = Flow.realnvp(2, 4, (16,)) if kind == "realnvp" else Flow.maf(2, 4, (16,))
    flow = randomise(flow, 0.15, seed=4)
    n, half = 1201, 12.0
    h = 2 * half / n
    centres = -half + h * (torch.arange(n, dtype=F64) + 0.5)
    grid = torch.cartesian_prod(centres, centres)
    with torch.no_grad():
        density = flow.log_prob(grid).exp()
    mass = float(density.sum() * h * h)
    assert abs(mass - 1) < 1e-4, f"{kind}: the density integrates to {mass}"
    assert float(density.max()) > 1.2 / (2 * math.pi), "the flow is still near its base"


def test_2d_density_on_the_unit_square_counts_the_logit_jacobian():
    """With a logit transform (α > 0) first, the model's density on [0, 1]² is the inner
    flow's density pushed through a map onto the box [logit α, logit(1 - α)]², so it
    integrates to the inner flow's mass on that box (< 1: the model is sub-normalised and
    its NLL an upper bound), which we integrate separately, and which sampling estimates.
    Midpoint rule, 1200² cells each; tolerance 1e-5 between the two integrals, 5 standard
    errors for the sampled fraction."""
    flow = randomise(Flow.realnvp(2, 4, (16,), logit=0.05), 0.15, seed=6)
    inner = Flow(list(flow.layers)[1:], 2)
    n, edge = 1200, math.log(0.95 / 0.05)
    cells = (torch.arange(n, dtype=F64) + 0.5) / n
    with torch.no_grad():
        unit = float(flow.log_prob(torch.cartesian_prod(cells, cells)).exp().mean())
        box_cells = -edge + 2 * edge * cells
        box = float(inner.log_prob(torch.cartesian_prod(box_cells, box_cells)).exp().mean())
    box *= (2 * edge) ** 2
    assert abs(unit - box) < 1e-5, f"mass on the unit square {unit}, on the box {box}"
    assert box < 0.9, "this test wants a model with visible mass outside the box"
    x = flow.sample(100_000, generator=torch.Generator().manual_seed(0))
    inside = float(((x >= 0) & (x <= 1)).all(1).double().mean())
    assert abs(inside - unit) < 5 * math.sqrt(unit * (1 - unit) / 100_000)
    assert abs(flow.unit_cube_mass(100_000, seed=1).mean - unit) < 5 * math.sqrt(
        unit * (1 - unit) / 100_000
    )


def test_samples_are_inverse_images_of_scaled_normal_draws():
    flow = randomise(Flow.maf(3, 2, (8,)))
    draws = flow.sample(4, temperature=0.5, generator=torch.Generator().manual_seed(0))
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    torch.testing.assert_close(draws, flow.inverse(0.5 * z))


# ------------------------------------------------------------ bits per dimension
def test_uniform_model_on_the_8_bit_cube_gives_8_bits_per_dim():
    """A model uniform on [0, 256)^D has density 1 on [0, 1)^D: log p(x) = 0."""
    for dim in (1, 3, 784):
        value = dequantized_bits_per_dim(torch.zeros(5, dtype=F64), dim)
        assert torch.all((value - 8).abs() <= 8 * 2**-50), value
    assert dequantized_bits_per_dim(0.0, 784, levels=2) == pytest.approx(1, abs=1e-15)
    # levels=None scores x itself: the plain conversion
    assert dequantized_bits_per_dim(-2.0, 4, levels=None) == nats_to_bits_per_dim(2.0, 4)


def eight_bit_data(n: int = 400, d: int = 12, seed: int = 0) -> torch.Tensor:
    """uint8 rows (n, d) with correlated pixels: a rank-3 signal through a sigmoid."""
    g = torch.Generator().manual_seed(seed)
    signal = torch.randn(n, 3, generator=g) @ torch.randn(3, d, generator=g)
    return (torch.sigmoid(signal) * 255).round().to(torch.uint8)


def test_ppca_bits_per_dim_agrees_with_its_score_samples_on_the_8_bit_scale():
    y_int = eight_bit_data()
    x = dequantize(y_int, generator=torch.Generator().manual_seed(1), dtype=F64)  # [0, 1)
    y = 256 * x  # the same dequantised images on [0, 256)
    unit = PCA(n_components=3).fit(x)
    grey = PCA(n_components=3).fit(y)  # PPCA is affine-equivariant: the same model
    via_function = dequantized_bits_per_dim(unit.score_samples(x), 12)
    direct = -grey.score_samples(y) / (12 * math.log(2))  # a density on [0, 256)^D
    torch.testing.assert_close(via_function, direct, rtol=1e-9, atol=1e-9)
    assert float(via_function.mean()) < 8  # the correlations help


def test_gmm_bits_per_dim_agrees_with_its_score_samples_on_the_8_bit_scale():
    y_int = eight_bit_data(d=6, seed=2)
    x = dequantize(y_int, generator=torch.Generator().manual_seed(3), dtype=F64)
    y = 256 * x
    settings = {"n_components": 3, "covariance_type": "full", "random_state": 0, "max_iter": 200}
    unit = GaussianMixture(reg_covar=1e-6, **settings).fit(x)
    grey = GaussianMixture(reg_covar=1e-6 * 256**2, **settings).fit(y)
    via_function = dequantized_bits_per_dim(unit.score_samples(x), 6)
    direct = -grey.score_samples(y) / (6 * math.log(2))
    torch.testing.assert_close(via_function, direct, rtol=1e-7, atol=1e-7)


def test_dequantize_adds_noise_within_each_grey_level():
    images = torch.randint(0, 256, (50, 7, 7), dtype=torch.uint8)
    x = dequantize(images, generator=torch.Generator().manual_seed(0))
    assert x.shape == images.shape and x.dtype == torch.float32
    assert torch.equal((x * 256).floor().to(torch.uint8), images)
    assert 0 <= float(x.min()) and float(x.max()) < 1
    noise = x * 256 - images.float()
    assert abs(float(noise.mean()) - 0.5) < 0.02  # uniform on [0, 1): mean ½
    assert UniformDequantizer()(images).shape == (50, 49)
    # in float32, 255 + u rounds up to 256 for u near 1; the values must stay below 1
    top = dequantize(torch.full((1_000_000,), 255, dtype=torch.uint8),
                     generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert float(top.max()) < 1 and torch.equal((top * 256).floor(), torch.full_like(top, 255))


def test_jensen_dequantised_log_likelihood_bounds_the_discrete_one():
    """For a 1-D Gaussian on [0, 1), log P(k) = log ∫_{k/L}^{(k+1)/L} p ≥ E_u log p((k+u)/L)
    - log L (the bound the chapter proves), checked with the exact CDF."""
    levels, mu, sigma = 8, 0.4, 0.2
    normal = torch.distributions.Normal(torch.tensor(mu, dtype=F64), torch.tensor(sigma, dtype=F64))
    u = (torch.arange(20_000, dtype=F64) + 0.5) / 20_000
    for k in range(levels):
        log_mass = torch.log(normal.cdf(torch.tensor((k + 1) / levels, dtype=F64))
                             - normal.cdf(torch.tensor(k / levels, dtype=F64)))  # fmt: skip
        bound = normal.log_prob((k + u) / levels).mean() - math.log(levels)
        assert bound <= log_mass
        nats = -bound
        assert dequantized_bits_per_dim(-nats + math.log(levels), 1, levels=levels) == (
            pytest.approx(float(nats) / math.log(2))
        )


# ------------------------------------------------------------ training
@pytest.mark.parametrize("kind", ["realnvp", "maf"])
def test_trainer_fits_a_flow_that_beats_the_best_gaussian_on_the_two_moons(kind):
    """The maximum-likelihood Gaussian (closed form) is the best a linear flow can do."""
    x = make_two_moons(600, noise=0.05, seed=0)[0].float()
    centred = x - x.mean(0)
    gaussian = torch.distributions.MultivariateNormal(x.mean(0), centred.T @ centred / len(x))
    gaussian_nll = float(-gaussian.log_prob(x).mean())
    flow = Flow.realnvp(2, 4, (32,)) if kind == "realnvp" else Flow.maf(2, 4, (32,))
    Trainer(flow, epochs=20, batch_size=100, lr=3e-3, seed=0, progress=False).fit(x)
    with torch.no_grad():
        nll = float(-flow.eval().log_prob(x).mean())
    assert nll < gaussian_nll - 0.25, f"{kind}: NLL {nll:.3f}, Gaussian {gaussian_nll:.3f} nats"


def test_fashion_flows_build_with_the_shipped_architectures():
    for kind in ("realnvp", "maf"):
        flow = fashion_flow(kind)
        x = dequantize(torch.randint(0, 256, (2, 784), dtype=torch.uint8))
        out = flow.loss(x)
        assert set(out) == {"loss", "bits_per_dim"} and out["loss"].ndim == 0


# ------------------------------------------------------------ bad input
def test_bad_inputs_are_refused_with_the_fix():
    flow = Flow.realnvp(4, 2, (8,))
    with pytest.raises(ValueError, match=r"shape \(batch, 4\).*got shape \(3, 5\)"):
        flow.log_prob(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="NaN"):
        flow.log_prob(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(TypeError, match="float inputs"):
        flow.log_prob(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 1\].*dequantize"):
        Flow.realnvp(4, 2, (8,), logit=0.05).log_prob(torch.full((2, 4), 1.5))
    with pytest.raises(TypeError, match=r"uint8.*\(x \* 255\)\.round\(\)"):
        dequantize(torch.rand(2, 4))
    with pytest.raises(ValueError, match=r"\[0, 256\), got \[0, 300\]; these are not 8-bit"):
        dequantize(torch.tensor([[0, 300]]))
    with pytest.raises(ValueError, match="temperature=0"):
        flow.sample(2, temperature=0)
    with pytest.raises(ValueError, match="0s and 1s"):
        AffineCoupling(torch.ones(4))
    with pytest.raises(ValueError, match="channels=1 must be >= 2; a one-channel"):
        channel_mask(1, 28, 28)
    with pytest.raises(ValueError, match="image_shape=.* has 16 pixels, not dim=9"):
        Flow.realnvp(9, 2, image_shape=(4, 4))
    with pytest.raises(ValueError, match="alpha=0.5"):
        LogitTransform(0.5)
    with pytest.raises(ValueError, match="kind='glow'"):
        fashion_flow("glow")
    with pytest.raises(ValueError, match="at least one layer"):
        Flow([], 3)
