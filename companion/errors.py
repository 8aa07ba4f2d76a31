"""Exceptions raised by the companion package.

Each subclasses the built-in exception a user would catch anyway (``ValueError``,
``RuntimeError``, ``FileNotFoundError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import functools
import sys
from typing import Any


class NotFittedError(ValueError, AttributeError):
    """An estimator method was called before ``fit``.

    Once scikit-learn has been imported, ``NotFittedError(message)`` is also an
    instance of ``sklearn.exceptions.NotFittedError`` (through a subclass made
    on first use), so ``except`` clauses and checks written for scikit-learn's
    error catch it too. scikit-learn is never imported here: code that names
    its error has imported it already, and without it the error is still a
    ``ValueError`` and an ``AttributeError``, as scikit-learn's is.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> NotFittedError:
        if cls is NotFittedError and "sklearn" in sys.modules:
            cls = _sklearn_not_fitted_error()
        return super().__new__(cls, *args, **kwargs)


@functools.cache
def _sklearn_not_fitted_error() -> type[NotFittedError]:
    """``NotFittedError`` that is also scikit-learn's (imports ``sklearn.exceptions``)."""
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError

    return type(
        "SklearnNotFittedError",
        (NotFittedError, SklearnNotFittedError),
        {"__module__": __name__, "__doc__": NotFittedError.__doc__},
    )


def __getattr__(name: str) -> Any:
    """``SklearnNotFittedError`` is made on demand (pickle looks it up by name)."""
    if name == "SklearnNotFittedError":
        return _sklearn_not_fitted_error()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DataChecksumError(ValueError):
    """A data file's decompressed bytes do not match the known checksum."""


class DataNotFoundError(FileNotFoundError):
    """A data set is in none of the places looked in and could not be downloaded."""


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


class CheckpointMismatchError(ValueError):
    """A checkpoint was saved from a different model or architecture."""
