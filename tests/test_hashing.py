"""Semantic hashing: binary codes that saturate, a straight-through threshold, retrieval metrics."""

from __future__ import annotations

import math

import pytest
import torch

from companion.models import HashingAutoencoder
from companion.models.hashing import (
    binary_codes,
    hamming_retrieval,
    precision_at_k,
    precision_recall_by_radius,
)
from companion.training import Trainer


def prototypes(n=600, d=24, n_classes=6, flip=0.1, seed=0):
    """Noisy copies of random binary prototypes: (n, d) floats in {0, 1} and (n,) labels."""
    g = torch.Generator().manual_seed(seed)
    centres = (torch.rand(n_classes, d, generator=g) < 0.5).float()
    labels = torch.randint(n_classes, (n,), generator=g)
    flips = (torch.rand(n, d, generator=g) < flip).float()
    return (centres[labels] - flips).abs(), labels


def train(model, x, epochs=12):
    Trainer(model, epochs=epochs, batch_size=64, lr=1e-2, device="cpu", progress=False).fit(x)
    return model.eval()


def undecided(model, x):
    with torch.no_grad():
        code = model.encode(x)
    return ((code > 0.1) & (code < 0.9)).float().mean().item()


def test_noise_before_the_sigmoid_saturates_the_code():
    x, _ = prototypes()
    torch.manual_seed(0)
    noisy = train(HashingAutoencoder([24, 32, 8], binarize="noise", noise_std=4.0), x)
    torch.manual_seed(0)
    plain = train(HashingAutoencoder([24, 32, 8], binarize="noise", noise_std=0.0), x)
    assert undecided(noisy, x) < 0.1, undecided(noisy, x)
    assert undecided(plain, x) > 2 * undecided(noisy, x), (undecided(plain, x), undecided(noisy, x))
    # balanced bits: every bit is on for part of the data, off for the rest
    share_on = binary_codes(noisy, x).float().mean(0)
    assert share_on.min() > 0.05 and share_on.max() < 0.95, share_on


def test_eval_mode_is_deterministic_and_training_mode_is_not():
    x, _ = prototypes(n=50)
    model = HashingAutoencoder([24, 8], binarize="noise", noise_std=4.0)
    with torch.no_grad():
        assert not torch.equal(model.train().loss(x)["loss"], model.loss(x)["loss"])
        model.eval()
        assert torch.equal(model.loss(x)["loss"], model.loss(x)["loss"])
        torch.testing.assert_close(model(x), model.decode(model.encode(x)))


def test_straight_through_forward_is_binary_with_the_sigmoids_gradient():
    x, _ = prototypes(n=64)
    torch.manual_seed(0)
    model = HashingAutoencoder([24, 8], binarize="straight_through", balanced=False)
    bits = binary_codes(model, x).float()
    with torch.no_grad():
        # the decoder sees exactly the thresholded code, in training and in eval
        torch.testing.assert_close(model.train()(x), model.decode(bits))
        torch.testing.assert_close(model.eval()(x), model.decode(bits))
    model.train().loss(x)["loss"].backward()
    weight_grad = model.encoder_layers[0].weight.grad  # (8, 24)
    assert weight_grad is not None and weight_grad.abs().sum() > 0, (
        "no gradient reached the encoder"
    )
    # by hand: the loss's gradient at the hard code, times the sigmoid's slope, times x
    hard = bits.clone().requires_grad_()
    rec = torch.nn.functional.binary_cross_entropy_with_logits(
        model.decode_logits(hard), x, reduction="none"
    )
    grad_hard = torch.autograd.grad(rec.sum(1).mean(), hard)[0]  # (64, 8)
    with torch.no_grad():
        soft = model.encode(x)
    torch.testing.assert_close(weight_grad, (grad_hard * soft * (1 - soft)).T @ x)


