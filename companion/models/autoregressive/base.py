"""What MADE, PixelCNN and PixelRNN share: the template :class:`AutoregressiveModel`
(input checks, log_prob, loss, sample) and :class:`AutoregressiveImageModel`
(image shapes, complete), binary inputs, Bernoulli log-likelihoods, seeded draws.

The models factorise p(x) = Π_i p(x_i | x_<i) over binary pixels, each
conditional a Bernoulli whose logit the network computes, so

    log p(x) = Σ_i [x_i log σ(η_i) + (1 - x_i) log(1 - σ(η_i))]

exactly, in nats; no bound and no sampling is involved.
"""

from __future__ import annotations

import torch
from torch import nn

from companion._validation import (
    batch_inputs,
    check_finite,
    check_model_input,
    check_positive_int,
    values_already_checked,
    values_checked,
    values_unchecked,
)
from companion.errors import CheckpointMismatchError
from companion.models.likelihoods import bernoulli_log_prob, nats_to_bits_per_dim


class RecordedArchitecture(nn.Module):
    """A module whose state dict records what its weight shapes do not show.

    MADE's masks follow from a seed and PixelCNN's receptive field from its
    dilations; neither changes a weight's shape, so weights saved from one
    setting would load silently into another. Subclasses call
    :meth:`_record` with those settings as integers; loading a state dict
    saved with different ones raises :class:`CheckpointMismatchError`.
    """

    def _record(self, values: torch.Tensor) -> None:
        self.register_buffer("architecture", values.to(torch.long).flatten().clone())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "architecture")
        own = self.architecture
        if saved is not None and (saved.shape != own.shape or not torch.equal(saved.to(own), own)):
            raise CheckpointMismatchError(
                f"these {type(self).__name__} weights were saved with other settings "
                f"(seed, masks, ordering or dilations: saved {saved.flatten()[:6].tolist()}, "
                f"this model {own[:6].tolist()}); build the model with the settings it was "
                "trained with."
            )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _require_float(x: torch.Tensor, name: str) -> None:
    """Raise a ``TypeError`` for integer or bool ``x``: 0/1 data is converted, not scaled."""
    if not x.is_floating_point():
        raise TypeError(
            f"{name} expects float inputs in {{0, 1}}, got {x.dtype}; convert with x.float()."
        )


def _non_binary_index(x: torch.Tensor) -> tuple[int, ...] | None:
    """The index of the first entry of ``x`` that is not 0 or 1 (NaN and inf included), or None.

    The value scan of the autoregressive models: one reduction, so one host
    synchronisation on a GPU, when every entry is 0 or 1.
    """
    outside = (x != 0) & (x != 1)
    if not bool(outside.any()):
        return None
    return tuple(torch.nonzero(outside)[0].tolist())


def _not_binary(x: torch.Tensor, index: tuple[int, ...], name: str) -> ValueError:
    where = ", ".join(str(i) for i in index)
    return ValueError(
        f"{name} models binary data, but x[{where}] = {x[index].item():.4g}; binarise the "
        "images first, e.g. companion.data.binarize(x) (a Bernoulli draw per pixel) "
        "or (x > 0.5).float()."
    )


def check_binary(x: torch.Tensor, *, name: str) -> None:
    """Raise a ``ValueError`` naming the first entry of ``x`` that is not 0 or 1.

    Integer ``x`` raises a ``TypeError`` (convert it with ``x.float()``); NaN
    and inf are named as non-finite. The scan of the values is skipped inside
    :func:`~companion._validation.values_checked`.
    """
    _require_float(x, name)
    if x.numel() == 0 or values_already_checked():
        return
    index = _non_binary_index(x)
    if index is not None:
        check_finite(x, name=f"the {name} input")  # NaN or inf: say so
        raise _not_binary(x, index, name)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Σ over all but the first dimension of the Bernoulli log-probabilities, (N,), nats.

    ``logits`` has the entries of ``x`` (N, …) in the same order, in any shape:
    (N, 1, H, W) logits score (N, H·W) rows.
    """
    return bernoulli_log_prob(logits.reshape(x.shape), x).reshape(x.shape[0], -1).sum(1)


def draw_bernoulli(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One 0/1 draw per logit, in the logits' dtype and device.

    The uniforms come from ``generator`` (on its own device, then moved), so
    a CPU generator gives the same draws whatever device the model is on.
    """
    device = generator.device if generator is not None else logits.device
    u = torch.rand(logits.shape, generator=generator, device=device).to(logits)
    return (u < torch.sigmoid(logits)).to(logits.dtype)


