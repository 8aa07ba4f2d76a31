"""GAN: optimal discriminator, loss gradients, unrolling, layers, mode coverage, training."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from companion import seed_everything
from companion.data import make_ring, ring_centers
from companion.evaluation import mode_coverage
from companion.models import (
    GAN,
    DCGANDiscriminator,
    DCGANGenerator,
    MinibatchDiscrimination,
    MinibatchStdDev,
    MLPDiscriminator,
    MLPGenerator,
    VirtualBatchNorm,
    discriminator_loss,
    generator_loss,
)
from companion.models.gan_layers import update_reference
from companion.training import Trainer


# ------------------------------------------------------------------ optimal discriminator
def _normal_quantiles(mean: float, std: float, n: int) -> torch.Tensor:
    """n stratified draws x_i = μ + σ Φ⁻¹((i + ½)/n): expectations with almost no noise."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return (mean + std * math.sqrt(2) * torch.erfinv(2 * u - 1)).unsqueeze(1)


def _log_normal(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std * math.sqrt(2 * math.pi))


@pytest.mark.parametrize(
    ("alpha", "beta"), [(1.0, 0.0), (0.9, 0.0), (0.8, 0.2)], ids=["plain", "one-sided", "two-sided"]
)
def test_trained_discriminator_matches_closed_form_optimum(alpha, beta):
    """D trained on p_data = N(0, 1) vs p_g = N(1.5, 0.7²) reaches (α p_d + β p_g)/(p_d + p_g)."""
    torch.manual_seed(0)
    data, fake = _normal_quantiles(0.0, 1.0, 4000), _normal_quantiles(1.5, 0.7, 4000)
    disc = nn.Sequential(
        nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1)
    )
    disc = disc.double()
    opt = torch.optim.LBFGS(disc.parameters(), lr=1, max_iter=400, history_size=50,
                            tolerance_grad=1e-10, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = discriminator_loss(disc(data)[:, 0], disc(fake)[:, 0], alpha, beta)
        loss.backward()
        return loss

    opt.step(closure)
    # Compare where both densities have samples; beyond the last sample of one of them the
    # empirical problem is separable and D runs off to 0 or 1.
    x = torch.linspace(-1.0, 2.0, 61, dtype=torch.float64).unsqueeze(1)
    p_d, p_g = _log_normal(x, 0.0, 1.0).exp(), _log_normal(x, 1.5, 0.7).exp()
    expected = ((alpha * p_d + beta * p_g) / (p_d + p_g))[:, 0]
    with torch.no_grad():
        got = torch.sigmoid(disc(x)[:, 0])
    assert (got - expected).abs().max() < 0.02, (got - expected).abs().max()


def test_discriminator_loss_is_minus_the_game_value():
    """With α = 1, β = 0: L_D = -(mean log D(x) + mean log(1 - D(G(z))))."""
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-0.5, 0.7])
    value = torch.sigmoid(real).log().mean() + (1 - torch.sigmoid(fake)).log().mean()
    torch.testing.assert_close(discriminator_loss(real, fake), -value)


def test_gan_uses_alpha_and_beta_from_its_smoothing_arguments():
    """GAN(label_smoothing=s, fake_label=β) trains D towards α = 1 - s on data, β on samples."""
    torch.manual_seed(0)
    gan = _small_gan(label_smoothing=0.1, fake_label=0.05)
    x = torch.randn(16, 2)
    torch.manual_seed(3)
    got = gan.loss(x)["loss"]
    torch.manual_seed(3)
    with torch.no_grad():
        fake = gan.generator(torch.randn(16, 2))
        expected = discriminator_loss(gan.discriminator(x), gan.discriminator(fake), 0.9, 0.05)
    torch.testing.assert_close(got, expected)


# ------------------------------------------------------------------ generator losses
@pytest.mark.parametrize(
    ("kind", "derivative"),
    [("minimax", lambda d: -1 / (1 - d)), ("non_saturating", lambda d: -1 / d)],
)
def test_generator_loss_gradient_with_respect_to_d(kind, derivative):
    """At fixed D values, d loss / d D(G(z_i)) = (1/B) · (-1/(1-D)) or (1/B) · (-1/D)."""
    d = torch.tensor([0.01, 0.2, 0.5, 0.9, 0.99], dtype=torch.float64, requires_grad=True)
    loss = generator_loss(torch.logit(d), kind)
    (grad,) = torch.autograd.grad(loss, d)
    torch.testing.assert_close(grad, derivative(d.detach()) / len(d))


