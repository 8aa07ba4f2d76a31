"""Companion package of the course book on representation learning and generative models."""

from companion.runtime import resolve_device, seed_everything

__version__ = "0.1.0"

__all__ = ["__version__", "resolve_device", "seed_everything"]
