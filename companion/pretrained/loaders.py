"""Everything that ships inside the package, and the one place that reads it.

``companion/pretrained/weights/``: the trained weights (made by the scripts in
``scripts/``); ``companion/pretrained/records/``: the JSON records that the training
scripts and the benchmarks write and the notebooks show. Each ``load_*`` returns a
model in eval mode, on the CPU, in float32.
"""

from __future__ import annotations

import json
from importlib import resources

import torch

from companion.models.autoencoders import Autoencoder
from companion.models.autoregressive.made import MADE, MADE_HIDDEN
from companion.models.autoregressive.pixelcnn import (
    PIXELCNN_BLOCKS,
    PIXELCNN_CHANNELS,
    PIXELCNN_DILATIONS,
    PixelCNN,
)
from companion.models.autoregressive.pixelrnn import PIXELRNN_HIDDEN, PixelRNN
from companion.models.classifier import FashionClassifier
from companion.models.dcgan import DCGANGenerator
from companion.models.diffusion import DDPM
from companion.models.flows import Flow, fashion_flow
from companion.models.unet import UNet
from companion.models.vae import VAE

# Architectures of the shipped weights (the training scripts build the same models).
DEEP_AUTOENCODER_DIMS = [784, 1000, 500, 250, 30]
VAE_HIDDEN = (512, 256)
VAE_LATENT = 32
DCGAN_LATENT = 100
DCGAN_CHANNELS = 32
DIFFUSION_CONFIG = {"channels": (16, 32, 64), "T": 500, "schedule": "linear"}


def load_deep_autoencoder() -> Autoencoder:
    """The 784-1000-500-250-30 ReLU autoencoder trained on Fashion-MNIST train.

    Produced by ``python scripts/train_deep_autoencoder.py`` (the command and
    the measured errors are in ``companion/pretrained/records/deep_autoencoder.json``);
    stored in float16, returned in float32, in eval mode.
    """
    model = Autoencoder(DEEP_AUTOENCODER_DIMS, "relu", output="bernoulli")
    model.load_state_dict(load_shipped_state("deep_autoencoder_30.pt", "train_deep_autoencoder.py"))
    return model.eval()


def load_vae() -> VAE:
    """The 784-512-256-32 Bernoulli VAE trained on dynamically binarised Fashion-MNIST.

    Produced by ``python scripts/train_vae.py`` (the command, the test −ELBO and
    the importance-weighted NLL are in ``companion/pretrained/records/vae_nll.json``);
    float32, in eval mode.
    """
    model = VAE.mlp(784, VAE_HIDDEN, VAE_LATENT, likelihood="bernoulli")
    model.load_state_dict(load_shipped_state("vae_fashion_mnist.pt", "train_vae.py"))
    return model.eval()


def load_dcgan() -> tuple[DCGANGenerator, torch.Tensor]:
    """The DCGAN generator trained on Fashion-MNIST, and its samples over training.

    Produced by ``python scripts/train_dcgan.py`` (the command, the Fréchet
    distance after every epoch and the training speed are in
    ``companion/pretrained/records/dcgan_training.json``). Returns the generator
    (float32, eval mode, images in [-1, 1]) and the samples it drew at 16 fixed
    codes after every epoch, uint8 of shape (epochs, 16, 1, 28, 28).
    """
    saved = load_shipped_file("dcgan_fashion_mnist.pt", "train_dcgan.py")
    generator = DCGANGenerator(DCGAN_LATENT, DCGAN_CHANNELS)
    generator.load_state_dict({k: v.float() for k, v in saved["generator"].items()})
    return generator.eval(), saved["snapshots"]


def load_diffusion() -> DDPM:
    """The DDPM of the diffusion chapter, trained on Fashion-MNIST scaled to [-1, 1].

    Produced by ``python scripts/train_diffusion.py`` (the command, the machine, the
    minutes and the loss are in ``companion/pretrained/records/diffusion_training.json``):
    a :class:`~companion.models.unet.UNet` with :data:`DIFFUSION_CONFIG`'s widths and
    schedule, holding the moving average of its weights (stored in float16); float32,
    eval mode. ``load_diffusion().sample(16, method="ddim", steps=50)`` draws images.
    """
    saved = load_shipped_file("diffusion_fashion_mnist.pt", "train_diffusion.py")
    config = DIFFUSION_CONFIG
    model = DDPM(UNet(config["channels"]), (1, 28, 28), T=config["T"], schedule=config["schedule"])
    model.network.load_state_dict({k: v.float() for k, v in saved["network"].items()})
    return model.eval()


def load_shipped_file(filename: str, script: str) -> dict:
    """``torch.load`` of ``weights/<filename>`` (``weights_only=True``), on the CPU.

    A missing file raises ``FileNotFoundError`` naming ``scripts/<script>``, which makes it.
    """
    path = resources.files("companion.pretrained") / "weights" / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; create it with `python scripts/{script}`.")
    with resources.as_file(path) as local:
        return torch.load(local, map_location="cpu", weights_only=True)


