"""Shared fixtures: a local HTTP server, small IDX data sets made on the fly, and devices."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from companion.data import DatasetSpec, IdxFile
from companion.runtime import available_devices


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX (written here independently of companion.idx)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


class TinyDataset:
    """A 2-split IDX data set of random 4×4 images, with its spec and raw bytes."""

    def __init__(self, name: str = "tiny", seed: int = 0):
        rng = np.random.default_rng(seed)
        self.arrays = {
            ("train", "images"): rng.integers(0, 256, (12, 4, 4), dtype=np.uint8),
            ("train", "labels"): rng.integers(0, 3, 12, dtype=np.uint8),
            ("test", "images"): rng.integers(0, 256, (5, 4, 4), dtype=np.uint8),
            ("test", "labels"): rng.integers(0, 3, 5, dtype=np.uint8),
        }
        names = {
            ("train", "images"): "train-images-idx3-ubyte",
            ("train", "labels"): "train-labels-idx1-ubyte",
            ("test", "images"): "t10k-images-idx3-ubyte",
            ("test", "labels"): "t10k-labels-idx1-ubyte",
        }
        self.raw = {key: idx_bytes(a) for key, a in self.arrays.items()}
        self.names = names
        files = {
            key: IdxFile(names[key], len(raw), sha256=hashlib.sha256(raw).hexdigest())
            for key, raw in self.raw.items()
        }
        self.spec = DatasetSpec(
            name=name,
            urls=("http://127.0.0.1:9/",),  # discard port: nothing answers there
            files=files,
            class_names=("a", "b", "c"),
            debian_dir=None,
            apt_package="dataset-tiny",
        )

    def write(self, folder: Path, *, gz: bool = True, keys=None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for key in keys or self.raw:
            name = self.names[key]
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(self.raw[key]))
            else:
                (folder / name).write_bytes(self.raw[key])
        return folder


@functools.cache
def _fashion_mnist_missing() -> str | None:
    """Why the tests marked ``needs_data`` cannot run here, or None when they can."""
    from helpers import fashion_mnist_files

    from companion.data import FASHION_MNIST
    from companion.data.datasets import search_dirs

    if fashion_mnist_files() is not None:
        return None
    looked = ", ".join(str(folder) for folder in search_dirs(FASHION_MNIST))
    return (
        f"needs Fashion-MNIST, not found in {looked}; unit tests never download it: run "
        "`python -m companion.data` or `sudo apt-get install dataset-fashion-mnist` first"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_data") is not None:
        reason = _fashion_mnist_missing()
        if reason is not None:
            pytest.skip(reason)


@pytest.fixture(params=available_devices())
def device(request) -> torch.device:
    """Every device torch reports here: the CPU always, CUDA and MPS when present."""
    return torch.device(request.param)


@pytest.fixture
def tiny() -> TinyDataset:
    return TinyDataset()


@pytest.fixture
def isolated_data_env(tmp_path, monkeypatch):
    """No COMPANION_DATA, a private user cache, no mirror override."""
    monkeypatch.delenv("COMPANION_DATA", raising=False)
    monkeypatch.delenv("COMPANION_DATA_URL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def http_server(tmp_path):
    """Serve a fresh folder over HTTP on 127.0.0.1; yields (folder, base_url, hits)."""
    folder = tmp_path / "served"
    folder.mkdir()
    hits: list[str] = []

    class Handler(_QuietHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    yield from _serve(server, folder, hits)


@pytest.fixture
def slow_http_server(tmp_path):
    """Like ``http_server``, but every file trickles out in 8 pieces over about 0.4 s,
    so that concurrent downloads overlap; yields (folder, base_url, hits)."""
    folder = tmp_path / "served-slowly"
    folder.mkdir()
    hits: list[str] = []

    class Handler(_QuietHandler):
        def do_GET(self):
            hits.append(self.path)
            path = folder / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            step = max(1, len(body) // 8)
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                time.sleep(0.05)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    yield from _serve(server, folder, hits)


def _serve(server: http.server.ThreadingHTTPServer, folder: Path, hits: list[str]):
    """Run ``server`` in a thread; yield (folder, base_url, hits); shut it down after."""
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/", hits
    finally:
        server.shutdown()
        server.server_close()
