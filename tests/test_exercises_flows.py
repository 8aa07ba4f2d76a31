"""The flows chapter's exercise checks accept correct answers and explain wrong ones."""

import math
import warnings

import pytest
import torch

from companion.exercises import (
    ExerciseError,
    check_affine_flow_fit,
    check_coupling_inverse,
    check_coupling_layers,
    check_coupling_log_det,
    check_dequantized_bits_per_dim,
)
from companion.models import Flow
from companion.models.flows import AffineCoupling
from companion.training import Trainer


def _rejects(check, answer, message):
    with pytest.raises(ExerciseError, match=message):
        check(answer)


def _passes(check, answer, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nbgrader gives 0 to a cell that warns
        check(answer)
    out = capsys.readouterr()
    assert "correct" in out.out and out.err == ""


# ------------------------------------------------------------ coupling, forward
def coupling(x, mask, net, *, log_det=None, z=None, masked=True):
    s, t = net(mask * x if masked else x)
    free = 1 - mask
    z_value = mask * x + free * (x * torch.exp(s) + t)
    ld = (free * s).sum(1)
    return (z_value if z is None else z(x, mask, s, t)), (
        ld if log_det is None else log_det(s, free)
    )


def test_coupling_log_det_passes_and_agrees_with_the_companion_layer(capsys):
    _passes(check_coupling_log_det, coupling, capsys)
    layer = AffineCoupling(torch.tensor([1.0, 0, 1, 0]), (8,)).double()
    torch.nn.init.normal_(layer.net[-1].weight)  # not the identity it starts as
    x = torch.randn(5, 4, dtype=torch.float64)
    z, ld = coupling(x, layer.mask.double(), layer._scale_shift)
    expected_z, expected_ld = layer(x)
    assert torch.allclose(z, expected_z) and torch.allclose(ld, expected_ld)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            lambda x, m, net: coupling(x, m, net, log_det=lambda s, f: -(f * s).sum(1)),
            r"wrong sign",
        ),
        (lambda x, m, net: coupling(x, m, net, log_det=lambda s, f: s.sum(1)), r"every coordinate"),
        (
            lambda x, m, net: coupling(x, m, net, log_det=lambda s, f: (f * s.exp()).sum(1)),
            r"its log is s, not exp\(s\)",
        ),
        (lambda x, m, net: coupling(x, m, net, log_det=lambda s, f: (f * s).mean(1)), r"averaged"),
        (
            lambda x, m, net: coupling(x, m, net, log_det=lambda s, f: ((1 - f) * s).sum(1)),
            r"scales of the kept coordinates",
        ),
        (
            lambda x, m, net: coupling(x, m, net, log_det=lambda s, f: f * s),
            r"one value per coordinate",
        ),
        (lambda x, m, net: coupling(x, m, net, log_det=lambda s, f: 0 * s.sum(1)), r"triangular"),
        (
            lambda x, m, net: coupling(x, m, net, z=lambda x, m, s, t: x * s.exp() + t),
            r"must pass unchanged",
        ),
        (
            lambda x, m, net: coupling(
                x, m, net, z=lambda x, m, s, t: m * x + (1 - m) * ((x + t) * s.exp())
            ),
            r"Scale first, then shift",
        ),
        (lambda x, m, net: coupling(x, m, net, masked=False), r"net must see only the kept"),
        (lambda x, m, net: coupling(x, m, net)[0], r"return a pair"),
    ],
)
def test_coupling_log_det_names_the_mistake(answer, message):
    _rejects(check_coupling_log_det, answer, message)


# ------------------------------------------------------------ coupling, inverse
def inverse(z, mask, net, *, masked=True, keep=True, order="shift-first", sign=-1.0):
    s, t = net(mask * z if masked else z)
    back = (z - t) * torch.exp(sign * s) if order == "shift-first" else z * torch.exp(-s) - t
    return mask * z + (1 - mask) * back if keep else back


