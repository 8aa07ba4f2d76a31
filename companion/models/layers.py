"""Building blocks shared by the models: convolutional stacks for 28×28 images, MLP and
convolutional encoders/decoders, and reading the input width of a user's network.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from companion._validation import check_positive_int


def conv_encoder(out_features: int, channels: tuple[int, int] = (32, 64)) -> nn.Sequential:
    """(B, 1, 28, 28) -> (B, out_features): two stride-2 convolutions (28 → 14 → 7), then linear."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),   # (c1, 14, 14)
        nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # (c2, 7, 7)
        nn.Flatten(), nn.Linear(c2 * 49, out_features),
    )  # fmt: skip


def conv_decoder(in_features: int, channels: tuple[int, int] = (32, 64)) -> nn.Sequential:
    """(B, in_features) -> (B, 784): the mirror of :func:`conv_encoder`, transposed convolutions."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Linear(in_features, c2 * 49), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
        nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # (c1, 14, 14)
        nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),               # (1, 28, 28)
        nn.Flatten(),
    )  # fmt: skip


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


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "linear": nn.Identity,
}
"""The one vocabulary of activation names, shared by every model that takes one."""


def get_activation(name: str, *, argument: str = "activation") -> nn.Module:
    """A new activation module for ``name``, one of :data:`ACTIVATIONS` (``"linear"``: identity).

    An unknown name raises a ``ValueError`` that names the argument (``argument``, e.g.
    ``"code_activation"``) and lists the valid names.
    """
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"{argument}={name!r} is not one of {tuple(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


def _mlp(widths: Sequence[int], activation: str) -> nn.Sequential:
    get_activation(activation)  # reject an unknown name before building anything
    widths = [check_positive_int(w, name=f"layer width {i}") for i, w in enumerate(widths)]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(get_activation(activation))
    return nn.Sequential(*layers)


def mlp_encoder(
    input_dim: int = 784, hidden: Sequence[int] = (400,), latent_dim: int = 20,
    activation: str = "relu",
) -> nn.Sequential:  # fmt: skip
    """input_dim → hidden… → 2·latent_dim, e.g. 784-400-(20+20) (Kingma & Welling, 2014)."""
    return _mlp([input_dim, *hidden, 2 * latent_dim], activation)


def mlp_decoder(
    latent_dim: int = 20, hidden: Sequence[int] = (400,), output_dim: int = 784,
    activation: str = "relu",
) -> nn.Sequential:  # fmt: skip
    """latent_dim → hidden… → output_dim; pass the encoder's hidden widths reversed to mirror it."""
    return _mlp([latent_dim, *hidden, output_dim], activation)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (28 → 14 → 7) and a linear map to 2·latent_dim.

    Takes rows (B, 784); ``input_dim`` tells the VAE what width to expect.
    """

    input_dim = 784

    def __init__(self, latent_dim: int = 20, channels: tuple[int, int] = (32, 64)):
        super().__init__()
        self.net = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)), *conv_encoder(2 * latent_dim, channels)
        )

    def forward(self, x):
        return self.net(x)  # (B, 784) -> (B, 2·latent_dim)


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: linear to (c2, 7, 7), two transposed convolutions."""

    def __init__(self, latent_dim: int = 20, channels: tuple[int, int] = (32, 64)):
        super().__init__()
        self.net = conv_decoder(latent_dim, channels)

    def forward(self, z):
        return self.net(z)  # (B, latent_dim) -> (B, 784)
