"""The mode-collapse experiment runs the same recipe for every trick and scores it."""

from __future__ import annotations

import pytest
import torch

from companion.evaluation import MIXTURES, TRICKS, fit_mixture_gan
from companion.models import MinibatchDiscrimination


@pytest.mark.parametrize("trick", list(TRICKS))
def test_every_trick_trains_and_is_scored_on_the_same_recipe(trick):
    run = fit_mixture_gan("ring", trick, seed=0, steps=100, batch_size=32, n_eval=300)
    assert run.samples.shape == (300, 2)
    assert len(run.coverage.counts) == len(MIXTURES["ring"].centers)
    assert int(run.coverage.counts.sum()) == round(run.coverage.high_quality * 300)
    assert len(run.history["d_loss"]) == 1  # one epoch = 100 steps
    has_minibatch = any(isinstance(m, MinibatchDiscrimination) for m in run.gan.modules())
    assert has_minibatch == (trick == "minibatch discrimination")
    assert run.gan.unrolled_steps == (5 if trick.startswith("unrolled") else 0)
    assert run.gan.real_label == (0.8 if trick == "label smoothing" else 1.0)


def test_same_seed_same_samples():
    a = fit_mixture_gan("grid", "vanilla", seed=3, steps=100, batch_size=32, n_eval=50)
    b = fit_mixture_gan("grid", "vanilla", seed=3, steps=100, batch_size=32, n_eval=50)
    assert torch.equal(a.samples, b.samples)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"mixture": "spiral"}, "mixture='spiral' is not one of"),
        ({"trick": "packing"}, "trick='packing' is not one of"),
        ({"steps": 150}, "steps=150 must be a positive multiple of 100"),
    ],
)
def test_bad_arguments_are_named(kwargs, words):
    args = {"mixture": "ring", "trick": "vanilla", "steps": 100} | kwargs
    with pytest.raises(ValueError, match=words):
        fit_mixture_gan(args.pop("mixture"), args.pop("trick"), **args)
