"""Weights that ship with the package, so that notebooks run within their time budget."""

from __future__ import annotations

from importlib import resources

import torch

from companion.autoencoders import Autoencoder

DEEP_AUTOENCODER_DIMS = [784, 1000, 500, 250, 30]


def load_deep_autoencoder() -> Autoencoder:
    """The 784-1000-500-250-30 ReLU autoencoder trained on Fashion-MNIST train.

    Produced by ``python scripts/train_deep_autoencoder.py`` (the command and
    the measured errors are in ``benchmarks/results/deep_autoencoder.json``);
    stored in float16, returned in float32, in eval mode.
    """
    path = resources.files("companion") / "weights" / "deep_autoencoder_30.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; create it with `python scripts/train_deep_autoencoder.py`."
        )
    with resources.as_file(path) as local:
        state = torch.load(local, map_location="cpu", weights_only=True)
    model = Autoencoder(DEEP_AUTOENCODER_DIMS, "relu", output="bernoulli")
    model.load_state_dict({key: value.float() for key, value in state.items()})
    return model.eval()