def test_coupling_inverse_passes_and_inverts_the_companion_layer(capsys):
    _passes(check_coupling_inverse, inverse, capsys)
    layer = AffineCoupling(torch.tensor([0.0, 1, 1, 0, 1]), (8,)).double()
    torch.nn.init.normal_(layer.net[-1].weight)
    x = torch.randn(6, 5, dtype=torch.float64)
    z, _ = layer(x)
    assert torch.allclose(inverse(z, layer.mask.double(), layer._scale_shift), x, atol=1e-10)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda z, m, net: inverse(z, m, net, masked=False), r"kept coordinates only, m ⊙ z"),
        (lambda z, m, net: inverse(z, m, net, keep=False), r"copy them from z"),
        (lambda z, m, net: inverse(z, m, net, order="scale-first"), r"removes the shift first"),
        (lambda z, m, net: inverse(z, m, net, sign=1.0), r"multiply by exp\(−s\)"),
        (lambda z, m, net: z, r"Solve z = x ⊙ exp\(s\) \+ t"),
        (lambda z, m, net: inverse(z, m, net)[:, :-1], r"shape of z"),
    ],
)
def test_coupling_inverse_names_the_mistake(answer, message):
    _rejects(check_coupling_inverse, answer, message)


# ------------------------------------------------------------ 8-bit bits/dim
def bits(log_px, D):
    return (-log_px.mean() + D * math.log(256)) / (D * math.log(2))


def test_dequantized_bits_per_dim_agrees_with_the_companion(capsys):
    from companion.models.flows import dequantized_bits_per_dim

    _passes(check_dequantized_bits_per_dim, bits, capsys)
    log_px = torch.randn(9, dtype=torch.float64) * 100 + 1000
    assert bits(log_px, 784).item() == pytest.approx(
        dequantized_bits_per_dim(log_px, 784).mean().item(), rel=1e-12
    )
    assert bits(torch.zeros(3), 784).item() == pytest.approx(8.0, abs=1e-12)  # uniform: 8 bits


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda lp, D: -lp.mean() / (D * math.log(2)), r"add the Jacobian of the scaling"),
        (lambda lp, D: bits(lp, D) - 16, r"wrong sign: y = 256 x spreads"),
        (
            lambda lp, D: (-lp.mean() + D * math.log(255)) / (D * math.log(2)),
            r"scale by 256, not 255",
        ),
        (lambda lp, D: (-lp.mean() + math.log(256)) / (D * math.log(2)), r"D log 256 nats"),
        (lambda lp, D: bits(lp, D) * math.log(2), r"nats per dimension"),
        (lambda lp, D: bits(lp, D) * D, r"bits per image"),
        (lambda lp, D: -bits(lp, D), r"wrong sign: bits per dimension"),
        (lambda lp, D: (-lp + D * math.log(256)) / (D * math.log(2)), r"return one number"),
        (lambda lp, D: bits(lp, D) + 0.5, r"Three steps"),
    ],
)
def test_dequantized_bits_per_dim_names_the_mistake(answer, message):
    _rejects(check_dequantized_bits_per_dim, answer, message)


# ------------------------------------------------------------ a 1-D affine flow fitted
def fit_affine(x, *, log_det=-1.0, steps=1000, constant=True, reduce="mean", unbiased=False):
    """The notebook's solution: full-batch Adam with a decaying step, then the report."""
    shift = torch.zeros((), dtype=torch.float64, requires_grad=True)
    log_scale = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([shift, log_scale], lr=0.1)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.995)

    def log_likelihood(c):
        z = (x - shift) * torch.exp(-log_scale)
        values = -0.5 * z**2 + log_det * log_scale - c * 0.5 * math.log(2 * math.pi)
        return values.mean() if reduce == "mean" else values.sum()

    for _ in range(steps):
        optimizer.zero_grad()
        (-log_likelihood(1.0)).backward()
        optimizer.step()
        schedule.step()
    result = {"shift": shift.item(), "log_scale": log_scale.item()}
    if unbiased:
        result = {"shift": x.mean().item(), "log_scale": math.log(x.std().item())}
        shift.data.fill_(result["shift"])
        log_scale.data.fill_(result["log_scale"])
    with torch.no_grad():
        result["log_likelihood"] = log_likelihood(1.0 if constant else 0.0).item()
    return result


