"""MNIST and Fashion-MNIST as tensors, found on disk or downloaded and verified.

Where a file is looked for, in order:

1. ``root=`` when given (files directly inside it);
2. ``$COMPANION_DATA/<dataset>/`` when the variable is set;
3. the user cache, ``pooch.os_cache("companion")/<dataset>/``;
4. the Debian package's folder (``apt-get install dataset-fashion-mnist``
   puts Fashion-MNIST in ``/usr/share/datasets/fashion-mnist/``);
5. a download with pooch from the official URLs (or ``$COMPANION_DATA_URL``)
   into the first of 1-3 that applies.

Each file is checked against the SHA-256 of its *decompressed* bytes, because
Debian recompresses the ``.gz`` files, so only the content is stable. A file
that fails the check is reported; in the download folder it is fetched again.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pooch
import torch

from companion.data.idx import parse_idx, read_bytes
from companion.errors import DataChecksumError, DataNotFoundError

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple(str(digit) for digit in range(10))


class DataWarning(UserWarning):
    """A data file was found but rejected (and another source is tried)."""


@dataclass(frozen=True)
class IdxFile:
    """One IDX file of a data set and what its content must be."""

    name: str  # e.g. "train-images-idx3-ubyte" (stored as name or name + ".gz")
    size: int  # decompressed size in bytes
    sha256: str | None = None  # of the decompressed bytes
    gz_md5: str | None = None  # of the official compressed file, when no sha256 is known


@dataclass(frozen=True)
class DatasetSpec:
    """Where a data set lives and how to recognise its files."""

    name: str
    urls: tuple[str, ...]
    files: dict[tuple[str, str], IdxFile]  # (split, "images" | "labels") -> file
    class_names: tuple[str, ...]
    debian_dir: Path | None = None
    apt_package: str | None = None


FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    files={
        ("train", "images"): IdxFile(
            "train-images-idx3-ubyte",
            47040016,
            sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        ("train", "labels"): IdxFile(
            "train-labels-idx1-ubyte",
            60008,
            sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        ("test", "images"): IdxFile(
            "t10k-images-idx3-ubyte",
            7840016,
            sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        ("test", "labels"): IdxFile(
            "t10k-labels-idx1-ubyte",
            10008,
            sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    class_names=FASHION_MNIST_CLASSES,
    debian_dir=Path("/usr/share/datasets/fashion-mnist"),
    apt_package="dataset-fashion-mnist",
)

# No copy of MNIST was at hand to hash its decompressed bytes, so its files are
# checked by the published MD5 of the official .gz files plus their exact size.
MNIST = DatasetSpec(
    name="mnist",
    urls=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    files={
        ("train", "images"): IdxFile(
            "train-images-idx3-ubyte", 47040016, gz_md5="f68b3c2dcbeaaa9fbdd348bbdeb94873"
        ),
        ("train", "labels"): IdxFile(
            "train-labels-idx1-ubyte", 60008, gz_md5="d53e105ee54ea40749a09fcbcd1e9432"
        ),
        ("test", "images"): IdxFile(
            "t10k-images-idx3-ubyte", 7840016, gz_md5="9fb629c4189551a2d022fa330f9573f3"
        ),
        ("test", "labels"): IdxFile(
            "t10k-labels-idx1-ubyte", 10008, gz_md5="ec29112dd5afa0611ce80d1b7f02629c"
        ),
    },
    class_names=MNIST_CLASSES,
)

DATASETS = {spec.name: spec for spec in (FASHION_MNIST, MNIST)}


def load_fashion_mnist(
    split: str = "train", *, root: str | Path | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST images and labels.

    Returns
    -------
    images : torch.Tensor, uint8, shape (n, 28, 28)
        n = 60000 for ``"train"``, 10000 for ``"test"``.
    labels : torch.Tensor, int64, shape (n,)
        Indices into :data:`FASHION_MNIST_CLASSES`.
    """
    return load_idx_dataset(FASHION_MNIST, split, root=root, download=download)


