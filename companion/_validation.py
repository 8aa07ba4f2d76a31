"""Input checks shared by every estimator.

All checking happens here so that every estimator fails the same way: the
message names the offending value and says how to fix it.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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
        A NumPy array, a torch tensor, a list of rows, a DataFrame or anything
        with ``__array__``. Object arrays are converted to float64 when every
        entry is a number; sparse matrices and complex numbers are refused.
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
        On the input's device (CPU for anything but a tensor).
    kind : InputKind
        Pass to :func:`to_input_kind` to return results as the caller gave them
        (a tensor for a tensor, a NumPy array for anything else).
    """
    tensor, is_numpy = _as_tensor(X, name)
    if tensor.is_complex():
        raise ValueError(
            f"Complex data not supported: {name} has dtype "
            f"{str(tensor.dtype).removeprefix('torch.')}; pass real "
            f"numbers, e.g. {name}.real or abs({name})."
        )
    if tensor.ndim != 2:
        got = f"{name} must be 2-D (n_samples, n_features), got shape {tuple(tensor.shape)}"
        if tensor.ndim == 1:  # scikit-learn's checks look for "Reshape your data"
            raise ValueError(
                f"{got}. Reshape your data: {name}.reshape(-1, 1) for one feature or "
                f"{name}.reshape(1, -1) for one sample."
            )
        raise ValueError(
            f"{got}; flatten it to (n_samples, n_features), e.g. {name}.reshape(len({name}), -1)."
        )
    n_samples, n_features = tensor.shape
    if n_samples < min_samples:
        raise ValueError(
            f"{name} has n_samples={n_samples}, but at least {min_samples} "
            f"{'is' if min_samples == 1 else 'are'} needed; give more data."
        )
    if n_features < min_features:
        raise ValueError(
            f"{name} has {n_features} feature(s) (shape={tuple(tensor.shape)}) while a minimum "
            f"of {min_features} is required; pass data with at least {min_features} "
            f"column{'s' if min_features > 1 else ''}."
        )
    if dtype is not None:
        tensor = tensor.to(dtype)
    elif tensor.dtype not in _FLOAT_DTYPES:
        tensor = tensor.to(torch.float64)
    if not allow_nan:
        check_finite(tensor, name=name)
    kind = InputKind(is_numpy=is_numpy, dtype=tensor.dtype, device=tensor.device)
    return tensor, kind


def _as_tensor(X: Any, name: str) -> tuple[torch.Tensor, bool]:
    """``X`` as a tensor (sharing memory where it can), and whether it was not one."""
    if isinstance(X, torch.Tensor):
        if X.layout != torch.strided:
            raise TypeError(
                f"{name} is a sparse torch tensor ({X.layout}); pass a dense one "
                f"({name}.to_dense())."
            )
        return X.detach(), False
    if _is_scipy_sparse(X):
        raise TypeError(
            f"{name} is a scipy sparse {type(X).__name__}; the estimators work on dense data "
            f"only: pass a dense array ({name}.toarray())."
        )
    if not isinstance(X, (np.ndarray, list, tuple)) and not hasattr(X, "__array__"):
        raise TypeError(
            f"{name} must be a NumPy array or a torch tensor, got {type(X).__name__}; "
            "convert it with np.asarray(...) or torch.as_tensor(...)."
        )
    array = np.asarray(X)  # DataFrames and other array-likes too
    if array.dtype == object:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise type(err)(
                f"{name} has dtype object and not every entry is a number ({err}); "
                "pass an array of numbers."
            ) from err
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(
            f"{name} has dtype {array.dtype}, which is not numeric; pass an array of numbers."
        )
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # a read-only memmap, say: torch warns, but nothing writes to X
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.from_numpy(array), True
    return torch.from_numpy(array), True


