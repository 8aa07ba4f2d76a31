"""Package-wide switches read from the environment.

``COMPANION_FAST=1`` makes notebooks shrink data and epochs so the whole book
runs quickly under nbval; code asks :func:`pick` for the size to use.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def fast_mode() -> bool:
    """Whether ``COMPANION_FAST`` asks for the quick, small-data variant."""
    value = os.environ.get("COMPANION_FAST", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"COMPANION_FAST={value!r} is not understood; set it to 1 (fast) or 0 (full), or unset it."
    )


def pick(full: T, fast: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise.

    >>> pick(full=50, fast=2)  # doctest: +SKIP
    2
    """
    return fast if fast_mode() else full
