"""The data loader: real Fashion-MNIST, lookup order, checksums, downloads from a local server."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import fashion_mnist_files

import companion.data.datasets as data_module
from companion.data import (
    FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    DataWarning,
    load_fashion_mnist,
    load_idx_dataset,
    search_dirs,
)
from companion.errors import DataChecksumError, DataNotFoundError


# ---------------------------------------------------------------- real data
@pytest.mark.needs_data
def test_fashion_mnist_shapes_dtypes_and_balance():
    x, y = load_fashion_mnist("train", download=False)
    assert x.shape == (60000, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (60000,) and y.dtype == torch.int64
    assert torch.equal(torch.bincount(y), torch.full((10,), 6000))
    xt, yt = load_fashion_mnist("test", download=False)
    assert xt.shape == (10000, 28, 28) and torch.equal(torch.bincount(yt), torch.full((10,), 1000))
    assert len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[9] == "Ankle boot"
    # a published fact of the data set: the first training image is an ankle boot
    assert y[0].item() == 9


def test_needs_data_tests_are_skipped_with_a_reason_when_the_data_are_absent(
    isolated_data_env, monkeypatch
):
    import conftest
    import helpers

    import companion.data

    empty = dataclasses.replace(FASHION_MNIST, debian_dir=isolated_data_env / "no-debian")
    monkeypatch.setattr(companion.data, "FASHION_MNIST", empty)
    monkeypatch.setattr(
        conftest, "_fashion_mnist_missing", conftest._fashion_mnist_missing.__wrapped__
    )
    assert helpers.fashion_mnist_files() is None

    class Item:  # what the hook reads of a test item
        def __init__(self, marked):
            self.marked = marked

        def get_closest_marker(self, name):
            return object() if self.marked and name == "needs_data" else None

    conftest.pytest_runtest_setup(Item(marked=False))  # unmarked tests run
    with pytest.raises(pytest.skip.Exception, match=r"needs Fashion-MNIST, not found in .*"
                       r"no-debian.*never download.*python -m companion.data"):  # fmt: skip
        conftest.pytest_runtest_setup(Item(marked=True))
    tiny_copy = isolated_data_env / "env"
    monkeypatch.setenv("COMPANION_DATA", str(tiny_copy))
    for file in FASHION_MNIST.files.values():  # present (names only: nothing is read)
        (tiny_copy / "fashion-mnist").mkdir(parents=True, exist_ok=True)
        (tiny_copy / "fashion-mnist" / f"{file.name}.gz").write_bytes(b"")
    assert set(helpers.fashion_mnist_files()) == {f.name for f in FASHION_MNIST.files.values()}
    conftest.pytest_runtest_setup(Item(marked=True))


def test_unknown_split_names_value_and_fix():
    with pytest.raises(
        ValueError,
        match=r"split='validation' is not a split of fashion-mnist; "
        r"use one of \['test', 'train'\].*train_val_split",
    ):
        load_fashion_mnist("validation", download=False)


# ---------------------------------------------------------------- lookup order
def test_lookup_order_root_env_cache_debian(tiny, isolated_data_env, monkeypatch, tmp_path):
    debian = tiny.write(tmp_path / "debian")
    spec = dataclasses.replace(tiny.spec, debian_dir=debian)
    root = tmp_path / "root"
    env = tmp_path / "env"
    monkeypatch.setenv("COMPANION_DATA", str(env))
    cache = search_dirs(spec)[1]
    assert search_dirs(spec, root) == [root, env / "tiny", cache, debian]
    assert str(cache).startswith(str(isolated_data_env / "xdg-cache"))

    read = []
    real_read = data_module.read_bytes
    monkeypatch.setattr(data_module, "read_bytes", lambda p: read.append(Path(p)) or real_read(p))

    def used_folder(**kwargs):
        read.clear()
        images, labels = load_idx_dataset(spec, "test", download=False, **kwargs)
        np.testing.assert_array_equal(images.numpy(), tiny.arrays["test", "images"])
        np.testing.assert_array_equal(labels.numpy(), tiny.arrays["test", "labels"])
        assert labels.dtype == torch.int64
        return {p.parent for p in read}

    assert used_folder() == {debian}
    tiny.write(cache)
    assert used_folder() == {cache}
    tiny.write(env / "tiny", gz=False)  # plain (uncompressed) files are found too
    assert used_folder() == {env / "tiny"}
    tiny.write(root)
    assert used_folder(root=root) == {root}


def test_offline_without_copy_names_both_fixes(tiny, isolated_data_env, monkeypatch):
    monkeypatch.setenv("COMPANION_DATA_URL", "http://127.0.0.1:9/")
    with pytest.raises(DataNotFoundError) as info:
        load_idx_dataset(tiny.spec, "train")
    message = str(info.value)
    assert "apt-get install dataset-tiny" in message
    assert "http://127.0.0.1:9/t10k" in message or "train-images-idx3-ubyte.gz" in message
    assert "could not be downloaded" in message and "COMPANION_DATA" in message


def test_real_spec_offline_message_names_apt_package_and_official_url(
    isolated_data_env, monkeypatch
):
    spec = dataclasses.replace(FASHION_MNIST, debian_dir=isolated_data_env / "no-debian")
    with pytest.raises(DataNotFoundError) as info:
        load_idx_dataset(spec, "test", download=False)
    message = str(info.value)
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-" in message


# ---------------------------------------------------------------- MNIST
def test_load_mnist_reads_the_mnist_spec_from_a_fake_idx_set(tiny, isolated_data_env, monkeypatch):
    """load_mnist is load_idx_dataset on the MNIST spec: a tiny fake set in MNIST's place
    (same file names, its own sizes and hashes) is found and read, without a download."""
    from companion.data import load_mnist

    monkeypatch.setattr(data_module, "MNIST", dataclasses.replace(tiny.spec, name="mnist"))
    root = tiny.write(isolated_data_env / "mnist")
    for split in ("train", "test"):
        images, labels = load_mnist(split, root=root, download=False)
        np.testing.assert_array_equal(images.numpy(), tiny.arrays[split, "images"])
        np.testing.assert_array_equal(labels.numpy(), tiny.arrays[split, "labels"])
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    env = isolated_data_env / "env"
    tiny.write(env / "mnist", gz=False)  # $COMPANION_DATA/mnist/, as for Fashion-MNIST
    monkeypatch.setenv("COMPANION_DATA", str(env))
    images, _ = load_mnist("test", download=False)
    np.testing.assert_array_equal(images.numpy(), tiny.arrays["test", "images"])


def test_load_mnist_offline_names_the_mnist_files_and_mirrors(isolated_data_env, monkeypatch):
    from companion.data import MNIST, load_mnist
    from companion.data.datasets import MNIST_CLASSES

    with pytest.raises(DataNotFoundError) as info:
        load_mnist("test", root=isolated_data_env / "empty", download=False)
    message = str(info.value)
    assert "mnist file t10k-images-idx3-ubyte was not found" in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz" in message
    assert "fashion" not in message.lower()
    asked = []
    monkeypatch.setattr(
        data_module, "_download", lambda spec, file, target, root: asked.append(
            (spec, file.name, target)) or np.zeros((1, 28, 28) if "images" in file.name else 1)
    )  # fmt: skip
    load_mnist("train", root=isolated_data_env / "mine")  # download=True by default
    assert asked == [
        (MNIST, "train-images-idx3-ubyte", isolated_data_env / "mine"),
        (MNIST, "train-labels-idx1-ubyte", isolated_data_env / "mine"),
    ]
    assert MNIST_CLASSES == tuple("0123456789") and MNIST.class_names == MNIST_CLASSES


# ---------------------------------------------------------------- checksums
def test_corrupted_file_outside_download_folder_is_reported_and_skipped(
    tiny, isolated_data_env, tmp_path
):
    debian = tiny.write(tmp_path / "debian")
    name = tiny.names["test", "images"]
    raw = bytearray(tiny.raw["test", "images"])
    raw[-1] ^= 0xFF  # one flipped byte: same length, other content
    (debian / f"{name}.gz").write_bytes(gzip.compress(bytes(raw)))
    spec = dataclasses.replace(tiny.spec, debian_dir=debian)
    with pytest.warns(DataWarning, match=r"SHA-256 .* expected .* Skipping it"):
        with pytest.raises(DataNotFoundError):
            load_idx_dataset(spec, "test", download=False)
    assert (debian / f"{name}.gz").exists()  # never deletes files it does not own


def test_truncated_file_is_detected(tiny, isolated_data_env, tmp_path):
    root = tiny.write(tmp_path / "root", gz=False)
    name = tiny.names["train", "images"]
    (root / name).write_bytes(tiny.raw["train", "images"][:-10])
    with pytest.warns(DataWarning, match=r"decompressed, expected 208 \(truncated or corrupted\)"):
        with pytest.raises(DataNotFoundError):
            load_idx_dataset(tiny.spec, "train", root=root, download=False)


# ---------------------------------------------------------------- downloads
def test_download_from_local_server(tiny, isolated_data_env, monkeypatch, http_server):
    served, url, hits = http_server
    tiny.write(served)
    monkeypatch.setenv("COMPANION_DATA_URL", url)
    images, labels = load_idx_dataset(tiny.spec, "train")
    np.testing.assert_array_equal(images.numpy(), tiny.arrays["train", "images"])
    cache = search_dirs(tiny.spec)[0]
    assert (cache / "train-images-idx3-ubyte.gz").is_file()
    assert sorted(hits) == ["/train-images-idx3-ubyte.gz", "/train-labels-idx1-ubyte.gz"]
    load_idx_dataset(tiny.spec, "train")  # second call: from the cache, no request
    assert len(hits) == 2


def test_corrupted_cached_file_is_fetched_again(tiny, isolated_data_env, monkeypatch, http_server):
    served, url, hits = http_server
    tiny.write(served)
    cache = tiny.write(search_dirs(tiny.spec)[0], keys=[("test", "labels")])
    name = tiny.names["test", "labels"]
    (cache / f"{name}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01garbage"))
    monkeypatch.setenv("COMPANION_DATA_URL", url)
    with pytest.warns(DataWarning, match="Fetching it again"):
        _, labels = load_idx_dataset(tiny.spec, "test")
    np.testing.assert_array_equal(labels.numpy(), tiny.arrays["test", "labels"])
    assert f"/{name}.gz" in hits


def test_corrupted_download_is_rejected_and_not_kept(
    tiny, isolated_data_env, monkeypatch, http_server
):
    served, url, _ = http_server
    tiny.write(served)
    name = tiny.names["train", "labels"]
    raw = bytearray(tiny.raw["train", "labels"])
    raw[9] = (raw[9] + 1) % 3
    (served / f"{name}.gz").write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setenv("COMPANION_DATA_URL", url)
    with pytest.raises(DataChecksumError, match=rf"{name}.gz .* SHA-256 .* expected"):
        load_idx_dataset(tiny.spec, "train")
    assert not (search_dirs(tiny.spec)[0] / f"{name}.gz").exists()


@pytest.mark.needs_data
def test_real_fashion_mnist_downloads_and_verifies(isolated_data_env, monkeypatch, http_server):
    """The committed checksums match the real files, fetched over HTTP like a user's download
    (from a local server: the real files are served from where they are found on disk)."""
    served, url, hits = http_server
    found = fashion_mnist_files()  # not None: the needs_data mark skips otherwise
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        if found[name].suffix == ".gz":
            shutil.copy(found[name], served / f"{name}.gz")
        else:
            (served / f"{name}.gz").write_bytes(gzip.compress(found[name].read_bytes()))
    spec = dataclasses.replace(FASHION_MNIST, debian_dir=None)
    monkeypatch.setattr(data_module, "FASHION_MNIST", spec)
    monkeypatch.setenv("COMPANION_DATA_URL", url)
    root = isolated_data_env / "my-data"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, labels = load_fashion_mnist("test", root=root)
    assert images.shape == (10000, 28, 28) and torch.equal(
        labels.bincount(), torch.full((10,), 1000)
    )
    assert sorted(hits) == ["/t10k-images-idx3-ubyte.gz", "/t10k-labels-idx1-ubyte.gz"]
    assert (root / "t10k-images-idx3-ubyte.gz").is_file()
