"""Deep models: ``nn.Module``s that know their loss (``loss(batch) -> dict``) and are
trained by :class:`companion.training.Trainer`. Autoregressive models are in
:mod:`companion.models.autoregressive`."""

from companion.models.autoencoders import (
    Autoencoder,
    ContractiveAutoencoder,
    ConvAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
)
from companion.models.autoregressive import MADE, PixelCNN, PixelRNN
from companion.models.classifier import FashionClassifier
from companion.models.dcgan import DCGANDiscriminator, DCGANGenerator
from companion.models.diffusion import DDPM, NoiseSchedule
from companion.models.flows import (
    ActNorm,
    AffineCoupling,
    Flow,
    LogitTransform,
    MaskedAutoregressive,
    Permutation,
    dequantized_bits_per_dim,
)
from companion.models.gan import GAN, discriminator_loss, generator_loss
from companion.models.gan_layers import (
    MinibatchDiscrimination,
    MinibatchStdDev,
    MLPDiscriminator,
    MLPGenerator,
    VirtualBatchNorm,
)
from companion.models.hashing import HashingAutoencoder
from companion.models.rbm import RBM
from companion.models.unet import MLPDenoiser, UNet
from companion.models.vae import VAE, importance_weighted_nll, reparameterize

__all__ = [
    "Autoencoder",
    "ConvAutoencoder",
    "SparseAutoencoder",
    "DenoisingAutoencoder",
    "ContractiveAutoencoder",
    "HashingAutoencoder",
    "RBM",
    "VAE",
    "importance_weighted_nll",
    "reparameterize",
    "GAN",
    "discriminator_loss",
    "generator_loss",
    "MLPGenerator",
    "MLPDiscriminator",
    "MinibatchDiscrimination",
    "MinibatchStdDev",
    "VirtualBatchNorm",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "FashionClassifier",
    "MADE",
    "PixelCNN",
    "PixelRNN",
    "DDPM",
    "NoiseSchedule",
    "UNet",
    "MLPDenoiser",
    "Flow",
    "AffineCoupling",
    "MaskedAutoregressive",
    "ActNorm",
    "Permutation",
    "LogitTransform",
    "dequantized_bits_per_dim",
]
