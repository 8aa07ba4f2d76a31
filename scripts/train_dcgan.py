"""Train the DCGAN of the GAN chapter on Fashion-MNIST and record its Fréchet distance.

The DCGAN players of :mod:`companion.models.dcgan` for 28×28 images (latent 100,
``--channels`` c), the non-saturating loss, Adam lr 2e-4 with β₁ = 0.5 and
batch 128, on the 60,000 training images scaled to [-1, 1]. After every
epoch the script records

* 16 samples at fixed latent codes (the chapter shows them over training), and
* the Fréchet distance between 5,000 samples and the 10,000 test images in
  the feature space of the book's Fashion-MNIST classifier
  (``companion.models.classifier``), beside the train-vs-test floor.

    python scripts/train_dcgan.py --epochs 10

writes ``companion/pretrained/weights/dcgan_fashion_mnist.pt`` (the generator in float16
and the uint8 snapshots; loaded with ``weights_only=True`` by
``companion.pretrained.load_dcgan``) and
``companion/pretrained/records/dcgan_training.json``. It resumes from
``_build/dcgan.ckpt`` when run again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine_info

from companion import resolve_device, seed_everything
from companion.data import load_fashion_mnist, to_float
from companion.evaluation import FrechetScorer
from companion.models import (
    GAN,
    DCGANDiscriminator,
    DCGANGenerator,
)
from companion.pretrained.loaders import DCGAN_CHANNELS, DCGAN_LATENT
from companion.training import Trainer

WEIGHTS = ROOT / "companion" / "pretrained" / "weights" / "dcgan_fashion_mnist.pt"
RESULTS = ROOT / "companion" / "pretrained" / "records" / "dcgan_training.json"


class Record:
    """Samples at fixed codes and the Fréchet distance after every epoch."""

    def __init__(self, gan: GAN, scorer: FrechetScorer, n_samples: int = 5000):
        self.gan, self.scorer, self.n_samples = gan, scorer, n_samples
        self.fixed_z = torch.randn(16, gan.latent_dim, generator=torch.Generator().manual_seed(7))
        self.snapshots: list[torch.Tensor] = []
        self.frechet: list[float] = []

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        if not trainer.is_main_process:  # under torchrun: rank 0 scores
            return
        generator = self.gan.generator
        device = next(generator.parameters()).device
        generator.eval()
        with torch.no_grad():
            images = self.gan.generate(self.fixed_z.to(device))
            self.snapshots.append(((images + 1) * 127.5).round().clamp(0, 255).byte().cpu())
            samples = torch.cat(
                [self.gan.sample(500) for _ in range(self.n_samples // 500)]
            )  # (n, 1, 28, 28) in [-1, 1]
        generator.train()
        self.frechet.append(self.scorer.distance((samples + 1) / 2))
        print(f"epoch {epoch + 1}: Fréchet distance {self.frechet[-1]:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=60000, help="fewer images: smoke test")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint", default=str(ROOT / "_build" / "dcgan.ckpt"))
    args = parser.parse_args()
    seed_everything(0)
    device = resolve_device(args.device)
    x_train = to_float(load_fashion_mnist("train")[0]).unsqueeze(1)  # (60000, 1, 28, 28)
    x_train = x_train[: args.train_size]
    x_test = to_float(load_fashion_mnist("test")[0]).unsqueeze(1)
    scorer = FrechetScorer(x_test, device=device)
    floor = scorer.distance(x_train[:5000])  # same n as the samples: the estimate is biased by n

    gan = GAN(DCGANGenerator(DCGAN_LATENT, DCGAN_CHANNELS), DCGANDiscriminator(DCGAN_CHANNELS))
    record = Record(gan, scorer)
    trainer = Trainer(
        gan, epochs=args.epochs, batch_size=128, lr=2e-4, device=device, seed=0,
        checkpoint_path=args.checkpoint, callbacks=[record],
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(x_train * 2 - 1, resume=True)
    seconds = time.perf_counter() - start
    if not trainer.is_main_process:  # under torchrun: rank 0 evaluates and writes
        return
    if len(record.frechet) != args.epochs:
        raise SystemExit(
            f"recorded {len(record.frechet)} of {args.epochs} epochs: a resumed run lost the "
            "earlier records; delete the checkpoint and train from the start."
        )

    generator = {k: v.detach().cpu().half() for k, v in gan.generator.state_dict().items()}
    snapshots = torch.stack(record.snapshots)  # (epochs, 16, 1, 28, 28) uint8
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"generator": generator, "snapshots": snapshots}, WEIGHTS)

    n_images = args.epochs * len(x_train)
    results = {
        "machine": machine_info(device),
        "command": f"python scripts/train_dcgan.py --epochs {args.epochs}"
        + (f" --train-size {args.train_size}" if args.train_size != 60000 else ""),
        "architecture": {"latent": DCGAN_LATENT, "channels": DCGAN_CHANNELS, "image_size": 28},
        "optimiser": {"adam_lr": 2e-4, "betas": [0.5, 0.999], "batch_size": 128},
        "epochs": args.epochs,
        "train_seconds_including_scoring": round(seconds, 1),
        "train_images_per_second_including_scoring": round(n_images / seconds, 1),
        "frechet_by_epoch": [round(f, 3) for f in record.frechet],
        "frechet_train_vs_test_floor": round(floor, 3),
        "frechet_samples": record.n_samples,
        "loss_history": {k: [round(v, 4) for v in vs] for k, vs in trainer.history.items()},
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "loss_history"}, indent=2))


if __name__ == "__main__":
    main()
