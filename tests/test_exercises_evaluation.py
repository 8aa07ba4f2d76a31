"""The evaluation chapter's exercise checks accept correct answers and explain wrong ones."""

import math

import pytest
import torch
import torch.nn.functional as F

from companion.evaluation import ParzenWindow, precision_recall
from companion.exercises import (
    ExerciseError,
    check_bits_per_dim,
    check_chain_rule_log_prob,
    check_knn_precision,
    check_made_masks,
    check_masked_conv_mask,
    check_nearest_distances,
    check_parzen_log_likelihood,
)
from companion.models import MADE
from companion.models.autoregressive.pixelcnn import MaskedConv2d


def _rejects(check, answer, message):
    with pytest.raises(ExerciseError, match=message):
        check(answer)


# ------------------------------------------------------------------ bits/dim
def bits(nll, shape):
    return nll.mean() / (math.prod(shape) * math.log(2))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda nll, s: bits(nll, s) * math.log(2), r"nats per dimension: divide by ln 2"),
        (lambda nll, s: nll.mean() / math.log(2), r"bits per image: divide by the D = 784"),
        (lambda nll, s: nll.mean(), r"nats per image"),
        (lambda nll, s: nll.mean() / (math.prod(s[1:]) * math.log(2)), r"H·W = 64 only"),
        (lambda nll, s: -bits(nll, s), r"wrong sign"),
        (lambda nll, s: nll / (math.prod(s) * math.log(2)), r"return one number"),
    ],
)
def test_bits_per_dim(answer, message, capsys):
    check_bits_per_dim(bits)
    assert "correct" in capsys.readouterr().out
    _rejects(check_bits_per_dim, answer, message)


# ------------------------------------------------------- chain rule, FVSBN
def fvsbn(x, W, b, lower=-1, naive=False, transpose=False):
    Wm = torch.tril(W, lower)
    a = x @ (Wm if transpose else Wm.T) + b
    if naive:
        p = torch.sigmoid(a)
        return (x * p.log() + (1 - x) * (1 - p).log()).sum(1)
    return (x * F.logsigmoid(a) + (1 - x) * F.logsigmoid(-a)).sum(1)


def test_fvsbn_reference_is_a_normalised_distribution():
    """The check's answer, tested against a closed form: Σ_x p(x) = 1 over all 2^D vectors."""
    D = 5
    x = ((torch.arange(2**D)[:, None] >> torch.arange(D)) & 1).double()
    W, b = torch.randn(D, D, dtype=torch.float64), torch.randn(D, dtype=torch.float64)
    assert fvsbn(x, W, b).exp().sum().item() == pytest.approx(1.0, abs=1e-12)
    assert fvsbn(x, W, b, lower=0).exp().sum().item() != pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            lambda x, W, b: fvsbn(x, W, b, lower=x.shape[1]),
            r"used all of W.*below the diagonal, W\[d, j\] for j < d",
        ),
        (lambda x, W, b: fvsbn(x, W, b, lower=0), r"kept the diagonal"),
        (
            lambda x, W, b: fvsbn(x, W, b, transpose=True),
            r"used column d of W for the logit of x_d; it uses row d",
        ),
        (lambda x, W, b: fvsbn(x, W, b) / x.shape[1], r"averaged over the D variables"),
        (lambda x, W, b: fvsbn(x, W, b, naive=True), r"inf or NaN for logits up to ±60"),
        (lambda x, W, b: fvsbn(x, W, b)[:, None].expand(-1, 2), r"one value per row"),
        (lambda x, W, b: fvsbn(x, W, b) + 0.1, r"sums to 1.105 over them, not 1"),
        (lambda x, W, b: fvsbn(x.flip(1), W, b.flip(0)), r"sums to 1 over them.*not this one"),
    ],
)
def test_chain_rule_log_prob(answer, message, capsys):
    check_chain_rule_log_prob(fvsbn)
    assert "correct" in capsys.readouterr().out
    _rejects(check_chain_rule_log_prob, answer, message)


