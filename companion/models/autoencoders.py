"""The autoencoder family as ``nn.Module``s that know their loss.

Every model has ``encode(x) -> code``, ``decode(code) -> reconstruction``
(in data space: probabilities for ``output="bernoulli"``), ``forward(x)`` and
``loss(batch) -> dict`` with ``"loss"`` and its parts, averaged over the
batch and summed over pixels. A batch is a tensor (B, D) / (B, 1, 28, 28) or
a tuple whose first entry is one (labels are ignored).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from companion._validation import check_model_input, check_positive_int, values_unchecked
from companion.models.layers import conv_decoder, conv_encoder, get_activation

OUTPUTS = ("bernoulli", "gaussian")


def _inputs(batch) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def reconstruction_loss(logits_or_mean: torch.Tensor, x: torch.Tensor, output: str):
    """Per-example reconstruction loss (B,): BCE on logits, or squared error, summed over pixels."""
    if output == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits_or_mean, x, reduction="none").sum(1)
    return (logits_or_mean - x).pow(2).sum(1)


class ReconstructionModel(nn.Module):
    """What every autoencoder shares: ``encode`` checks its input and calls
    ``_encode``; ``decode`` applies the output nonlinearity to ``decode_logits``;
    ``loss`` is the reconstruction loss. Subclasses set ``dims[0]`` (the input
    width) and ``output``, and define ``_encode`` and ``decode_logits``.
    """

    dims: list[int]
    output: str

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """Check a batch (float, width ``dims[0]``, the weights' dtype and device, finite)
        and flatten images to rows (B, D); see :func:`~companion._validation.check_model_input`."""
        like = next(self.parameters(), None)
        return check_model_input(x, self.dims[0], name=type(self).__name__, like=like)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) or images -> codes (B, k)."""
        return self._encode(self._rows(x))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Codes -> reconstructions in data space (probabilities for a Bernoulli output)."""
        out = self.decode_logits(code)
        return torch.sigmoid(out) if self.output == "bernoulli" else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, batch) -> dict[str, torch.Tensor]:
        x = self._rows(_inputs(batch))
        rec = reconstruction_loss(self.decode_logits(self._encode(x)), x, self.output).mean()
        return {"loss": rec, "reconstruction": rec.detach()}

    def check_input(self, x) -> None:
        """Check data as :meth:`loss` does, its NaN/inf scan included even inside
        ``values_checked()``: (B, D), images, or a tuple whose first entry is one.
        The Trainer calls it once per fit, then skips the scan of every batch."""
        with values_unchecked():
            self._rows(_inputs(x))


class Autoencoder(ReconstructionModel):
    """A fully connected autoencoder with a mirrored decoder.

    dims : layer widths from the input to the code, e.g. [784, 1000, 500, 250, 30].
    activation : between hidden layers, a name of :data:`~companion.models.layers.ACTIVATIONS`
        ("relu", "sigmoid", "tanh", "elu", "linear", ...).
    code_activation : on the code layer, from the same names; "linear" by default, as in
        Hinton & Salakhutdinov (2006).
    tied : the decoder uses the transposed encoder weights (the same storage).
    output : "bernoulli" (sigmoid outputs, BCE loss) or "gaussian" (identity, squared error).
    """

    def __init__(
        self,
        dims: Sequence[int],
        activation: str = "relu",
        *,
        tied: bool = False,
        output: str = "bernoulli",
        code_activation: str = "linear",
    ):
        super().__init__()
        if len(dims) < 2:
            raise ValueError(
                f"dims={list(dims)} needs at least two positive widths, e.g. [784, 32]."
            )
        dims = [check_positive_int(d, name=f"dims[{i}]") for i, d in enumerate(dims)]
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r} is not one of {OUTPUTS}.")
        hidden_act = get_activation(activation)
        code_act = get_activation(code_activation, argument="code_activation")
        self.dims, self.tied, self.output = [int(d) for d in dims], tied, output
        self.activation, self.code_activation = activation, code_activation
        pairs = list(zip(self.dims[:-1], self.dims[1:], strict=True))
        self.encoder_layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        if tied:
            self.decoder_biases = nn.ParameterList(nn.Parameter(torch.zeros(a)) for a, _ in pairs)
        else:
            self.decoder_layers = nn.ModuleList(nn.Linear(b, a) for a, b in pairs)
        self._activations = {activation: hidden_act, code_activation: code_act}

    def _act(self, name: str, h: torch.Tensor) -> torch.Tensor:
        return self._activations[name](h)  # modules built once, in __init__

    def _encode(self, h: torch.Tensor) -> torch.Tensor:
        last = len(self.encoder_layers) - 1
        for i, layer in enumerate(self.encoder_layers):
            h = self._act(self.code_activation if i == last else self.activation, layer(h))
        return h

    def decode_logits(self, code: torch.Tensor) -> torch.Tensor:
        """Codes (B, k) -> decoder output before the output nonlinearity, (B, D)."""
        h = code
        n = len(self.encoder_layers)
        for step, i in enumerate(reversed(range(n))):
            if self.tied:
                h = F.linear(h, self.encoder_layers[i].weight.t(), self.decoder_biases[i])
            else:
                h = self.decoder_layers[i](h)
            if step < n - 1:
                h = self._act(self.activation, h)
        return h


class SparseAutoencoder(Autoencoder):
    """An autoencoder whose code is pushed to be sparse.

    penalty="l1": β·Σ_j |h_j| (a Laplace prior on the code);
    penalty="kl": β·Σ_j KL(ρ ‖ ρ̂_j) with ρ̂_j the mean activation of unit j
    over the batch; the code layer is then a sigmoid so that ρ̂_j ∈ (0, 1).
    """

    def __init__(self, dims, activation="relu", *, penalty="kl", rho=0.05, beta=1.0, **kwargs):
        if penalty not in ("l1", "kl"):
            raise ValueError(f"penalty={penalty!r} is not 'l1' or 'kl'.")
        code = kwargs.pop("code_activation", "sigmoid" if penalty == "kl" else "relu")
        if penalty == "kl" and code != "sigmoid":
            raise ValueError(
                f"code_activation={code!r} conflicts with penalty='kl': the KL penalty needs "
                "mean code values in (0, 1), so the code layer is a sigmoid. Leave "
                "code_activation out (or pass 'sigmoid'), or use penalty='l1'."
            )
        super().__init__(dims, activation, code_activation=code, **kwargs)
        self.penalty, self.rho, self.beta = penalty, rho, beta

    def loss(self, batch) -> dict[str, torch.Tensor]:
        x = self._rows(_inputs(batch))
        code = self._encode(x)
        rec = reconstruction_loss(self.decode_logits(code), x, self.output).mean()
        mean_activation = code.mean(0)
        if self.penalty == "kl":
            sparsity = kl_sparsity(self.rho, mean_activation).sum()
        else:
            sparsity = code.abs().sum(1).mean()
        return {
            "loss": rec + self.beta * sparsity,
            "reconstruction": rec.detach(),
            "sparsity": sparsity.detach(),
            "mean_activation": mean_activation.mean().detach(),
        }


def kl_sparsity(rho: float, rho_hat: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """KL(Bernoulli(ρ) ‖ Bernoulli(ρ̂)) per unit: ρ log(ρ/ρ̂) + (1-ρ) log((1-ρ)/(1-ρ̂))."""
    rho_hat = rho_hat.clamp(eps, 1 - eps)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))


class DenoisingAutoencoder(Autoencoder):
    """Reconstruct the clean input from a corrupted copy.

    corruption="gaussian": add N(0, level²) noise; "masking": set each pixel to
    0 with probability ``level``; "salt_pepper": set each pixel with probability
    ``level`` to 0 or 1 (equally likely).
    """

    def __init__(self, dims, activation="relu", *, corruption="masking", level=0.3, **kwargs):
        if corruption not in ("gaussian", "masking", "salt_pepper"):
            raise ValueError(
                f"corruption={corruption!r} is not 'gaussian', 'masking' or 'salt_pepper'."
            )
        if not level >= 0 or (corruption != "gaussian" and level > 1):
            raise ValueError(f"level={level} must be a probability in [0, 1] for {corruption}.")
        super().__init__(dims, activation, **kwargs)
        self.corruption, self.level = corruption, level

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """A corrupted copy of x (same shape)."""
        if self.corruption == "gaussian":
            return x + self.level * torch.randn_like(x)
        hit = torch.rand_like(x) < self.level
        if self.corruption == "masking":
            return x.masked_fill(hit, 0.0)
        values = (torch.rand_like(x) < 0.5).to(x.dtype)
        return torch.where(hit, values, x)

    def loss(self, batch) -> dict[str, torch.Tensor]:
        x = self._rows(_inputs(batch))
        code = self._encode(self.corrupt(x) if self.training else x)
        rec = reconstruction_loss(self.decode_logits(code), x, self.output).mean()
        return {"loss": rec, "reconstruction": rec.detach()}


class ContractiveAutoencoder(Autoencoder):
    """An autoencoder penalising ‖∂h/∂x‖²_F, the encoder Jacobian's squared Frobenius norm.

    For a single sigmoid layer h = σ(Wx + b) the norm has the closed form
    Σ_j (h_j (1 - h_j))² ‖W_j‖²; deeper encoders use torch.func (exact, slower).
    """

    def __init__(self, dims, activation="sigmoid", *, lam=0.1, **kwargs):
        kwargs.setdefault("code_activation", "sigmoid")
        super().__init__(dims, activation, **kwargs)
        self.lam = lam

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder Jacobians, (B, k, D)."""
        return self._jacobian(self._rows(x))

    def _jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder Jacobians (B, k, D) of checked rows x (B, D), by torch.func."""
        single = lambda row: self._encode(row[None])[0]  # noqa: E731
        return torch.func.vmap(torch.func.jacrev(single))(x)

    def jacobian_penalty(self, x: torch.Tensor) -> torch.Tensor:
        """‖J(x)‖²_F per example, (B,)."""
        if len(self.encoder_layers) == 1 and self.code_activation == "sigmoid":
            layer = self.encoder_layers[0]
            h = torch.sigmoid(layer(x))
            return ((h * (1 - h)) ** 2 * layer.weight.pow(2).sum(1)).sum(1)
        return self._jacobian(x).pow(2).sum((1, 2))  # loss has checked x

    def loss(self, batch) -> dict[str, torch.Tensor]:
        x = self._rows(_inputs(batch))
        rec = reconstruction_loss(self.decode_logits(self._encode(x)), x, self.output).mean()
        penalty = self.jacobian_penalty(x).mean()
        return {
            "loss": rec + self.lam * penalty,
            "reconstruction": rec.detach(),
            "contraction": penalty.detach(),
        }

    def tangent_directions(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The k input directions the code is most sensitive to at each x: (B, k, D).

        Right singular vectors of the encoder Jacobian, largest singular value first.
        """
        _, _, Vh = torch.linalg.svd(self.jacobian(x).detach(), full_matrices=False)
        return Vh[:, :k]


class ConvAutoencoder(ReconstructionModel):
    """A convolutional autoencoder for 28×28 single-channel images.

    Encoder: two stride-2 convolutions (28 → 14 → 7) and a linear map to the
    code; the decoder mirrors it with transposed convolutions. Same interface
    as :class:`Autoencoder`; inputs may be (B, 784) rows or (B, 1, 28, 28).
    """

    def __init__(self, code_dim: int = 16, channels: tuple[int, int] = (32, 64), *,
                 output: str = "bernoulli"):  # fmt: skip
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r} is not one of {OUTPUTS}.")
        self.output, self.code_dim, self.dims = output, code_dim, [784, code_dim]
        self.encoder = conv_encoder(code_dim, channels)
        self.decoder = conv_decoder(code_dim, channels)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.view(-1, 1, 28, 28))  # (B, 784) rows -> (B, code_dim)

    def decode_logits(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(code)  # (B, 784)
