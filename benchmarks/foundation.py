"""Foundation benchmarks: data loading and the trainer's overhead.

Run with ``make bench`` (or ``python benchmarks/foundation.py --device cuda``). Writes
``companion/pretrained/records/foundation[-DEVICE].json``, which the book shows.

What is measured:

* ``load_fashion_mnist_train_s``: wall time to find, verify (SHA-256) and decode
  the 60,000 training images and labels; median of 3 runs.
* ``trainer_examples_per_s`` and ``bare_loop_examples_per_s``: one epoch of a
  784-256-32-256-784 autoencoder on 20,000 images, batch 128, through
  :class:`companion.training.trainer.Trainer` (including its one-off NaN check of the data)
  and through a hand-written loop doing the same updates, median of 7;
  ``trainer_overhead`` is their ratio minus one (target: below 0.10).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import machine_info, sync, write_results
from torch import nn

from companion import resolve_device, seed_everything
from companion.data import flatten, load_fashion_mnist, to_float
from companion.training import Trainer


class BenchAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 32),
            nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 784),
        )  # fmt: skip

    def loss(self, x):
        bce = nn.functional.binary_cross_entropy_with_logits(self.net(x), x, reduction="none")
        return {"loss": bce.sum(1).mean()}


def time_loading(repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load_fashion_mnist("train")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bare_epoch(model, x, batch_size, device) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).to(device)
    sync(device)
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        batch = x[order[i : i + batch_size]]
        optimizer.zero_grad(set_to_none=True)
        out = model.loss(batch)
        out["loss"].backward()
        optimizer.step()
        float(out["loss"].detach())  # the trainer reads every loss too
    sync(device)
    return len(x) / (time.perf_counter() - start)


def trainer_epoch(model, x, batch_size, device) -> float:
    trainer = Trainer(model, epochs=1, batch_size=batch_size, device=device, progress=False)
    sync(device)
    start = time.perf_counter()
    trainer.fit(x)
    sync(device)
    return len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    device = resolve_device(args.device)
    seed_everything(0)
    x = flatten(to_float(load_fashion_mnist("train")[0][: args.n])).to(device)

    warm = BenchAutoencoder().to(device)
    bare_epoch(warm, x[:2048], 128, device)  # warm-up (allocator, kernels)
    bare, trainer = [], []
    for _ in range(7):  # interleaved, median: this machine's timings are noisy
        seed_everything(0)
        bare.append(bare_epoch(BenchAutoencoder().to(device), x, 128, device))
        seed_everything(0)
        trainer.append(trainer_epoch(BenchAutoencoder().to(device), x, 128, device))
    bare_rate, trainer_rate = statistics.median(bare), statistics.median(trainer)
    results = {
        "machine": machine_info(device),
        "load_fashion_mnist_train_s": round(time_loading(), 3),
        "n_examples": args.n,
        "bare_loop_examples_per_s": round(bare_rate),
        "trainer_examples_per_s": round(trainer_rate),
        "trainer_overhead": round(bare_rate / trainer_rate - 1, 4),
        "target_trainer_overhead_below": 0.10,
    }
    write_results("foundation", device, results)


if __name__ == "__main__":
    main()