def test_minimax_saturates_where_non_saturating_does_not():
    """Per logit the gradients are -D (minimax) and -(1 - D): tiny vs ≈ -1 when D(G(z)) ≈ 0."""
    logits = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(generator_loss(logits, "minimax"), logits)
    (g_ns,) = torch.autograd.grad(generator_loss(logits, "non_saturating"), logits)
    torch.testing.assert_close(g_mm, -torch.sigmoid(logits.detach()))
    torch.testing.assert_close(g_ns, -(1 - torch.sigmoid(logits.detach())))
    assert abs(g_mm.item()) < 1e-3 < 0.99 < abs(g_ns.item())


# ------------------------------------------------------------------ unrolled GAN
def _twin_gans(unrolled_steps: int, d_lr: float):
    torch.manual_seed(1)
    gen, disc = MLPGenerator(2, 2, (16,)), MLPDiscriminator(2, (16,))
    plain = GAN(gen, disc)
    unrolled = GAN(copy.deepcopy(gen), copy.deepcopy(disc), unrolled_steps=unrolled_steps)
    gans = []
    for gan in (plain, unrolled):  # SGD, so that the update shows the gradient (Adam's first
        opts = {  # step is ±lr whatever the gradient's size)
            "discriminator": torch.optim.SGD(gan.discriminator.parameters(), lr=d_lr),
            "generator": torch.optim.SGD(gan.generator.parameters(), lr=0.5),
        }
        gans.append((gan, opts))
    return gans


def _step(gan, opts, x, seed=5):
    torch.manual_seed(seed)
    return gan.train_step(x, opts)


def test_unrolling_changes_the_generator_but_not_the_real_discriminator():
    x = make_ring(64, sigma=0.05, seed=0)[0]
    (plain, p_opts), (unrolled, u_opts) = _twin_gans(unrolled_steps=3, d_lr=0.1)
    before = [p.clone() for p in unrolled.discriminator.parameters()]
    _step(plain, p_opts, x)
    _step(unrolled, u_opts, x)
    for a, b, old in zip(
        plain.discriminator.parameters(), unrolled.discriminator.parameters(), before, strict=True
    ):
        torch.testing.assert_close(a, b)  # only the ordinary D step moved it
        assert not torch.equal(b, old)
    moved = [
        (a - b).abs().max().item()
        for a, b in zip(plain.generator.parameters(), unrolled.generator.parameters(), strict=True)
    ]
    assert max(moved) > 1e-4, "the unrolled generator step equals the plain one"


def test_unrolling_with_a_frozen_discriminator_is_the_plain_step():
    """With D's learning rate 0 the unrolled copy never moves: same generator update."""
    x = make_ring(64, sigma=0.05, seed=0)[0]
    (plain, p_opts), (unrolled, u_opts) = _twin_gans(unrolled_steps=2, d_lr=0.0)
    out_plain, out_unrolled = _step(plain, p_opts, x), _step(unrolled, u_opts, x)
    torch.testing.assert_close(out_plain["g_loss"], out_unrolled["g_loss"])
    for a, b in zip(plain.generator.parameters(), unrolled.generator.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_unroll_lr_sets_the_look_ahead_step_not_the_real_one():
    """unroll_lr = D's rate reproduces the default; another rate changes only G's update."""
    x = make_ring(64, sigma=0.05, seed=0)[0]
    (_, _), (default, d_opts) = _twin_gans(unrolled_steps=2, d_lr=0.1)
    (_, _), (same, s_opts) = _twin_gans(unrolled_steps=2, d_lr=0.1)
    (_, _), (larger, l_opts) = _twin_gans(unrolled_steps=2, d_lr=0.1)
    same.unroll_lr, larger.unroll_lr = 0.1, 1.0
    for gan, opts in ((default, d_opts), (same, s_opts), (larger, l_opts)):
        _step(gan, opts, x)
    for a, b, c in zip(default.discriminator.parameters(), same.discriminator.parameters(),
                       larger.discriminator.parameters(), strict=True):  # fmt: skip
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)  # the real D takes its ordinary step only

    def gap(one, other):
        pairs = zip(one.generator.parameters(), other.generator.parameters(), strict=True)
        return max((a - b).abs().max().item() for a, b in pairs)

    assert gap(default, same) < 1e-6 and gap(default, larger) > 1e-4
    with pytest.raises(ValueError, match="unroll_lr=0 must be positive"):
        GAN(MLPGenerator(2, 2, (4,)), MLPDiscriminator(2, (4,)), unrolled_steps=1, unroll_lr=0)


