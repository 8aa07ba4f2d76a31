"""The trainer on 1 and 2 processes (torchrun, gloo) on this CPU: the book's VAE, seconds an epoch.

Three settings, each launched as ``torchrun --standalone --nproc_per_node=N`` and
interleaved over ``--rounds`` rounds (benchmarks/common.py):

* 1 process with 1 thread, 1 process with 2 threads, 2 processes with 1 thread each;

every launch trains the VAE of the VAE chapter (784-512-256-32, batch 128 global,
dynamic binarisation) for ``--epochs`` epochs on the first ``--images`` training
images and reports the seconds of its epochs after the first (process start-up,
data loading and the first epoch's warm-up are left out). Writes
``companion/pretrained/records/distributed.json`` (median, range and spread per
setting, the speed-up of 2 processes, machine, command).

    nice -n 10 python benchmarks/distributed.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import interleaved, machine_info, spread  # noqa: E402

RECORD = ROOT / "companion" / "pretrained" / "records" / "distributed.json"
SETTINGS = {"1 process, 1 thread": (1, 1), "1 process, 2 threads": (1, 2),
            "2 processes, 1 thread each": (2, 1)}  # fmt: skip


def worker(args: argparse.Namespace) -> None:
    """One launch (run by every rank): train, and rank 0 writes the epochs' seconds."""
    from companion.data import DynamicBinarizer, flatten, load_fashion_mnist, to_float
    from companion.models import VAE
    from companion.pretrained.loaders import VAE_HIDDEN, VAE_LATENT
    from companion.training import Trainer

    torch.set_num_threads(args.threads)
    x = flatten(to_float(load_fashion_mnist("train")[0][: args.images]))
    torch.manual_seed(0)
    model = VAE.mlp(784, VAE_HIDDEN, VAE_LATENT, likelihood="bernoulli")
    trainer = Trainer(model, epochs=args.epochs, batch_size=128, device="cpu", seed=0,
                      batch_transform=DynamicBinarizer(), progress=False)  # fmt: skip
    history = trainer.fit(x)
    if trainer.is_main_process:
        Path(args.out).write_text(json.dumps(history["seconds"][1:]))


def launch(processes: int, threads: int, args: argparse.Namespace, seconds: list) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "seconds.json"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", __file__, "--worker", "--out", str(out),
                   "--threads", str(threads), "--epochs", str(args.epochs),
                   "--images", str(args.images)]  # fmt: skip
        subprocess.run(command, env=env, check=True, capture_output=True)
        seconds.extend(json.loads(out.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="the first is not timed")
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    seconds: dict[str, list[float]] = {name: [] for name in SETTINGS}
    runs = {
        name: (lambda p=p, t=t, s=seconds[name]: launch(p, t, args, s))
        for name, (p, t) in SETTINGS.items()
    }
    interleaved(runs, args.rounds, pause=1.0)
    results = {name: spread(values, digits=3) for name, values in seconds.items()}
    one, two = results["1 process, 1 thread"]["median"], results["2 processes, 1 thread each"]
    record = {
        "machine": machine_info(torch.device("cpu")),
        "command": f"python benchmarks/distributed.py --rounds {args.rounds} --epochs "
        f"{args.epochs} --images {args.images}",
        "model": "VAE 784-512-256-32, Bernoulli, batch 128 (global), dynamic binarisation",
        "images_per_epoch": args.images,
        "seconds_per_epoch": results,
        "epochs_timed_per_launch": args.epochs - 1,
        "speedup_2_processes_over_1_process_1_thread": round(one / two["median"], 2),
        "speedup_2_processes_over_1_process_2_threads": round(
            results["1 process, 2 threads"]["median"] / two["median"], 2
        ),
        "note": "2 CPU cores shared with other jobs: the 2 processes compete with each other "
        "and with the machine's other work",
    }
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