# -------------------------------------------------------------- MADE masks
def made_masks(degrees, hidden_op=torch.ge, out_op=torch.gt, output_degrees=None):
    masks = [
        hidden_op(above[:, None], below[None, :])
        for below, above in zip(degrees[:-1], degrees[1:], strict=True)
    ]
    out = degrees[0] if output_degrees is None else output_degrees(degrees[0])
    return masks + [out_op(out[:, None], degrees[-1][None, :])]


def test_made_masks_match_the_companion_model(capsys):
    """The accepted answer gives MADE's own masks (one hidden layer, a random order)."""
    check_made_masks(made_masks)
    assert "correct" in capsys.readouterr().out
    model = MADE(6, (9,), ordering="random", seed=3)
    inputs = torch.empty(6, dtype=torch.long)
    inputs[model.ordering] = torch.arange(1, 7)
    hidden = model.layers[0].mask.sum(1).long()  # a unit of degree m sees the m first inputs
    masks = made_masks([inputs, hidden])
    for mask, layer in zip(masks, model.layers, strict=True):
        assert torch.equal(mask.float(), layer.mask)


def test_made_masks_give_an_autoregressive_network():
    """A property, not a copy: outputs reach exactly the inputs earlier in the ordering."""
    D = 7
    inputs = torch.randperm(D) + 1
    hidden = [torch.arange(1, D).repeat(2), torch.arange(1, D)]  # every degree present
    path = torch.eye(D)
    for mask in made_masks([inputs, *hidden]):
        path = mask.float() @ path
    assert torch.equal(path > 0, inputs[:, None] > inputs[None, :])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda deg: made_masks(deg, hidden_op=torch.gt), r"mask 0 .* m\(b\) > m\(a\)"),
        (lambda deg: made_masks(deg, out_op=torch.ge), r"mask 2 .* strict m_0\[d\] > m\(a\)"),
        (
            lambda deg: made_masks(deg, output_degrees=lambda m: torch.arange(1, len(m) + 1)),
            r"random order.*mask 3 .* not its index d \+ 1",
        ),
        (lambda deg: [m.T for m in made_masks(deg)], r"transposed: nn.Linear's weight"),
        (lambda deg: made_masks(deg)[:-1], r"returned 2 masks, expected 3"),
        (
            lambda deg: made_masks(deg)[:-1] + [torch.ones(len(deg[0]), len(deg[-1]))],
            r"pairs are connected although input j comes at or after d",
        ),
    ],
)
def test_made_masks(answer, message):
    _rejects(check_made_masks, answer, message)


# ------------------------------------------------------ masked convolution
def conv_mask(k, mask_type):
    c = k // 2
    mask = torch.ones(k, k)
    mask[c, c + (mask_type == "B") :] = 0
    mask[c + 1 :] = 0
    return mask


