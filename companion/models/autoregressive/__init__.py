"""Autoregressive models with exact likelihoods: MADE, PixelCNN and PixelRNN."""

from companion.models.autoregressive.made import MADE
from companion.models.autoregressive.pixelcnn import PixelCNN
from companion.models.autoregressive.pixelrnn import PixelRNN

__all__ = ["MADE", "PixelCNN", "PixelRNN"]
