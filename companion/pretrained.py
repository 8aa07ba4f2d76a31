"""Weights that ship with the package, so that notebooks run within their time budget."""

from __future__ import annotations

from importlib import resources

import torch

from companion.autoencoders import Autoencoder
from companion.vae import VAE

DEEP_AUTOENCODER_DIMS = [784, 1000, 500, 250, 30]
VAE_HIDDEN = (512, 256)
VAE_LATENT = 32


def _load_state(filename: str, script: str) -> dict[str, torch.Tensor]:
    path = resources.files("companion") / "weights" / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; create it with `python scripts/{script}`.")
    with resources.as_file(path) as local:
        state = torch.load(local, map_location="cpu", weights_only=True)
    return {key: value.float() for key, value in state.items()}


def load_deep_autoencoder() -> Autoencoder:
    """The 784-1000-500-250-30 ReLU autoencoder trained on Fashion-MNIST train.

    Produced by ``python scripts/train_deep_autoencoder.py`` (the command and
    the measured errors are in ``benchmarks/results/deep_autoencoder.json``);
    stored in float16, returned in float32, in eval mode.
    """
    model = Autoencoder(DEEP_AUTOENCODER_DIMS, "relu", output="bernoulli")
    model.load_state_dict(_load_state("deep_autoencoder_30.pt", "train_deep_autoencoder.py"))
    return model.eval()


def load_vae() -> VAE:
    """The 784-512-256-32 Bernoulli VAE trained on dynamically binarised Fashion-MNIST.

    Produced by ``python scripts/train_vae.py`` (the command, the test −ELBO and
    the importance-weighted NLL are in ``benchmarks/results/vae_nll.json``);
    float32, in eval mode.
    """
    model = VAE.mlp(784, VAE_HIDDEN, VAE_LATENT, likelihood="bernoulli")
    model.load_state_dict(_load_state("vae_fashion_mnist.pt", "train_vae.py"))
    return model.eval()
