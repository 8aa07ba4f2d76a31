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
        ({"eval_at": [150]}, r"\[150\] are not multiples of 100 in \[100, 100\]"),
        ({"eval_at": [200]}, r"\[200\] are not multiples of 100"),
    ],
)
def test_bad_arguments_are_named(kwargs, words):
    args = {"mixture": "ring", "trick": "vanilla", "steps": 100} | kwargs
    with pytest.raises(ValueError, match=words):
        fit_mixture_gan(args.pop("mixture"), args.pop("trick"), **args)


def test_snapshots_measure_coverage_without_changing_the_training():
    """The coverage after 100 and 200 updates of one run; the run itself is the same as
    one without snapshots, and its 100-update snapshot equals a 100-update run's end
    except for the learning-rate decay (so compare with decay_at=1)."""
    kwargs = {"seed": 1, "batch_size": 32, "n_eval": 200, "decay_at": 1.0}
    plain = fit_mixture_gan("ring", "vanilla", steps=200, **kwargs)
    watched = fit_mixture_gan("ring", "vanilla", steps=200, eval_at=[100, 200], **kwargs)
    assert torch.equal(plain.samples, watched.samples)
    assert sorted(watched.snapshots) == [100, 200]
    short = fit_mixture_gan("ring", "vanilla", steps=100, **kwargs)
    first = watched.snapshots[100]
    assert first.modes == short.coverage.modes
    assert torch.equal(first.counts, short.coverage.counts)
    assert first.high_quality == short.coverage.high_quality