def test_balanced_codes_centre_on_the_batch_mean_and_keep_a_running_mean():
    x, _ = prototypes(n=40)
    model = HashingAutoencoder([24, 8], binarize="straight_through")
    raw = HashingAutoencoder([24, 8], binarize="straight_through", balanced=False)
    raw.load_state_dict(model.state_dict())
    with torch.no_grad():
        raw_logits = raw.code_logits(x)  # (40, 8), uncentred
        model.train().loss(x)
    torch.testing.assert_close(model.code_mean, 0.1 * raw_logits.mean(0))
    with torch.no_grad():
        torch.testing.assert_close(model.code_logits(x), raw_logits - model.code_mean)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"binarize": "sign"}, "binarize='sign' is not one of"),
        ({"noise_std": -1.0}, "noise_std=-1.0 must be a finite number >= 0"),
        ({"noise_std": math.nan}, "noise_std=nan must be"),
        ({"noise_std": True}, "noise_std=True must be"),
        ({"activation": "swish"}, "activation='swish' is not one of"),
    ],
)
def test_bad_arguments_are_named_in_the_message(kwargs, words):
    kwargs = {"dims": [24, 8], **kwargs}
    with pytest.raises(ValueError, match=words):
        HashingAutoencoder(**kwargs)
    with pytest.raises(ValueError, match="needs at least two positive widths"):
        HashingAutoencoder([24])


def test_nan_input_raises_a_clear_error():
    model = HashingAutoencoder([24, 8])
    x = torch.rand(5, 24)
    x[2, 3] = math.nan
    for call in (model.encode, model.loss, model):
        with pytest.raises(ValueError, match="NaN or inf"):
            call(x)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, 24\)"):
        model.encode(torch.rand(5, 23))


def brute_force_precisions(codes_db, labels_db, codes_q, labels_q, k):
    """Precision@1..k and precision/recall within each radius, by plain loops."""
    m, bits = codes_q.shape[0], codes_db.shape[1]
    p_at = torch.zeros(k, dtype=torch.float64)
    prec, rec = [[] for _ in range(bits + 1)], [[] for _ in range(bits + 1)]
    for q in range(m):
        dist = [int((codes_q[q] != d).sum()) for d in codes_db]
        order = sorted(range(len(dist)), key=lambda j: (dist[j], j))
        same = [int(labels_db[j] == labels_q[q]) for j in range(len(dist))]
        for cut in range(1, k + 1):
            p_at[cut - 1] += sum(same[j] for j in order[:cut]) / cut / m
        for r in range(bits + 1):
            inside = [j for j in range(len(dist)) if dist[j] <= r]
            if inside:
                prec[r].append(sum(same[j] for j in inside) / len(inside))
            rec[r].append(sum(same[j] for j in inside) / max(1, sum(same)))
    precision = torch.tensor([sum(p) / len(p) if p else math.nan for p in prec])
    recall = torch.tensor([sum(r) / len(r) for r in rec])
    return p_at, precision.double(), recall.double()


def test_retrieval_metrics_equal_brute_force():
    g = torch.Generator().manual_seed(1)
    codes_db = (torch.rand(120, 6, generator=g) < 0.5).to(torch.uint8)
    codes_q = (torch.rand(15, 6, generator=g) < 0.5).to(torch.uint8)
    labels_db, labels_q = (
        torch.randint(3, (120,), generator=g),
        torch.randint(3, (15,), generator=g),
    )
    p_at, precision, recall = brute_force_precisions(codes_db, labels_db, codes_q, labels_q, 10)
    index, _ = hamming_retrieval(codes_db, codes_q, 10)
    torch.testing.assert_close(precision_at_k(labels_db[index], labels_q), p_at)
    radii, prec, rec = precision_recall_by_radius(codes_db, labels_db, codes_q, labels_q)
    assert radii.tolist() == list(range(7))
    torch.testing.assert_close(prec, precision, equal_nan=True)
    torch.testing.assert_close(rec, recall)
    assert rec[-1] == 1 and prec[-1] == (labels_db[None] == labels_q[:, None]).double().mean()
    with pytest.raises(ValueError, match="one label per code"):
        precision_recall_by_radius(codes_db, labels_db[:-1], codes_q, labels_q)
    with pytest.raises(ValueError, match="one row per query"):
        precision_at_k(labels_db[index][:-1], labels_q)
