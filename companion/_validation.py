"""Input checks shared by every estimator.

All checking happens here so that every estimator fails the same way: the
message names the offending value and says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from companion.errors import NotFittedError

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class InputKind:
    """How the caller passed an array, so that results can be returned alike."""

    is_numpy: bool
    dtype: torch.dtype
    device: torch.device


def check_array(
    X: Any,
    *,
    name: str = "X",
    min_samples: int = 1,
    min_features: int = 1,
    allow_nan: bool = False,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, InputKind]:
    """Validate a 2-D data matrix and return it as a floating tensor.

    Parameters
    ----------
    X : array-like or tensor, shape (n_samples, n_features)
    name : str
        What to call ``X`` in error messages.
    min_samples, min_features : int
        Smallest acceptable shape.
    allow_nan : bool
        Accept NaN and infinite entries.
    dtype : torch.dtype, optional
        Cast to this dtype; by default float tensors keep their dtype and
        anything else becomes float64 (as scikit-learn does).

    Returns
    -------
    tensor : torch.Tensor, shape (n_samples, n_features)
        On the input's device (CPU for NumPy input).
    kind : InputKind
        Pass to :func:`to_input_kind` to return results as the caller gave them.
    """
    if isinstance(X, torch.Tensor):
        tensor, is_numpy = X.detach(), False
    elif isinstance(X, np.ndarray) or isinstance(X, (list, tuple)):
        array = np.asarray(X)
        if array.dtype == object or not (
            np.issubdtype(array.dtype, np.number) or array.dtype == bool
        ):
            raise TypeError(
                f"{name} has dtype {array.dtype}, which is not numeric; pass an array of numbers."
            )
        tensor, is_numpy = torch.from_numpy(np.ascontiguousarray(array)), True
    else:
        raise TypeError(
            f"{name} must be a NumPy array or a torch tensor, got {type(X).__name__}; "
            "convert it with np.asarray(...) or torch.as_tensor(...)."
        )
    if tensor.is_complex():
        raise TypeError(f"{name} is complex ({tensor.dtype}); pass real numbers.")
    if tensor.ndim != 2:
        hint = (
            f"reshape it with {name}.reshape(-1, 1) for one feature or "
            f"{name}.reshape(1, -1) for one sample"
            if tensor.ndim == 1
            else f"flatten it to (n_samples, n_features), e.g. {name}.reshape(len({name}), -1)"
        )
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {tuple(tensor.shape)}; {hint}."
        )
    n_samples, n_features = tensor.shape
    if n_samples < min_samples:
        raise ValueError(
            f"{name} has n_samples={n_samples}, but at least {min_samples} "
            f"{'is' if min_samples == 1 else 'are'} needed; give more data."
        )
    if n_features < min_features:
        raise ValueError(
            f"{name} has n_features={n_features}, but at least {min_features} "
            f"{'is' if min_features == 1 else 'are'} needed."
        )
    if dtype is not None:
        tensor = tensor.to(dtype)
    elif tensor.dtype not in _FLOAT_DTYPES:
        tensor = tensor.to(torch.float64)
    if not allow_nan:
        check_finite(tensor, name=name)
    kind = InputKind(is_numpy=is_numpy, dtype=tensor.dtype, device=tensor.device)
    return tensor, kind


def _non_finite(tensor: torch.Tensor) -> str | None:
    """``"<n> non-finite value(s) (first: <v> at index [i, j])"``, or None if all are finite."""
    if tensor.numel() == 0 or bool(torch.isfinite(tensor.sum())):
        return None  # fast path: a NaN or inf anywhere makes the sum non-finite
    finite = torch.isfinite(tensor)
    if bool(finite.all()):
        return None  # the sum overflowed, but every entry is finite
    bad = torch.nonzero(~finite)[0].tolist()
    value = tensor[tuple(bad)].item()
    n_bad = int((~finite).sum())
    position = ", ".join(str(i) for i in bad)
    return (
        f"{n_bad} non-finite value{'s' if n_bad > 1 else ''} (first: {value} at index [{position}])"
    )


def check_finite(tensor: torch.Tensor, *, name: str = "X") -> None:
    """Raise a ``ValueError`` naming the first NaN or infinite entry of ``tensor``."""
    found = _non_finite(tensor)
    if found is not None:
        raise ValueError(
            f"{name} contains {found}; remove or impute them before fitting, "
            "e.g. drop the rows with NaN."
        )


def check_model_input(
    x: Any,
    n_features: int | None,
    *,
    name: str,
    like: torch.Tensor | None = None,
) -> torch.Tensor:
    """Check a network's input batch and return it as rows, shape (batch, n_features).

    Shared by the deep models' ``loss``, ``forward`` and ``encode``: ``x``
    must be a float tensor of shape (batch, n_features), or images
    (batch, ...) with n_features values each, free of NaN and inf. With
    ``like`` (one of the model's parameters) it must also have that
    parameter's dtype and device, so that the error names them instead of a
    failing matrix product.
    """
    width = n_features if n_features is not None else "D"
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} expects a torch tensor of shape (batch, {width}), got "
            f"{type(x).__name__}; convert it with torch.as_tensor(x, dtype=torch.float32)."
        )
    if x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2 or (n_features is not None and x.shape[1] != n_features):
        raise ValueError(
            f"{name} expects inputs of shape (batch, {width}) or images with {width} pixels, "
            f"got shape {tuple(x.shape)}; reshape the data, or build the model for inputs "
            f"of width {x.shape[-1] if x.ndim else 1}."
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} expects float inputs, got {x.dtype}; scale them with to_float.")
    if like is not None and x.dtype != like.dtype:
        raise TypeError(
            f"{name} expects {like.dtype} inputs (the dtype of its weights), got {x.dtype}; "
            f"convert them with x.to({like.dtype}) or the model with model.to({x.dtype})."
        )
    if like is not None and x.device != like.device:
        raise ValueError(
            f"{name} has its weights on {like.device} but got inputs on {x.device}; "
            f"move them with x.to('{like.device}')."
        )
    found = _non_finite(x)
    if found is not None:
        raise ValueError(
            f"{name} got NaN or inf in its input: {found}; remove or impute them "
            "before training, e.g. drop those rows."
        )
    return x


def to_input_kind(result: torch.Tensor, kind: InputKind) -> Any:
    """Return ``result`` as the caller's kind: a NumPy array or a tensor on their device."""
    if kind.is_numpy:
        return result.detach().cpu().numpy()
    return result.to(kind.device)


def check_n_features(X: torch.Tensor, n_features_in: int, *, name: str = "X") -> None:
    """Check that ``X`` has as many columns as the data the estimator was fitted on."""
    if X.shape[1] != n_features_in:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but the estimator was fitted on "
            f"{n_features_in}; pass data with {n_features_in} columns."
        )


def check_is_fitted(estimator: Any, attributes: str | list[str], *, method: str = "this") -> None:
    """Raise :class:`NotFittedError` if ``estimator`` lacks the fitted attribute(s)."""
    names = [attributes] if isinstance(attributes, str) else list(attributes)
    if not all(hasattr(estimator, attr) for attr in names):
        cls = type(estimator).__name__
        raise NotFittedError(
            f"This {cls} instance is not fitted yet; call fit(X) before {method}()."
        )


def check_positive_int(value: Any, *, name: str, minimum: int = 1) -> int:
    """Check an integer hyper-parameter such as ``n_components`` or ``max_iter``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}={value!r} must be an integer >= {minimum}.")
    if value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}.")
    return int(value)