def _is_scipy_sparse(X: Any) -> bool:
    """Whether ``X`` is a scipy sparse matrix or array (without importing scipy)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


def feature_names(X: Any) -> np.ndarray | None:
    """The string column names of a DataFrame (pandas, polars, ...), else None.

    DataFrames are recognised by their ``columns`` attribute, without importing
    pandas. Returns an object array, as scikit-learn's ``feature_names_in_``.
    """
    if isinstance(X, (np.ndarray, torch.Tensor)):
        return None
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = np.asarray(list(columns), dtype=object)
    strings = [isinstance(column, str) for column in names]
    if all(strings) and len(names):
        return names
    if any(strings):
        kinds = sorted({type(column).__name__ for column in names})
        raise TypeError(
            f"X has column names of types {kinds}; feature names are only supported when "
            "every column name is a string: convert them, e.g. X.columns = X.columns.astype(str)."
        )
    return None


def validate_data(
    estimator: Any, X: Any, *, reset: bool, name: str = "X", **kwargs: Any
) -> tuple[torch.Tensor, InputKind]:
    """:func:`check_array` plus the bookkeeping of scikit-learn's ``validate_data``.

    In ``fit`` (``reset=True``) it records ``n_features_in_`` and, for a
    DataFrame with string column names, ``feature_names_in_``. Afterwards
    (``reset=False``) it checks that X has the same columns, by name for
    DataFrames and by count for anything, with scikit-learn's messages.
    ``kwargs`` go to :func:`check_array`.
    """
    names = feature_names(X)
    if reset:
        tensor, kind = check_array(X, name=name, **kwargs)
        estimator.n_features_in_ = tensor.shape[1]
        if names is not None:
            estimator.feature_names_in_ = names
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return tensor, kind
    _check_feature_names(estimator, names, name)
    tensor, kind = check_array(X, name=name, **kwargs)
    check_n_features(tensor, estimator.n_features_in_, estimator=estimator, name=name)
    return tensor, kind


def _check_feature_names(estimator: Any, names: np.ndarray | None, name: str) -> None:
    """Compare a DataFrame's column names with those seen in fit (scikit-learn's messages)."""
    fitted = getattr(estimator, "feature_names_in_", None)
    cls = type(estimator).__name__
    if fitted is None and names is None:
        return
    if fitted is None:
        warnings.warn(
            f"{name} has feature names, but {cls} was fitted without feature names",
            UserWarning,
            stacklevel=4,
        )
        return
    if names is None:
        warnings.warn(
            f"{name} does not have valid feature names, but {cls} was fitted with feature names",
            UserWarning,
            stacklevel=4,
        )
        return
    if len(fitted) == len(names) and np.array_equal(fitted, names):
        return
    message = "The feature names should match those that were passed during fit.\n"
    unseen = sorted(set(names) - set(fitted))
    missing = sorted(set(fitted) - set(names))

    def listed(found: list[str]) -> str:
        shown = "".join(f"- {column}\n" for column in found[:5])
        return shown + ("- ...\n" if len(found) > 5 else "")

    if unseen:
        message += "Feature names unseen at fit time:\n" + listed(unseen)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listed(missing)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(
        message
        + f"Pass the columns {cls} was fitted on, in that order "
        + "(X[estimator.feature_names_in_] selects them)."
    )


_STATE = threading.local()


@contextmanager
def values_checked() -> Iterator[None]:
    """Within this block the models' entry points skip the scans of their inputs' values.

    A scan for NaN/inf (or for entries outside {0, 1}) is a reduction and, on a GPU, a
    host synchronisation on every call. The Trainer checks its whole data set once per
    fit (``model.check_input(data)`` where the model has one, else a NaN/inf scan) and
    then runs every batch inside this block. Shape, dtype and device checks, which
    cost nothing, still run. Thread-local; nests.
    """
    with _values_flag(True):
        yield


@contextmanager
def values_unchecked() -> Iterator[None]:
    """Within this block every value scan runs, even inside :func:`values_checked`.

    The models' ``check_input(x)`` run their entry checks in it, so that the one check
    of a whole data set is complete wherever it is called from. Thread-local; nests.
    """
    with _values_flag(False):
        yield


@contextmanager
def _values_flag(value: bool) -> Iterator[None]:
    previous = getattr(_STATE, "values_checked", False)
    _STATE.values_checked = value
    try:
        yield
    finally:
        _STATE.values_checked = previous


def values_already_checked() -> bool:
    """True inside :func:`values_checked` (and not in a :func:`values_unchecked` within it):
    value scans may be skipped."""
    return getattr(_STATE, "values_checked", False)


def batch_inputs(batch: Any) -> Any:
    """The inputs of a training batch: ``batch`` itself, or its first entry for a tuple
    or list such as ``(x, labels)`` (the labels are not used)."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


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
    found = None if values_already_checked() else _non_finite(x)
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


def check_n_features(
    X: torch.Tensor, n_features_in: int, *, estimator: Any, name: str = "X"
) -> None:
    """Check that ``X`` has as many columns as the estimator expects (scikit-learn's message)."""
    if X.shape[1] != n_features_in:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{n_features_in} features as input; pass data with {n_features_in} columns."
        )


def resolve_dtype(dtype: Any, *, name: str = "dtype") -> torch.dtype | None:
    """A float dtype parameter as a ``torch.dtype``: "float64", np.float32, torch.float64 or None.

    Estimators store the parameter as given (a string by default, which
    scikit-learn's ``clone`` and ``get_params`` tooling accept) and resolve it
    in ``fit``; None means "keep the data's float dtype".
    """
    if dtype is None:
        return None
    resolved = dtype
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.removeprefix("torch."), None)
    elif not isinstance(dtype, torch.dtype):
        try:
            resolved = getattr(torch, np.dtype(dtype).name, None)  # np.float32, np.dtype(...)
        except TypeError:
            resolved = None
    if resolved not in _FLOAT_DTYPES:
        raise ValueError(
            f"{name}={dtype!r} is not a float dtype; use 'float64', 'float32' or None "
            "(keep the data's float dtype)."
        )
    return resolved


def check_is_fitted(estimator: Any, attributes: str | list[str], *, method: str = "this") -> None:
    """Raise :class:`NotFittedError` if ``estimator`` lacks the fitted attribute(s)."""
    names = [attributes] if isinstance(attributes, str) else list(attributes)
    if not all(hasattr(estimator, attr) for attr in names):
        cls = type(estimator).__name__
        raise NotFittedError(
            f"This {cls} instance is not fitted yet; call fit(X) before {method}()."
        )


def check_positive_int(value: Any, *, name: str, minimum: int = 1, hint: str = "") -> int:
    """Check an integer parameter such as ``n_components``, ``max_iter`` or ``epochs``.

    The one rule of the package, scikit-learn's: a value of the wrong type (a float
    such as ``2.0``, a string, ``True``/``False``, None) raises ``TypeError``; an
    integer (Python or NumPy) below ``minimum`` raises ``ValueError``. Every integer
    parameter of ``companion`` is checked here, so both cases raise the same types
    everywhere. ``hint`` is appended to the message (another value that is accepted, say).
    Returns the value as a Python ``int``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}={value!r} must be an integer >= {minimum}{hint}.")
    if value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}{hint}.")
    return int(value)
