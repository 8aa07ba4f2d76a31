"""VAE benchmark: the companion VAE through the shared Trainer against a plain PyTorch loop.

Both train a 784-400-20 Bernoulli VAE (ReLU, Kingma & Welling's MNIST model)
on dynamically binarised Fashion-MNIST (a fresh Bernoulli draw of every batch)
with Adam (lr 1e-3), batch 128, for ``--epochs`` epochs. Both models are
created right after ``seed_everything(seed)`` with their layers in the same
order, so they start from the same weights (checked), and both visit the
batches in the same order. The plain loop is the reference: its own model,
loss and loop, as in pytorch/examples, reading every batch loss with
``.item()`` as such loops do.

The two runs alternate epoch by epoch (companion, then plain, ...), so both
see the same machine load; the plain loop draws its random numbers from its
own generator, so alternating changes neither run.

Reported: seconds per epoch (median over epochs) and the test negative ELBO
after the last epoch (nats per image, on the 10,000 test images binarised
once with a fixed seed; 10 draws of z per image, KL in closed form), each
model scored by its own code. Targets: companion time per epoch at most 1.1x
the plain loop's, test negative ELBO within 1 %.

    python benchmarks/vae.py          # writes companion/pretrained/records/vae[-DEVICE].json
    python benchmarks/vae.py --epochs 1 --n-train 5000 --out /tmp/vae.json   # quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from common import machine_info, sync, write_results
from torch import nn
from torch.nn import functional as F

from companion import resolve_device, seed_everything
from companion.data import DynamicBinarizer, binarize, flatten, load_fashion_mnist, to_float
from companion.models import VAE
from companion.training import Trainer

LATENT, HIDDEN, BATCH, LR = 20, 400, 128, 1e-3
TARGETS = {"time_ratio_at_most": 1.1, "test_elbo_relative_difference_at_most": 0.01}


class PlainVAE(nn.Module):
    """The reference model, written out: 784-400-(20+20) encoder, 20-400-784 decoder."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, 2 * LATENT)  # means and log-variances
        self.fc3 = nn.Linear(LATENT, HIDDEN)
        self.fc4 = nn.Linear(HIDDEN, 784)

    def encode(self, x):
        return self.fc2(F.relu(self.fc1(x))).chunk(2, dim=1)

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))  # logits

    def negative_elbo(self, x, generator, n_samples=1):
        """Per example, (B,): BCE averaged over n_samples draws of z, plus the closed-form KL."""
        mu, logvar = self.encode(x)
        bce = 0.0
        for _ in range(n_samples):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            logits = self.decode(mu + eps * torch.exp(0.5 * logvar))
            bce = bce + F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
        return bce / n_samples + kld


