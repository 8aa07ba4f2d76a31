"""Reading the input width of a network the user built, for models that wrap it."""

from __future__ import annotations

from torch import nn


def input_width(module: nn.Module, attribute: str) -> int | None:
    """``module.<attribute>`` if set, else the input width of its first layer if that is linear.

    Returns None when neither tells (the first layer with weights is not an
    ``nn.Linear``, or there is none); callers then ask for the width.
    """
    width = getattr(module, attribute, None)
    if width is not None:
        return int(width)
    for layer in module.modules():
        if isinstance(layer, nn.Linear) and not isinstance(layer, nn.LazyLinear):
            return layer.in_features
        if any(True for _ in layer.parameters(recurse=False)):
            return None  # the first layer with weights is not linear: width unknown
    return None