def load_shipped_state(filename: str, script: str) -> dict[str, torch.Tensor]:
    """A shipped state dict, every tensor as float32 (some are stored in float16)."""
    state = load_shipped_file(filename, script)
    return {key: value.float() for key, value in state.items()}


def record_names() -> list[str]:
    """The names :func:`load_record` accepts: every ``companion/pretrained/records/<name>.json``."""
    folder = resources.files("companion.pretrained") / "records"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def load_record(name: str) -> dict:
    """The shipped record ``companion/pretrained/records/<name>.json`` as a dict.

    ``name`` is a file stem such as ``"gan"`` or ``"vae_nll"`` (see :func:`record_names`).
    Records are written by ``scripts/train_*.py`` (training runs) and ``benchmarks/*.py``
    (benchmark tables); each says what made it. Works from an installed wheel: nothing is
    read from a clone of the repository.
    """
    if not isinstance(name, str) or not name or "/" in name or name.endswith(".json"):
        raise ValueError(f"name={name!r} is not a record name; use one of {record_names()}.")
    path = resources.files("companion.pretrained") / "records" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no shipped record named {name!r}; the package has {record_names()}."
        )
    return json.loads(path.read_text())


CLASSIFIER_WEIGHTS = "fashion_classifier.pt"


def load_fashion_classifier() -> FashionClassifier:
    """The classifier trained by ``python scripts/train_fashion_classifier.py``.

    Stored in float16 in ``companion/pretrained/weights/fashion_classifier.pt``;
    returned in float32, in eval mode. Its test accuracy and the command are
    in ``companion/pretrained/records/fashion_classifier.json``.
    """
    model = FashionClassifier()
    model.load_state_dict(load_shipped_state(CLASSIFIER_WEIGHTS, "train_fashion_classifier.py"))
    return model.eval()


MADE_WEIGHTS = "made_fashion_mnist.pt"


def load_made() -> MADE:
    """The MADE trained by ``python scripts/train_made.py`` on binarised Fashion-MNIST.

    784-1000-784, natural (raster) ordering, one mask, seed 0; float32, in
    eval mode. The test NLL and the command are in
    ``companion/pretrained/records/made_nll.json``.
    """
    model = MADE(784, MADE_HIDDEN)
    model.load_state_dict(load_shipped_state(MADE_WEIGHTS, "train_made.py"))
    return model.eval()


PIXELCNN_WEIGHTS = "pixelcnn_fashion_mnist.pt"


def load_pixelcnn() -> PixelCNN:
    """The PixelCNN trained by ``python scripts/train_pixelcnn.py`` on binarised Fashion-MNIST.

    64 channels, 10 residual blocks with dilations 1, 2, 4, 8, 1 twice; float32, in
    eval mode. The test NLL and the command are in
    ``companion/pretrained/records/pixelcnn_nll.json``.
    """
    model = PixelCNN(PIXELCNN_CHANNELS, PIXELCNN_BLOCKS, dilations=PIXELCNN_DILATIONS)
    model.load_state_dict(load_shipped_state(PIXELCNN_WEIGHTS, "train_pixelcnn.py"))
    return model.eval()


PIXELRNN_WEIGHTS = "pixelrnn_fashion_mnist_14.pt"


def load_pixelrnn() -> PixelRNN:
    """The PixelRNN trained by ``python scripts/train_pixelrnn.py`` on 14×14 Fashion-MNIST.

    One LSTM layer of 128 units; float32, in eval mode. The test NLL and the
    command are in ``companion/pretrained/records/pixelrnn_nll.json``.
    """
    model = PixelRNN(PIXELRNN_HIDDEN)
    model.load_state_dict(load_shipped_state(PIXELRNN_WEIGHTS, "train_pixelrnn.py"))
    return model.eval()


def load_flow(kind: str = "realnvp") -> Flow:
    """The RealNVP (``"realnvp"``) or MAF (``"maf"``) trained by ``python scripts/train_flow.py``
    on uniformly dequantised Fashion-MNIST.

    Architectures in ``companion.models.flows.FASHION_FLOWS``; the model takes rows
    (N, 784) in [0, 1) (``companion.data.dequantize``) and scores them in nats
    (``log_prob``) or 8-bit bits/dim (``loss``). Stored in float16, returned in
    float32, in eval mode. The command, the epochs and the test bits/dim are in
    ``companion/pretrained/records/flow_<kind>.json``.
    """
    model = fashion_flow(kind)
    saved = load_shipped_file(f"flow_{kind}_fashion_mnist.pt", "train_flow.py")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in saved.items()})
    return model.eval()