def test_affine_flow_fit_passes_gradient_ascent_and_the_closed_form(capsys):
    _passes(check_affine_flow_fit, fit_affine, capsys)

    def closed_form(x):
        std = x.std(correction=0).item()
        return {
            "shift": x.mean(),
            "log_scale": math.log(std),
            "log_likelihood": -0.5 * math.log(2 * math.pi * std**2) - 0.5,
        }

    _passes(check_affine_flow_fit, closed_form, capsys)


def test_affine_flow_fit_closed_form_is_the_maximum():
    """The reference maximum, tested against brute force on a grid of parameters."""
    x = 1.0 + 2.0 * torch.randn(50, dtype=torch.float64)
    std = x.std(correction=0).item()
    best = -0.5 * math.log(2 * math.pi * std**2) - 0.5
    shifts = torch.linspace(-1, 3, 201, dtype=torch.float64)
    log_scales = torch.linspace(-1, 2, 301, dtype=torch.float64)
    b, a = torch.meshgrid(shifts, log_scales, indexing="ij")
    z = (x[:, None, None] - b) * torch.exp(-a)
    ll = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi) - a).mean(0)
    assert ll.max().item() <= best + 1e-12
    assert ll.max().item() > best - 1e-3


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda x: fit_affine(x, log_det=0.0), r"log-determinant"),
        (lambda x: fit_affine(x, log_det=1.0), r"log-determinant"),
        (lambda x: fit_affine(x, constant=False), r"½ log 2π"),
        (lambda x: fit_affine(x, reduce="sum"), r"return the mean"),
        (lambda x: fit_affine(x, unbiased=True), r"unbiased estimate"),
        (lambda x: fit_affine(x, steps=20), r"fit longer"),
        (
            lambda x: {**fit_affine(x), "log_scale": x.std(correction=0).item()},
            r"return its logarithm",
        ),
        (
            lambda x: {**fit_affine(x), "log_likelihood": fit_affine(x, log_det=0.0, steps=0)},
            r"not 'log_likelihood'|should be a tensor",
        ),
        (
            lambda x: {
                **(r := fit_affine(x)),
                "log_likelihood": r["log_likelihood"] + r["log_scale"],
            },
            r"The difference is log_scale",
        ),
        (lambda x: {"shift": 0.0, "log_scale": 0.0}, r"not 'log_likelihood'"),
        (lambda x: {**fit_affine(x), "shift": float("nan")}, r"diverged"),
    ],
)
def test_affine_flow_fit_names_the_mistake(answer, message):
    _rejects(check_affine_flow_fit, answer, message)


# ------------------------------------------------------------ train and compare: depth
_runs: dict = {}


def realnvp_nll(x_train, x_test, n_layers, seed):
    """The notebook's solution (cached: the wrong answers below reuse its runs)."""
    key = (float(x_train.sum()), n_layers, seed)
    if key not in _runs:
        torch.manual_seed(seed)
        flow = Flow.realnvp(2, n_layers, (32, 32))
        Trainer(flow, epochs=40, batch_size=100, lr=3e-3, seed=seed, device="cpu",
                progress=False).fit(x_train)  # fmt: skip
        flow.eval()
        with torch.no_grad():
            _runs[key] = -flow.log_prob(x_test).mean().item()
    return _runs[key]


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_coupling_layers_passes_a_correct_run(seed, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_coupling_layers(realnvp_nll, seed=seed)
    out = capsys.readouterr()
    assert "correct" in out.out and out.err == ""


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda tr, te, k, s: 1.5, r"for every depth"),
        (lambda tr, te, k, s: realnvp_nll(tr, te, 2, s), r"for every depth"),
        (lambda tr, te, k, s: -realnvp_nll(tr, te, k, s), r"return −log p, not log p"),
        (lambda tr, te, k, s: realnvp_nll(tr, te, 10 - k, s), r"not better by 0.1 nats"),
        (lambda tr, te, k, s: realnvp_nll(tr, te, k, s) + 1.5, r"better by 1 nat at least"),
        (lambda tr, te, k, s: float("nan"), r"diverged"),
    ],
)
def test_coupling_layers_names_the_mistake(answer, message):
    with pytest.raises(ExerciseError, match=message) as info:
        check_coupling_layers(answer, seed=0)
    assert "Flow.realnvp(" not in str(info.value)  # the message does not hand out the answer
