import random

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import companion
from companion import plot, resolve_device
from companion.config import fast_mode, pick
from companion.runtime import available_devices


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    """The probes are replaced, so the preference order is tested on any machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device(None) == torch.device(expected)
    assert available_devices() == ["cpu", *(["cuda"] if cuda else []), *(["mps"] if mps else [])]
    for name in ("cuda", "mps"):
        present = {"cuda": cuda, "mps": mps}[name]
        if present:
            assert resolve_device(name) == torch.device(name)
        else:
            with pytest.raises(ValueError, match=rf"{name.upper()} is not available.*'auto'"):
                resolve_device(name)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device='gpu0' is not a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available.*device='auto'"):
            resolve_device("cuda")


def test_seed_everything_seeds_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()  # noqa: NPY002

    companion.seed_everything(11)
    first = draw()
    companion.seed_everything(11)
    assert draw() == first
    with pytest.raises(ValueError, match="seed=-1 is outside"):
        companion.seed_everything(-1)
    with pytest.raises(TypeError, match="seed=1.5 must be an integer"):
        companion.seed_everything(1.5)


def test_seed_everything_leaves_the_environment_alone(monkeypatch):
    """PYTHONHASHSEED only acts when set before Python starts: setting it here would
    claim a reproducibility it does not give (and leak into child processes)."""
    import os

    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    before = dict(os.environ)
    companion.seed_everything(5, deterministic=False)
    assert dict(os.environ) == before


def test_fast_mode(monkeypatch):
    monkeypatch.setenv("COMPANION_FAST", "1")
    assert fast_mode() and pick(full=100, fast=2) == 2
    monkeypatch.setenv("COMPANION_FAST", "0")
    assert not fast_mode() and pick(full=100, fast=2) == 100
    monkeypatch.setenv("COMPANION_FAST", "maybe")
    with pytest.raises(ValueError, match="COMPANION_FAST='maybe' is not understood"):
        fast_mode()


def test_plots_return_figures_without_pyplot_state():
    plt.close("all")
    grid = plot.image_grid(torch.rand(7, 784), ncols=3, titles=list("abcdefg"), row_labels="xyz")
    curves = plot.loss_curves({"loss": [3, 2, 1], "val_loss": [3.5, 2.5, 2], "seconds": [1, 1, 1]})
    emb = plot.embedding(
        torch.randn(50, 2), torch.randint(0, 3, (50,)), class_names=["x", "y", "z"]
    )
    rng = np.random.default_rng(0)
    cont = plot.embedding(rng.normal(size=(20, 2)), rng.random(20))
    for fig in (grid, curves, emb, cont):
        assert isinstance(fig, Figure)
    assert len(grid.axes) == 9  # 3 rows of 3, two left empty
    assert [line.get_label() for line in curves.axes[0].lines] == ["loss", "val_loss"]
    assert plt.get_fignums() == []


def test_plot_errors_are_explained():
    with pytest.raises(ValueError, match="cannot show rows of 10 values as images"):
        plot.image_grid(torch.rand(2, 10))
    with pytest.raises(ValueError, match=r"points must have shape \(n, 2\)"):
        plot.embedding(torch.rand(5, 3))
    with pytest.raises(KeyError, match="history has no"):
        plot.loss_curves({"loss": [1]}, keys=["kl"])


def test_figures_render_as_png_for_notebooks():
    fig = plot.image_grid(torch.rand(4, 28, 28), ncols=2)
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_row_labels_must_match_rows():
    with pytest.raises(ValueError, match="got 2 row labels for 3 rows"):
        plot.image_grid(torch.rand(7, 4, 4), ncols=3, row_labels=["a", "b"])