# ------------------------------------------------------------------ layers
def test_virtual_batch_norm_uses_only_reference_statistics():
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(3)
    with torch.no_grad():
        vbn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        vbn.bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
    with pytest.raises(RuntimeError, match="update_reference"):
        vbn(torch.randn(4, 3))
    reference = 2 + 3 * torch.randn(50, 3)
    update_reference(vbn, reference)
    x = torch.randn(8, 3) * 10 + 5  # statistics far from the reference's
    mean, var = reference.mean(0), reference.var(0, unbiased=False)
    expected = (x - mean) / (var + vbn.eps).sqrt() * vbn.weight + vbn.bias
    torch.testing.assert_close(vbn(x), expected)
    torch.testing.assert_close(vbn(x[:1]), expected[:1])  # independent of the rest of the batch
    bn = nn.BatchNorm1d(3)
    assert not torch.allclose(bn(x), (vbn(x) - vbn.bias) / vbn.weight, atol=1e-2)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 5)])
def test_virtual_batch_norm_mixes_each_example_into_the_reference(shape):
    torch.manual_seed(1)
    vbn = VirtualBatchNorm(3, include_example=True)
    reference = 2 + 3 * torch.randn(10, *shape[1:])
    update_reference(vbn, reference)
    x = 5 + 10 * torch.randn(*shape)
    out = vbn(x)
    dims = [0] if len(shape) == 2 else [0, 2, 3]
    for i in range(shape[0]):  # closed form: statistics of the reference batch plus example i
        both = torch.cat([reference, x[i : i + 1]])
        mean, var = both.mean(dims, keepdim=True), both.var(dims, unbiased=False, keepdim=True)
        expected = (x[i : i + 1] - mean) / (var + vbn.eps).sqrt()
        torch.testing.assert_close(out[i : i + 1], expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(vbn(x[:1]), out[:1])  # independent of the rest of the batch


def test_virtual_bn_generator_in_a_gan_is_batch_independent():
    torch.manual_seed(0)
    gan = GAN(MLPGenerator(2, 2, (16, 16), norm="virtual"), MLPDiscriminator(2, (16,)))
    z = torch.randn(10, 2)
    with torch.no_grad():
        torch.testing.assert_close(gan.generate(z)[:3], gan.generate(z[:3]))
    out = gan.train_step(make_ring(32, seed=0)[0], gan.configure_optimizers(1e-3))
    assert math.isfinite(float(out["g_loss"]))


def test_minibatch_discrimination_matches_a_loop():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(5, n_kernels=3, kernel_dim=2)
    x = torch.randn(4, 5)
    m = (x @ layer.T).view(4, 3, 2)
    expected = torch.zeros(4, 3)
    for i in range(4):
        for j in range(4):
            if i != j:
                expected[i] += torch.exp(-(m[i] - m[j]).abs().sum(-1))
    out = layer(x)
    assert out.shape == (4, 8)
    torch.testing.assert_close(out[:, :5], x)
    torch.testing.assert_close(out[:, 5:], expected)
    same = layer(x[:1].repeat(6, 1))[:, 5:]  # a collapsed batch: every other row is at distance 0
    torch.testing.assert_close(same, torch.full((6, 3), 5.0))


def test_minibatch_stddev_feature():
    x = torch.tensor([[0.0, 1.0], [2.0, 5.0]])
    out = MinibatchStdDev()(x)
    torch.testing.assert_close(out[:, 2], torch.full((2,), (1.0 + 2.0) / 2))
    assert MinibatchStdDev()(x[:1].repeat(5, 1))[:, 2].abs().max() == 0
    with pytest.raises(ValueError, match="B >= 2"):
        MinibatchStdDev()(x[:1])
    d = MLPDiscriminator(2, (8,), minibatch="stddev")
    assert d(torch.randn(7, 2)).shape == (7,)


def test_dcgan_shapes_and_initialisation():
    torch.manual_seed(0)
    gen, disc = DCGANGenerator(latent_dim=16, channels=32), DCGANDiscriminator(channels=32)
    images = gen(torch.randn(5, 16))
    assert images.shape == (5, 1, 28, 28)
    assert images.abs().max() <= 1
    assert disc(images).shape == (5,)
    assert disc(images.reshape(5, -1)).shape == (5,)
    convs = [m for m in gen.modules() if isinstance(m, nn.ConvTranspose2d)]
    convs += [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert all(abs(m.weight.std().item() - 0.02) < 0.003 for m in convs)
    bns = [m for m in (*gen.modules(), *disc.modules()) if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 3 and all(abs(m.weight.mean().item() - 1) < 0.01 for m in bns)
    assert isinstance(list(disc.net)[1], nn.LeakyReLU)  # no BN on the discriminator's input layer
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in disc.modules())


def test_dcgan_64_by_64_colour_option():
    gen = DCGANGenerator(latent_dim=8, channels=4, image_size=64, image_channels=3)
    disc = DCGANDiscriminator(channels=4, image_size=64, image_channels=3)
    images = gen(torch.randn(3, 8))
    assert images.shape == (3, 3, 64, 64)
    assert disc(images).shape == (3,)
    # the 64×64 layout has four BN layers in G (4×4 ... 32×32) and three in D
    assert sum(isinstance(m, nn.BatchNorm2d) for m in gen.modules()) == 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in disc.modules()) == 3


def test_dcgan_with_virtual_bn_is_batch_independent_inside_a_gan():
    seed_everything(0)
    gan = GAN(DCGANGenerator(8, 4, norm="virtual"), DCGANDiscriminator(4))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gan.generator.modules())
    z = torch.randn(6, 8)
    gan.generator.train()
    alone = gan.generate(z[:1])
    together = gan.generate(z)[:1]
    assert torch.allclose(alone, together, atol=1e-6)