def load_mnist(
    split: str = "train", *, root: str | Path | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits, shaped and typed as :func:`load_fashion_mnist`."""
    return load_idx_dataset(MNIST, split, root=root, download=download)


def load_idx_dataset(
    spec: DatasetSpec, split: str, *, root: str | Path | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (uint8, (n, H, W)) and labels (int64, (n,)) of one split of ``spec``."""
    splits = sorted({key[0] for key in spec.files})
    if split not in splits:
        raise ValueError(
            f"split={split!r} is not a split of {spec.name}; use one of {splits} "
            "(make a validation set from 'train' with train_val_split)."
        )
    images = fetch_array(spec, spec.files[split, "images"], root=root, download=download)
    labels = fetch_array(spec, spec.files[split, "labels"], root=root, download=download)
    if images.shape[0] != labels.shape[0]:
        raise DataChecksumError(
            f"{spec.name} {split}: {images.shape[0]} images but {labels.shape[0]} labels; "
            "delete the cached files so that they are fetched again."
        )
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def search_dirs(spec: DatasetSpec, root: str | Path | None = None) -> list[Path]:
    """The folders looked in for ``spec``'s files, in lookup order."""
    dirs = [Path(root).expanduser()] if root is not None else []
    if os.environ.get("COMPANION_DATA"):
        dirs.append(Path(os.environ["COMPANION_DATA"]).expanduser() / spec.name)
    dirs.append(Path(pooch.os_cache("companion")) / spec.name)
    if spec.debian_dir is not None:
        dirs.append(spec.debian_dir)
    return dirs


def download_dir(spec: DatasetSpec, root: str | Path | None = None) -> Path:
    """Where a download of ``spec`` goes: ``root``, else ``$COMPANION_DATA``, else the cache."""
    return search_dirs(spec, root)[0]


def verify(data: bytes, file: IdxFile, *, source: str) -> None:
    """Raise :class:`DataChecksumError` unless ``data`` is the expected decompressed content."""
    if len(data) != file.size:
        raise DataChecksumError(
            f"{source} has {len(data)} bytes once decompressed, expected {file.size} "
            "(truncated or corrupted); delete it so that it is fetched again."
        )
    if file.sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != file.sha256:
            raise DataChecksumError(
                f"{source} has SHA-256 {digest} once decompressed, expected {file.sha256} "
                "(corrupted); delete it so that it is fetched again."
            )


def fetch_array(
    spec: DatasetSpec, file: IdxFile, *, root: str | Path | None = None, download: bool = True
) -> np.ndarray:
    """Find, verify and decode one IDX file of ``spec``, downloading it if needed."""
    target = download_dir(spec, root)
    for folder in search_dirs(spec, root):
        for path in (folder / file.name, folder / f"{file.name}.gz"):
            if not path.is_file():
                continue
            try:
                data = read_bytes(path)
                verify(data, file, source=str(path))
                return parse_idx(data, source=str(path))
            except FileNotFoundError:
                continue  # another process replaced or removed it since is_file()
            except (DataChecksumError, ValueError) as err:
                if folder == target and os.access(folder, os.W_OK):
                    warnings.warn(f"{err} Fetching it again.", DataWarning, stacklevel=3)
                    path.unlink(missing_ok=True)  # another process may have removed it already
                else:
                    warnings.warn(f"{err} Skipping it.", DataWarning, stacklevel=3)
    if not download:
        raise DataNotFoundError(_not_found_message(spec, file, root, reason="download=False"))
    return _download(spec, file, target, root)


def _download(spec: DatasetSpec, file: IdxFile, target: Path, root) -> np.ndarray:
    """Fetch ``file`` into ``target`` from the first mirror that answers, then verify it."""
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(
            f"cannot create the data folder {target} ({err.strerror}); set COMPANION_DATA "
            "to a writable folder or pass root= a writable folder."
        ) from err
    if not os.access(target, os.W_OK):
        raise PermissionError(
            f"the data folder {target} is read-only; set COMPANION_DATA to a writable folder "
            "or pass root= a writable folder."
        )
    mirror = os.environ.get("COMPANION_DATA_URL")
    urls = (mirror.rstrip("/") + "/",) if mirror else spec.urls
    known_hash = f"md5:{file.gz_md5}" if file.gz_md5 and not mirror else None
    errors = []
    for base in urls:
        url = f"{base}{file.name}.gz"
        try:
            path = pooch.retrieve(
                url, known_hash=known_hash, fname=f"{file.name}.gz", path=target, progressbar=True
            )
        except Exception as err:  # network errors come in many types; all mean "try the next"
            errors.append(f"{url}: {type(err).__name__}: {err}")
            continue
        # pooch writes to a temporary file and renames it: a concurrent reader never
        # sees half a file, and a bad download is removed here, never kept.
        try:
            data = read_bytes(path)
            verify(data, file, source=f"{url} (saved as {path})")
            return parse_idx(data, source=path)
        except DataChecksumError:
            Path(path).unlink(missing_ok=True)
            raise
        except ValueError as err:  # not gzip, not IDX: e.g. an HTML error page
            Path(path).unlink(missing_ok=True)
            raise DataChecksumError(
                f"the download {url} is not a valid {file.name} ({err}); check the URL "
                "(and $COMPANION_DATA_URL if set) or try again later."
            ) from err
    reason = "download failed: " + "; ".join(errors)
    raise DataNotFoundError(_not_found_message(spec, file, root, reason=reason))


def _not_found_message(spec: DatasetSpec, file: IdxFile, root, *, reason: str) -> str:
    looked = ", ".join(str(folder) for folder in search_dirs(spec, root))
    fixes = []
    if spec.apt_package:
        fixes.append(f"on Debian/Ubuntu run `sudo apt-get install {spec.apt_package}`")
    fixes.append(f"download {spec.urls[0]}{file.name}.gz when online")
    fixes.append(f"or put the files in a folder and pass root=, or in $COMPANION_DATA/{spec.name}/")
    return (
        f"{spec.name} file {file.name} was not found (looked in {looked}) and could not "
        f"be downloaded ({reason}). To fix: " + "; ".join(fixes) + "."
    )
