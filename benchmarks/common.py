"""Helpers shared by the benchmark scripts: machine description, timing, output."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "companion" / "pretrained" / "records"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def thread_pools() -> list[dict]:
    """The thread pools loaded in this process (threadpoolctl) and torch's own settings."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # a benchmark without scikit-learn
        pools = []
    else:
        pools = [
            {
                k: info.get(k)
                for k in ("user_api", "internal_api", "prefix", "num_threads", "version")
            }
            for info in threadpool_info()
        ]
    return pools + [
        {"user_api": "torch", "intra_op_threads": torch.get_num_threads(),
         "inter_op_threads": torch.get_num_interop_threads()}
    ]  # fmt: skip


def interleaved(
    runs: dict[str, Callable[[], object]],
    rounds: int,
    *,
    pause: float = 1.0,
    device: torch.device | None = None,
) -> dict[str, list[float]]:
    """Wall times of every run, ``rounds`` times, interleaved: each round calls every run
    once (in an order rotated by one each round), with ``pause`` seconds between calls so
    that one library's spinning threads do not slow the next. Returns seconds per run."""
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            time.sleep(pause)
            if device is not None:
                sync(device)
            start = time.perf_counter()
            runs[name]()
            if device is not None:
                sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> dict:
    """Median, min, max and the relative spread (max - min) / median of ``values``·scale."""
    scaled = [v * scale for v in values]
    median = statistics.median(scaled)
    return {
        "median": round(median, digits),
        "min": round(min(scaled), digits),
        "max": round(max(scaled), digits),
        "relative_spread": round((max(scaled) - min(scaled)) / median, 3) if median else None,
        "n": len(scaled),
    }


def machine_info(device: torch.device) -> dict:
    """What ran the benchmark, recorded next to every result."""
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_1_5_15_min": list(os.getloadavg()),
        "thread_pools": thread_pools(),
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def write_results(
    name: str, device: torch.device, results: dict, out: str | Path | None = None
) -> Path:
    """Write ``companion/pretrained/records/NAME[-DEVICE].json`` (or ``out``, e.g. for a
    quick check) and print it."""
    if out is None:
        suffix = "" if device.type == "cpu" else f"-{device.type}"
        out = RESULTS / f"{name}{suffix}.json"
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"written to {shown}")
    return out