def plain_epoch(model, optimizer, x, epoch, seed, generator, device) -> tuple[float, float]:
    """One epoch of the plain loop; returns (seconds, mean training negative ELBO)."""
    model.train()
    # the trainer's data order: a permutation seeded by (seed, epoch)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    order = order.to(device)
    total = 0.0
    sync(device)
    start = time.perf_counter()
    for i in range(0, len(x), BATCH):
        batch = torch.bernoulli(x[order[i : i + BATCH]], generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss = model.negative_elbo(batch, generator).mean()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    sync(device)
    return time.perf_counter() - start, total / len(x)


def warm_up(x, device, batches=30) -> None:
    """A few untimed updates of a throwaway model, on its own random numbers."""
    model = PlainVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator(device=device).manual_seed(0)
    for i in range(batches):
        batch = torch.bernoulli(x[i * BATCH : (i + 1) * BATCH], generator=generator)
        optimizer.zero_grad(set_to_none=True)
        model.negative_elbo(batch, generator).mean().backward()
        optimizer.step()
    sync(device)


@torch.no_grad()
def mean_negative_elbo(score, x, chunk=1000) -> float:
    """Mean over x of score(x) -> (B,) negative ELBOs, computed in chunks."""
    total = sum(float(score(x[i : i + chunk]).sum()) for i in range(0, len(x), chunk))
    return total / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", help="write the JSON here instead of companion/pretrained/records/"
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    load_before = os.getloadavg()

    x_train = flatten(to_float(load_fashion_mnist("train")[0][: args.n_train])).to(device)
    x_test = flatten(to_float(load_fashion_mnist("test")[0]))
    x_test = binarize(x_test, generator=torch.Generator().manual_seed(12345)).to(device)

    warm_up(x_train, device)  # allocator, kernels and caches, before either timed run
    seed_everything(args.seed)
    plain = PlainVAE().to(device)
    seed_everything(args.seed)
    model = VAE.mlp(784, (HIDDEN,), LATENT, likelihood="bernoulli")
    same_start = all(
        torch.equal(a.cpu(), b) for a, b in zip(plain.parameters(), model.parameters(), strict=True)
    )
    assert same_start, "the plain and companion models should start from the same weights"

    optimizer = torch.optim.Adam(plain.parameters(), lr=LR)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    plain_seconds, plain_train = [], []

    class PlainEpochAfterEach:
        """Runs one plain epoch after each companion epoch (not timed by the trainer)."""

        def on_epoch_end(self, trainer, epoch, logs):
            seconds, train = plain_epoch(
                plain, optimizer, x_train, epoch, args.seed, generator, device
            )
            plain_seconds.append(seconds)
            plain_train.append(train)

    trainer = Trainer(
        model, epochs=args.epochs, batch_size=BATCH, lr=LR, device=device, seed=args.seed,
        batch_transform=DynamicBinarizer(), callbacks=[PlainEpochAfterEach()], progress=False,
    )  # fmt: skip
    history = trainer.fit(x_train)

    model.eval()
    plain.eval()
    eval_generator = torch.Generator(device=device).manual_seed(1)
    torch.manual_seed(1)
    rows = {
        "plain": {
            "seconds_per_epoch_median": round(statistics.median(plain_seconds), 3),
            "seconds_per_epoch": [round(s, 3) for s in plain_seconds],
            "train_negative_elbo_last_epoch": round(plain_train[-1], 3),
            "test_negative_elbo": round(
                mean_negative_elbo(lambda x: plain.negative_elbo(x, eval_generator, 10), x_test), 3
            ),
        },
        "companion": {
            "seconds_per_epoch_median": round(statistics.median(history["seconds"]), 3),
            "seconds_per_epoch": [round(s, 3) for s in history["seconds"]],
            "train_negative_elbo_last_epoch": round(history["negative_elbo"][-1], 3),
            "test_negative_elbo": round(
                mean_negative_elbo(lambda x: -model.elbo(x, n_samples=10), x_test), 3
            ),
        },
    }
    ours, ref = rows["companion"], rows["plain"]
    time_ratio = ours["seconds_per_epoch_median"] / ref["seconds_per_epoch_median"]
    elbo_diff = abs(ours["test_negative_elbo"] / ref["test_negative_elbo"] - 1)
    results = {
        "machine": machine_info(device),
        "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
        "settings": {
            "data": f"Fashion-MNIST, {len(x_train)} training images dynamically binarised; "
            "10000 test images binarised once (seed 12345)",
            "architecture": [784, HIDDEN, LATENT],
            "likelihood": "bernoulli",
            "optimizer": f"Adam lr={LR}",
            "batch_size": BATCH,
            "epochs": args.epochs,
            "seed": args.seed,
            "test_elbo_samples_per_image": 10,
        },
        "methods": rows,
        "summary": {
            "time_ratio_companion_over_plain": round(time_ratio, 3),
            "test_elbo_relative_difference": round(elbo_diff, 4),
            "targets": TARGETS,
            "time_target_met": time_ratio <= TARGETS["time_ratio_at_most"],
            "elbo_target_met": elbo_diff <= TARGETS["test_elbo_relative_difference_at_most"],
        },
    }
    write_results("vae", device, results, args.out)


if __name__ == "__main__":
    main()
