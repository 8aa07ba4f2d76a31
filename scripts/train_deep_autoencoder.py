"""Train the deep autoencoder of the autoencoder chapter and ship its weights.

Reproduces the comparison of Hinton & Salakhutdinov (2006) on Fashion-MNIST:
a 784-1000-500-250-30 autoencoder against PCA with 30 components, both scored
by the squared reconstruction error per test image (summed over pixels).

    python scripts/train_deep_autoencoder.py --epochs 150 --decay-at 130

trains with Adam at lr 1e-3, divided by ten from epoch ``--decay-at`` on, and
writes ``companion/pretrained/weights/deep_autoencoder_30.pt`` (float16 state dict, loaded
with ``weights_only=True``) and ``companion/pretrained/records/deep_autoencoder.json``
(the errors, the settings, the machine and the command).
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
from companion.classical import PCA
from companion.data import flatten, load_fashion_mnist, to_float
from companion.models import Autoencoder
from companion.pretrained.loaders import DEEP_AUTOENCODER_DIMS as DIMS
from companion.training import (
    StepDecay,
    Trainer,
)

WEIGHTS = ROOT / "companion" / "pretrained" / "weights" / "deep_autoencoder_30.pt"


def squared_error_per_image(x: torch.Tensor, reconstruction: torch.Tensor) -> float:
    return float((x - reconstruction).pow(2).sum(1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--decay-at", type=int, default=None, help="epoch where lr drops 10x")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint", default=str(ROOT / "_build" / "deep_ae.ckpt"))
    args = parser.parse_args()
    seed_everything(0)
    device = resolve_device(args.device)
    x_train = flatten(to_float(load_fashion_mnist("train")[0]))
    x_test = flatten(to_float(load_fashion_mnist("test")[0]))

    model = Autoencoder(DIMS, "relu", output="bernoulli")
    trainer = Trainer(
        model, epochs=args.epochs, batch_size=128, lr=1e-3, device=device, seed=0,
        checkpoint_path=args.checkpoint, callbacks=[StepDecay(1e-3, args.decay_at)],
    )  # fmt: skip
    start = time.perf_counter()
    history = trainer.fit(x_train, x_test, resume=True)
    if not trainer.is_main_process:  # under torchrun: rank 0 evaluates and writes
        return
    seconds = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        ae_error = squared_error_per_image(x_test, model(x_test.to(device)).cpu())
    pca = PCA(30).fit(x_train)
    pca_error = squared_error_per_image(x_test, pca.inverse_transform(pca.transform(x_test)))
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half().cpu() for k, v in model.state_dict().items()}, WEIGHTS)
    with torch.no_grad():  # the error of the shipped float16 weights
        shipped = Autoencoder(DIMS, "relu", output="bernoulli")
        shipped.load_state_dict(
            {k: v.float() for k, v in torch.load(WEIGHTS, weights_only=True).items()}
        )
        shipped_error = squared_error_per_image(x_test, shipped(x_test))
    results = {
        "machine": machine_info(device),
        "command": " ".join(
            ["python scripts/train_deep_autoencoder.py", f"--epochs {args.epochs}"]
            + ([f"--decay-at {args.decay_at}"] if args.decay_at is not None else [])
        ),
        "learning_rate": {"adam": 1e-3, "times_0.1_from_epoch": args.decay_at},
        "architecture": DIMS,
        "epochs": args.epochs,
        "train_seconds_this_run": round(seconds, 1),
        "test_squared_error_per_image": {
            "deep_autoencoder": round(ae_error, 3),
            "deep_autoencoder_float16_weights": round(shipped_error, 3),
            "pca_30": round(pca_error, 3),
        },
        "ratio_autoencoder_over_pca": round(shipped_error / pca_error, 3),
        "final_train_loss_bce": round(history["loss"][-1], 3),
        "final_test_loss_bce": round(history["val_loss"][-1], 3),
    }
    out = ROOT / "companion" / "pretrained" / "records" / "deep_autoencoder.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