def test_dcgan_bad_sizes_are_named():
    with pytest.raises(ValueError, match="image_size=32"):
        DCGANGenerator(image_size=32)
    with pytest.raises(ValueError, match=r"\(batch, 1, 28, 28\)"):
        DCGANDiscriminator(4)(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(batch, 16\)"):
        DCGANGenerator(16, 4)(torch.randn(2, 3))


# ------------------------------------------------------------------ mode coverage
def test_mode_coverage_on_hand_built_samples():
    centers = ring_centers(8)
    sigma = 0.01
    offset = torch.tensor([2.5 * sigma, 0.0])  # inside 3σ
    samples = torch.cat([
        centers[0] + offset.repeat(20, 1),  # 20 good samples: covered
        centers[1] - offset.repeat(19, 1),  # 19: one short of min_count
        centers[2] + torch.tensor([0.0, 3.5 * sigma]).repeat(30, 1),  # outside 3σ
        torch.zeros(11, 2),  # the centre of the ring: near no mode
    ])  # fmt: skip
    cov = mode_coverage(samples, centers, sigma, min_count=20)
    assert cov.modes == 1
    assert cov.high_quality == pytest.approx(39 / 80)
    assert cov.counts.tolist() == [20, 19, 0, 0, 0, 0, 0, 0]
    assert mode_coverage(samples, centers, sigma, min_count=1).modes == 2
    assert mode_coverage(samples, centers, 2 * sigma, min_count=1).modes == 3


# ------------------------------------------------------------------ training
def test_short_training_on_the_ring_covers_modes():
    """320 steps on the 8-Gaussian ring: from no sample near a mode to several modes."""
    seed_everything(0)
    X, _ = make_ring(1024, seed=0)
    gan = GAN(MLPGenerator(2, 2, (64, 64)), MLPDiscriminator(2, (64, 64)), loss="minimax")
    before = mode_coverage(gan.sample(1000), ring_centers(), 0.1, min_count=10)
    trainer = Trainer(gan, epochs=20, batch_size=64, lr=2e-3, device="cpu", progress=False)
    history = trainer.fit(X)
    after = mode_coverage(gan.sample(1000), ring_centers(), 0.1, min_count=10)
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(history)
    assert before.modes == 0 and before.high_quality < 0.05
    assert after.modes >= 4 and after.high_quality > 0.3, after
    assert set(trainer.evaluate(X)) == {"loss", "g_loss"}


# ------------------------------------------------------------------ errors
def _small_gan(**kwargs) -> GAN:
    return GAN(MLPGenerator(2, 2, (8,)), MLPDiscriminator(2, (8,)), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (
            {"loss": "wasserstein"},
            r"loss='wasserstein' is not one of \('minimax', 'non_saturating'\)",
        ),
        ({"label_smoothing": 1.0}, r"label_smoothing=1.0 must be in \[0, 1\); 0.1"),
        ({"fake_label": 0.95, "label_smoothing": 0.1}, r"fake_label=0.95 must be in \[0, 0.9\)"),
        ({"d_steps": 0}, r"d_steps=0 must be >= 1"),
        ({"unrolled_steps": -1}, r"unrolled_steps=-1 must be >= 0"),
    ],
)
def test_bad_arguments_are_named(kwargs, words):
    with pytest.raises(ValueError, match=words):
        _small_gan(**kwargs)