class AutoregressiveModel(RecordedArchitecture):
    """The template of an exact autoregressive model of binary vectors of ``input_dim`` entries.

    Public entry points check their input once, then call private paths that
    do not check again (as scikit-learn's ``_transform``):

    ================  =====================================================
    ``forward(x)``    logits of p(x_i = 1 | x_<i): :meth:`_logits`; x may be
                      any real values (autograd tests probe with them)
    ``log_prob(x)``   log p(x) per example, (N,): :meth:`_log_prob`
    ``loss(batch)``   {"loss": −mean log p(x), "bits_per_dim": the same in
                      bits per entry}: :meth:`_training_log_prob`
    ``sample(n)``     n draws: :meth:`_sample`, whose loop calls
                      :meth:`_logits` only
    ``check_input``   the check of ``loss``, value scan included, for a whole
                      data set (the Trainer calls it once per fit)
    ================  =====================================================

    ``log_prob``, ``loss`` and ``check_input`` require binary {0, 1} inputs.
    Their value scan (one reduction: NaN and inf are not 0 or 1 either) is
    skipped inside :func:`~companion._validation.values_checked`; shape, dtype
    and device are always checked.

    Subclasses set ``input_dim`` (D) and define ``_logits(rows)`` for checked
    rows (N, D), returning one logit per entry in any shape, and
    ``_sample(n, generator)``.
    """

    input_dim: int

    # ------------------------------------------------------------ checks
    def _input_name(self) -> str:
        """How error messages name the model."""
        return type(self).__name__

    def _check_layout(self, x: object) -> None:
        """Shape checks beyond the number of entries per example (image models add some)."""

    def _checked(self, x: torch.Tensor, method: str, *, binary: bool = True) -> torch.Tensor:
        """``x`` (N, D) or (N, …) with D entries each, checked, as rows (N, D).

        Type, shape, dtype and device always; then one value scan, unless inside
        ``values_checked()``: entries in {0, 1} (``binary``, reported at the
        caller's indices and naming ``method``) or, for ``binary=False``, finite.
        """
        if isinstance(x, torch.Tensor) and not x.is_floating_point():
            _require_float(x, type(self).__name__)  # integer 0/1 data: convert, not scale
        self._check_layout(x)
        name, like = self._input_name(), next(self.parameters())
        if not binary:
            return check_model_input(x, self.input_dim, name=name, like=like)
        scan = not values_already_checked()
        with values_checked():  # the binary scan below finds NaN and inf as well
            rows = check_model_input(x, self.input_dim, name=name, like=like)
        index = _non_binary_index(x) if scan and rows.numel() else None
        if index is not None:
            check_model_input(rows, self.input_dim, name=name, like=like)  # NaN or inf: say so
            raise _not_binary(x, index, f"{type(self).__name__}.{method}")
        return rows

    def check_input(self, x: torch.Tensor | tuple | list) -> None:
        """Check data as :meth:`loss` does, value scan included, even inside ``values_checked()``.

        ``x``: binary data (N, D) or (N, …) with D entries each, or a tuple whose
        first entry is. Raises ``TypeError``/``ValueError`` naming the bad value
        and the fix; returns None.
        """
        with values_unchecked():
            self._checked(batch_inputs(x), "check_input")

    # ------------------------------------------------------------ likelihood
    def _logits(self, rows: torch.Tensor) -> torch.Tensor:
        """Logits of p(x_i = 1 | x_<i) for checked rows (N, D), no checks."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of p(x_i = 1 | x_<i) for inputs (N, D) or (N, …): see :meth:`_logits`."""
        return self._logits(self._checked(x, "forward", binary=False))

    def _log_prob(self, rows: torch.Tensor) -> torch.Tensor:
        """log p(x) of checked binary rows (N, D), (N,), nats."""
        return bernoulli_log_likelihood(self._logits(rows), rows)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) per example, (N,), nats; ``x`` binary, (N, D) or (N, …) with D entries each."""
        return self._log_prob(self._checked(x, "log_prob"))

    def _training_log_prob(self, rows: torch.Tensor) -> torch.Tensor:
        """The log-likelihood (N,) that :meth:`loss` maximises: :meth:`_log_prob` by default."""
        return self._log_prob(rows)

    def loss(self, batch: torch.Tensor | tuple | list) -> dict[str, torch.Tensor]:
        """Mean negative log-likelihood of a batch in nats, and in bits per dimension.

        ``batch``: binary data (N, …) or a tuple whose first entry is (labels are ignored).
        """
        rows = self._checked(batch_inputs(batch), "loss")
        nll = -self._training_log_prob(rows).mean()
        return {"loss": nll, "bits_per_dim": nats_to_bits_per_dim(nll.detach(), self.input_dim)}

    # ------------------------------------------------------------ sampling
    def _blank(self, n: int) -> torch.Tensor:
        """n rows of zeros (n, D) in the weights' dtype and on their device."""
        ref = next(self.parameters())
        return torch.zeros(n, self.input_dim, dtype=ref.dtype, device=ref.device)

    def _sample(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """n draws, no checks."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n binary draws from the model, one entry at a time (seeded by ``generator``)."""
        return self._sample(check_positive_int(n, name="n"), generator)


class AutoregressiveImageModel(AutoregressiveModel):
    """An :class:`AutoregressiveModel` of binary (1, H, W) images in raster order.

    Inputs may be (N, 1, H, W), (N, H, W) or rows (N, H·W); draws are
    (N, 1, H, W). Subclasses call :meth:`_set_image_shape` in ``__init__`` and
    define ``_logits(rows)`` for rows (N, h·W) of h ≤ H whole image rows and
    :meth:`_complete`.
    """

    image_shape: tuple[int, int]

    def _set_image_shape(self, image_shape: tuple[int, int]) -> None:
        """Check and set ``image_shape`` (H, W) and ``input_dim`` = H·W."""
        shape = tuple(check_positive_int(s, name="image side") for s in image_shape)
        if len(shape) != 2:
            raise ValueError(f"image_shape={image_shape} must be (height, width).")
        self.image_shape = shape
        self.input_dim = shape[0] * shape[1]

    def _input_name(self) -> str:
        H, W = self.image_shape
        return f"{type(self).__name__} with image_shape=({H}, {W})"

    def _check_layout(self, x: object) -> None:
        if isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[1] != 1:
            H, W = self.image_shape
            raise ValueError(
                f"{type(self).__name__} models one channel, got images of shape "
                f"{tuple(x.shape)}; give (batch, 1, {H}, {W}) binary images."
            )

    def _complete(
        self, rows: torch.Tensor, n_rows: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Draw image rows ``n_rows`` … H-1 of ``rows`` (N, H·W) in place, return it; no checks."""
        raise NotImplementedError

    @torch.no_grad()
    def complete(
        self, x: torch.Tensor, n_rows: int, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Keep the first ``n_rows`` rows of binary images ``x``, draw the rest; (N, 1, H, W)."""
        H, W = self.image_shape
        if not 0 <= n_rows <= H:
            raise ValueError(f"n_rows={n_rows} must be between 0 and the image height {H}.")
        rows = self._checked(x, "complete").clone()
        return self._complete(rows, n_rows, generator).reshape(-1, 1, H, W)

    def _sample(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """n images (n, 1, H, W), one pixel at a time in raster order."""
        return self._complete(self._blank(n), 0, generator).reshape(-1, 1, *self.image_shape)
