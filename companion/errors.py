"""Exceptions raised by the companion package.

Each subclasses the built-in exception a user would catch anyway (``ValueError``,
``RuntimeError``, ``FileNotFoundError``), so ``except ValueError`` keeps working.
"""


class NotFittedError(ValueError, AttributeError):
    """An estimator method was called before ``fit``."""


class DataChecksumError(ValueError):
    """A data file's decompressed bytes do not match the known checksum."""


class DataNotFoundError(FileNotFoundError):
    """A data set is in none of the places looked in and could not be downloaded."""


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


class CheckpointMismatchError(ValueError):
    """A checkpoint was saved from a different model or architecture."""
