"""Train the Fashion-MNIST classifier whose features the Fréchet distance uses.

A small CNN (two 3×3 convolutions with max-pooling, a 128-unit feature
layer, dropout 0.3, 10 logits; :class:`companion.models.classifier.FashionClassifier`)
trained with Adam (lr 1e-3, batch 128) on the 60,000 training images in
[0, 1], seed 0.

    python scripts/train_fashion_classifier.py --epochs 6

writes ``companion/pretrained/weights/fashion_classifier.pt`` (float16 state dict,
loaded with ``weights_only=True`` by ``load_fashion_classifier``) and
``companion/pretrained/records/fashion_classifier.json`` (test accuracy, time,
machine, command). It resumes from ``_build/fashion_classifier.ckpt``.
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
from companion.models import FashionClassifier
from companion.pretrained.loaders import CLASSIFIER_WEIGHTS
from companion.training import Trainer

WEIGHTS = ROOT / "companion" / "pretrained" / "weights" / CLASSIFIER_WEIGHTS
RESULTS = ROOT / "companion" / "pretrained" / "records" / "fashion_classifier.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--subset", type=int, default=None, help="first N training images only")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint", default=str(ROOT / "_build" / "fashion_classifier.ckpt"))
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args()
    seed_everything(0)
    device = resolve_device(args.device)
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    if args.subset is not None:
        x_train, y_train = x_train[: args.subset], y_train[: args.subset]
    x_train, x_test = to_float(x_train).unsqueeze(1), to_float(x_test).unsqueeze(1)

    model = FashionClassifier()
    trainer = Trainer(
        model, epochs=args.epochs, batch_size=128, lr=1e-3, device=device, seed=0,
        checkpoint_path=args.checkpoint,
    )  # fmt: skip
    start = time.perf_counter()
    history = trainer.fit((x_train, y_train), resume=True)
    if not trainer.is_main_process:  # under torchrun: rank 0 evaluates and writes
        return
    train_seconds = time.perf_counter() - start
    accuracy = model.accuracy(x_test.to(device), y_test.to(device))

    weights = Path(args.weights)
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().half() for k, v in model.state_dict().items()}, weights)
    # the shipped float16 weights are what users load: report their accuracy too
    shipped = FashionClassifier()
    shipped.load_state_dict(
        {k: v.float() for k, v in torch.load(weights, weights_only=True).items()}
    )
    shipped_accuracy = shipped.to(device).accuracy(x_test.to(device), y_test.to(device))

    command = f"python scripts/train_fashion_classifier.py --epochs {args.epochs}"
    if args.subset is not None:
        command += f" --subset {args.subset}"
    results = {
        "machine": machine_info(device),
        "command": command,
        "architecture": "conv3x3(32)-pool-conv3x3(64)-pool-linear(128)-dropout(0.3)-linear(10)",
        "data": f"Fashion-MNIST, {len(x_train)} training images in [0, 1]; 10000 test images",
        "epochs": args.epochs,
        "train_seconds_this_run": round(train_seconds, 1),
        "seconds_per_epoch": [round(s, 1) for s in history["seconds"]],
        "final_train_accuracy": round(history["accuracy"][-1], 4),
        "test_accuracy_float32": round(accuracy, 4),
        "test_accuracy_float16_weights": round(shipped_accuracy, 4),
        "weights_bytes": weights.stat().st_size,
        "target": {"test_accuracy_at_least": 0.90},
    }
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
