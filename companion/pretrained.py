"""Weights that ship with the package, so that notebooks run within their time budget."""

from __future__ import annotations

import torch

from companion.autoencoders import Autoencoder
from companion.dcgan import DCGANGenerator
from companion.shipped import load_record, load_shipped_file, load_shipped_state, record_names
from companion.vae import VAE

__all__ = [
    "load_deep_autoencoder",
    "load_vae",
    "load_dcgan",
    "load_record",
    "record_names",
]

DEEP_AUTOENCODER_DIMS = [784, 1000, 500, 250, 30]
VAE_HIDDEN = (512, 256)
VAE_LATENT = 32
DCGAN_LATENT = 100
DCGAN_CHANNELS = 32


def load_deep_autoencoder() -> Autoencoder:
    """The 784-1000-500-250-30 ReLU autoencoder trained on Fashion-MNIST train.

    Produced by ``python scripts/train_deep_autoencoder.py`` (the command and
    the measured errors are in ``companion/records/deep_autoencoder.json``);
    stored in float16, returned in float32, in eval mode.
    """
    model = Autoencoder(DEEP_AUTOENCODER_DIMS, "relu", output="bernoulli")
    model.load_state_dict(load_shipped_state("deep_autoencoder_30.pt", "train_deep_autoencoder.py"))
    return model.eval()


def load_vae() -> VAE:
    """The 784-512-256-32 Bernoulli VAE trained on dynamically binarised Fashion-MNIST.

    Produced by ``python scripts/train_vae.py`` (the command, the test −ELBO and
    the importance-weighted NLL are in ``companion/records/vae_nll.json``);
    float32, in eval mode.
    """
    model = VAE.mlp(784, VAE_HIDDEN, VAE_LATENT, likelihood="bernoulli")
    model.load_state_dict(load_shipped_state("vae_fashion_mnist.pt", "train_vae.py"))
    return model.eval()


def load_dcgan() -> tuple[DCGANGenerator, torch.Tensor]:
    """The DCGAN generator trained on Fashion-MNIST, and its samples over training.

    Produced by ``python scripts/train_dcgan.py`` (the command, the Fréchet
    distance after every epoch and the training speed are in
    ``companion/records/dcgan_training.json``). Returns the generator
    (float32, eval mode, images in [-1, 1]) and the samples it drew at 16 fixed
    codes after every epoch, uint8 of shape (epochs, 16, 1, 28, 28).
    """
    saved = load_shipped_file("dcgan_fashion_mnist.pt", "train_dcgan.py")
    generator = DCGANGenerator(DCGAN_LATENT, DCGAN_CHANNELS)
    generator.load_state_dict({k: v.float() for k, v in saved["generator"].items()})
    return generator.eval(), saved["snapshots"]
