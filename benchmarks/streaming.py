"""Streaming fits: peak memory of PCA and KMeans on a 1-GB stream, against the chunk size.

The stream is synthetic (8 Gaussian blobs in ``--features`` dimensions, float32)
and is generated chunk by chunk from a seed, so the data are never held whole:
a function returning a fresh iterator of chunks is the chunk source. Each
(estimator, chunk size) pair runs in its own process, which reports its resident
memory before the fit and its peak during it (``ru_maxrss``), and the fit's wall
time. KMeans runs k-means++ on the reservoir sample, then ``--kmeans-iterations``
Lloyd passes (each one pass over the whole stream).

The point: the memory a fit adds stays near a few chunks (PCA: the chunk in
float64 and a d×d scatter; KMeans: the chunk, the 10,000-row init sample and one
int64 label per row), not the stream's size. Writes
``companion/pretrained/records/streaming.json``.

    nice -n 10 python benchmarks/streaming.py            # ~1 GB, 3 chunk sizes, < 10 min
    python benchmarks/streaming.py --gigabytes 0.05 --out /tmp/streaming.json   # quick check
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
from common import machine_info, write_results

from companion.classical import PCA, ConvergenceWarning, KMeans

SEED = 0
N_BLOBS = 8


def chunks(n_rows: int, n_features: int, chunk_rows: int):
    """The stream: ``n_rows`` float32 rows in chunks of ``chunk_rows``, the same every time."""
    centres = 5 * torch.randn(N_BLOBS, n_features, generator=torch.Generator().manual_seed(SEED))
    for index, start in enumerate(range(0, n_rows, chunk_rows)):
        generator = torch.Generator().manual_seed(SEED + 1 + index)
        m = min(chunk_rows, n_rows - start)
        labels = torch.randint(N_BLOBS, (m,), generator=generator)
        yield centres[labels] + torch.randn(m, n_features, generator=generator)


def rss_mb() -> float:
    """Resident memory of this process now, in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def one_run(method: str, n_rows: int, n_features: int, chunk_rows: int, iterations: int) -> dict:
    """Fit once in this process; return its memory and time."""
    torch.set_num_threads(1)
    source = lambda: chunks(n_rows, n_features, chunk_rows)  # noqa: E731 - a re-iterable source
    next(iter(source()))  # warm up the generator and the allocator
    before = rss_mb()
    start = time.perf_counter()
    if method == "pca":
        model = PCA(20).fit(source)
        check = float(model.explained_variance_ratio_.sum())
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = KMeans(N_BLOBS, max_iter=iterations, random_state=SEED).fit(source)
        check = float(model.inertia_) / n_rows
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
    return {
        "method": method,
        "chunk_rows": chunk_rows,
        "chunk_mb": round(chunk_rows * n_features * 4 / 2**20, 2),
        "rss_before_fit_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        "added_by_fit_mb": round(peak - before, 1),
        "seconds": round(seconds, 1),
        "passes": 1 if method == "pca" else iterations + 2,
        "check": check,  # variance ratio kept (PCA) or inertia per row (KMeans)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gigabytes", type=float, default=1.0, help="size of the stream")
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--chunk-rows", type=int, nargs="+", default=[1024, 16384, 131072])
    parser.add_argument("--kmeans-iterations", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the JSON here instead")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "CHUNK_ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    n_rows = int(args.gigabytes * 2**30 / (4 * args.features))
    if args.one:
        method, chunk_rows = args.one[0], int(args.one[1])
        print(
            json.dumps(one_run(method, n_rows, args.features, chunk_rows, args.kmeans_iterations))
        )
        return
    runs = []
    for method in ("pca", "kmeans"):
        for chunk_rows in args.chunk_rows:
            command = [sys.executable, __file__, "--one", method, str(chunk_rows),
                       "--gigabytes", str(args.gigabytes), "--features", str(args.features),
                       "--kmeans-iterations", str(args.kmeans_iterations)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(runs[-1], flush=True)
    results = {
        "machine": machine_info(torch.device("cpu")),
        "command": "nice -n 10 python benchmarks/streaming.py " + " ".join(sys.argv[1:]),
        "stream": {
            "rows": n_rows,
            "features": args.features,
            "dtype": "float32",
            "data_mb": round(n_rows * args.features * 4 / 2**20, 1),
            "generated": "chunk by chunk from a seed; never held whole",
        },
        "threads": 1,
        "runs": runs,
    }
    write_results("streaming", torch.device("cpu"), results, args.out)


if __name__ == "__main__":
    main()
