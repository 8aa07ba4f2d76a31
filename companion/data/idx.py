"""Reading the IDX format that MNIST and Fashion-MNIST are stored in.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 per dimension, then the values in
big-endian C order.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into an array.

    Raises ``ValueError`` naming ``source`` when the header is not IDX or the
    payload is shorter or longer than the header promises (a truncated file).
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise ValueError(
            f"{source} is not an IDX file (bad magic number {data[:4].hex() or 'empty'}); "
            "delete it so that it is fetched again."
        )
    dtype, ndim = _TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{source} is truncated inside its header; delete it and fetch it again.")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{source} holds {len(data)} bytes but its header {shape} needs {expected}: "
            "the file is truncated or corrupted; delete it and fetch it again."
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_bytes(path: str | Path) -> bytes:
    """The decompressed content of ``path`` (gzip-compressed if it ends in ``.gz``)."""
    path = Path(path)
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as handle:
                return handle.read()
        except (OSError, EOFError) as err:
            raise ValueError(
                f"{path} is not a complete gzip file ({err}); delete it and fetch it again."
            ) from err
    return path.read_bytes()


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, plain or ``.gz``, into a NumPy array."""
    return parse_idx(read_bytes(path), source=str(path))