def test_masked_conv_mask_matches_the_companion_layer(capsys):
    check_masked_conv_mask(conv_mask)
    check_masked_conv_mask(lambda k, t: conv_mask(k, t)[None, None].numpy())
    assert "correct" in capsys.readouterr().out
    for mask_type in "AB":
        assert torch.equal(MaskedConv2d(1, 1, 7, mask_type).mask[0, 0], conv_mask(7, mask_type))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda k, t: conv_mask(k, "B" if t == "A" else "A"), r"swapped the types"),
        (lambda k, t: conv_mask(k, t).flip(1), r"left to right"),
        (lambda k, t: conv_mask(k, t).T, r"column-by-column"),
        (lambda k, t: torch.cat([conv_mask(k, t)[: k // 2 + 1], torch.ones(k // 2, k)]), r"below"),
        (lambda k, t: conv_mask(k, t)[:-1], r"shape \(2, 3\), expected \(3, 3\)"),
    ],
)
def test_masked_conv_mask(answer, message):
    _rejects(check_masked_conv_mask, answer, message)


# ------------------------------------------------------------------ Parzen
def parzen(x, s, sigma, constant=True, mean=True, var=None):
    var = sigma**2 if var is None else var
    log_k = -0.5 * torch.cdist(x, s).pow(2) / var
    if constant:
        log_k = log_k - 0.5 * x.shape[1] * math.log(2 * math.pi * var)
    return torch.logsumexp(log_k, 1) - (math.log(s.shape[0]) if mean else 0.0)


def test_parzen_check_agrees_with_the_companion_estimator(capsys):
    check_parzen_log_likelihood(parzen)
    assert "correct" in capsys.readouterr().out
    x, s = torch.rand(4, 10, dtype=torch.float64), torch.rand(20, 10, dtype=torch.float64)
    window = ParzenWindow(sigmas=[0.3]).fit(s, X_val=x)
    assert torch.allclose(window.score_samples(x), parzen(x, s, 0.3), atol=1e-9)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda x, s, sig: parzen(x, s, sig, constant=False), r"normalising constant"),
        (lambda x, s, sig: parzen(x, s, sig, mean=False), r"too large by log n = log 30"),
        (lambda x, s, sig: parzen(x, s, sig, var=sig), r"σ where σ² belongs"),
        (
            lambda x, s, sig: (
                -0.5 * torch.cdist(x, s).pow(2) / sig**2
                - 0.5 * x.shape[1] * math.log(2 * math.pi * sig**2)
            ).mean(1),
            r"mean of the log-kernels",
        ),
        (
            lambda x, s, sig: (
                parzen(x, s, sig).exp().log()
                if x.shape[1] < 10
                else (torch.exp(-0.5 * torch.cdist(x, s).pow(2) / sig**2).mean(1)).log()
            ),
            r"d = 784 .* -inf or NaN.*logsumexp",
        ),
        (lambda x, s, sig: parzen(s, x, sig), r"one value per sample"),
    ],
)
def test_parzen_log_likelihood(answer, message):
    _rejects(check_parzen_log_likelihood, answer, message)


# ------------------------------------------------------ nearest distances
def nearest(q, r):
    return torch.cdist(q, r).min(1).values


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda q, r: nearest(q, r) ** 2, r"squared distances"),
        (lambda q, r: torch.cdist(q, r).argmin(1), r"indices of the nearest rows"),
        (lambda q, r: torch.cdist(q, r).mean(1), r"mean distance"),
        (lambda q, r: torch.cdist(q, r).max(1).values, r"farthest row"),
        (lambda q, r: torch.cdist(q, r), r"minimum over the reference rows"),
        (lambda q, r: nearest(r, q), r"one value per reference row"),
    ],
)
def test_nearest_distances(answer, message, capsys):
    check_nearest_distances(nearest)
    assert "correct" in capsys.readouterr().out
    _rejects(check_nearest_distances, answer, message)


# ------------------------------------------------------------- precision
def knn_precision(real, generated, k, self_included=False):
    radii = torch.cdist(real, real).sort(1).values[:, k - 1 if self_included else k]
    return (torch.cdist(generated, real) <= radii[None]).any(1).double().mean()


def test_knn_precision_agrees_with_the_companion(capsys):
    check_knn_precision(knn_precision)
    assert "correct" in capsys.readouterr().out
    real, fake = torch.randn(40, 3, dtype=torch.float64), torch.randn(30, 3, dtype=torch.float64)
    precision, recall = precision_recall(real, fake + 0.5, k=3)
    assert knn_precision(real, fake + 0.5, 3).item() == pytest.approx(precision)
    assert knn_precision(fake + 0.5, real, 3).item() == pytest.approx(recall)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda r, g, k: knn_precision(g, r, k), r"That is recall"),
        (lambda r, g, k: knn_precision(r, g, k, self_included=True), r"own nearest neighbour"),
        (lambda r, g, k: knn_precision(r, g, k) * len(g), r"a count; divide by the 40"),
        (lambda r, g, k: knn_precision(r, g, k)[None].expand(2), r"return one number"),
    ],
)
def test_knn_precision(answer, message):
    _rejects(check_knn_precision, answer, message)