def test_bad_inputs_are_named():
    gan = _small_gan()
    opts = gan.configure_optimizers(1e-3)
    x = torch.randn(6, 2)
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"GAN got NaN or inf.*1 non-finite value.*index \[2, 1\]"):
        gan.train_step(x, opts)
    with pytest.raises(TypeError, match="GAN expects float inputs, got torch.int64.*to_float"):
        gan.train_step(torch.ones(4, 2, dtype=torch.long), opts)
    with pytest.raises(ValueError, match="cannot tell the latent dimension.*latent_dim="):
        GAN(nn.Sequential(nn.ReLU()), MLPDiscriminator(2, (8,)))
    bad_disc = GAN(MLPGenerator(2, 2, (8,)), nn.Linear(2, 3))
    with pytest.raises(ValueError, match=r"returned shape \(4, 3\).*one logit per example"):
        bad_disc.train_step(torch.randn(4, 2), bad_disc.configure_optimizers(1e-3))
    with pytest.raises(ValueError, match="norm='layer' is not one of"):
        MLPGenerator(norm="layer")
    samples = torch.randn(10, 2)
    with pytest.raises(ValueError, match=r"sigma=0 must be a positive number"):
        mode_coverage(samples, ring_centers(), 0)
    with pytest.raises(ValueError, match=r"samples have 2 columns but centers have 3"):
        mode_coverage(samples, torch.zeros(4, 3), 0.1)
    samples[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"samples contains 1 non-finite value"):
        mode_coverage(samples, ring_centers(), 0.1)


# ------------------------------------------------------------------ save, load, resume
def test_gan_weights_round_trip_and_resume_continue_the_same_run(tmp_path):
    data, _ = make_ring(256, sigma=0.1, seed=0)

    def trainer(epochs, path=None):
        seed_everything(0)
        gan = GAN(MLPGenerator(2, 2, (16,)), MLPDiscriminator(2, (16,)), unrolled_steps=1)
        kwargs = {"checkpoint_path": path} if path else {}
        return Trainer(gan, epochs=epochs, batch_size=64, seed=0, progress=False, **kwargs)

    straight = trainer(3)
    straight.fit(data)
    first = trainer(2, tmp_path / "gan.ckpt")
    first.fit(data)
    resumed = trainer(3, tmp_path / "gan.ckpt")
    resumed.fit(data, resume=True)
    assert resumed.history["g_loss"] == straight.history["g_loss"]
    final, again = straight.model.state_dict(), resumed.model.state_dict()
    assert final.keys() == again.keys()
    assert all(torch.equal(final[k], again[k]) for k in final)

    torch.save(straight.model.state_dict(), tmp_path / "gan.pt")
    seed_everything(1)
    copy_ = GAN(MLPGenerator(2, 2, (16,)), MLPDiscriminator(2, (16,)))
    copy_.load_state_dict(torch.load(tmp_path / "gan.pt", weights_only=True))
    z = torch.randn(5, 2)
    assert torch.equal(copy_.generate(z), straight.model.generate(z))
