"""Train MADE on dynamically binarised Fashion-MNIST and measure its exact test NLL.

MADE 784-1000-784 (ReLU, natural raster ordering, one mask, seed 0; Germain
et al., 2015) trained with Adam (lr 1e-3, divided by ten from ``--decay-at``),
batch 128, on a fresh Bernoulli draw of every training batch; the 10,000
test images are binarised once with seed 12345, as for the VAE
(``scripts/train_vae.py``), so the numbers compare.

    python scripts/train_made.py --epochs 100 --decay-at 80

writes ``companion/pretrained/weights/made_fashion_mnist.pt`` (float32 state dict,
loaded with ``weights_only=True`` by ``companion.models.autoregressive.made.load_made``) and
``companion/pretrained/records/made_nll.json`` (test NLL in nats with its standard
error, bits/dim, train time, machine, command). It resumes from
``_build/made.ckpt`` when run again. ``--subset N`` (the first N training
images) and ``--test-subset N`` make a smoke run; its files go to
``_build/smoke/`` unless ``--weights``/``--results`` say otherwise.

``train_and_report`` is shared with ``scripts/train_pixelcnn.py`` and
``scripts/train_pixelrnn.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine_info

from companion import resolve_device, seed_everything
from companion.data import DynamicBinarizer, binarize, flatten, load_fashion_mnist, to_float
from companion.evaluation import nats_to_bits_per_dim, nll_nats
from companion.models import MADE
from companion.models.autoregressive.made import MADE_HIDDEN
from companion.pretrained.loaders import MADE_WEIGHTS
from companion.training import (
    StepDecay,
    Trainer,
)

TEST_SEED = 12345  # the fixed binarisation of the test images, as in train_vae.py


def common_parser(description: str, epochs: int, decay_at: int | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--decay-at", type=int, default=decay_at, help="epoch where lr drops 10x")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--subset", type=int, default=None, help="first N training images only")
    parser.add_argument("--test-subset", type=int, default=None, help="first N test images only")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint", default=None, help="default _build/NAME.ckpt")
    parser.add_argument("--weights", default=None, help="default companion/pretrained/weights/...")
    parser.add_argument(
        "--results", default=None, help="default companion/pretrained/records/NAME_nll.json"
    )
    return parser


def _command(script: str, args: argparse.Namespace) -> str:
    parts = [f"python scripts/{script}", f"--epochs {args.epochs}"]
    options = {"decay-at": args.decay_at, "lr": args.lr, "batch-size": args.batch_size,
               "subset": args.subset, "test-subset": args.test_subset,
               "blocks": getattr(args, "blocks", None),
               "grow-from": getattr(args, "grow_from", None)}  # fmt: skip
    parts += [f"--{key} {value}" for key, value in options.items() if value is not None]
    return " ".join(parts)


def train_and_report(
    name: str, model: nn.Module, args: argparse.Namespace, *, weights_file: str,
    script: str, architecture: dict, prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    data_note: str = "",
) -> dict:  # fmt: skip
    """Train ``model`` with the shared trainer, score the test set, write weights and JSON.

    ``prepare`` maps the grey (N, 784) images in [0, 1] to what the model
    models (e.g. 14×14 means) before any binarisation; ``data_note`` says
    so in the results. The VAE's bound is quoted for comparison only when
    the images are unchanged.
    """
    smoke = args.subset is not None or args.test_subset is not None
    out_dir = ROOT / "_build" / "smoke" if smoke else None
    checkpoint = Path(
        args.checkpoint or ROOT / "_build" / f"{name}{'_smoke' if smoke else ''}.ckpt"
    )
    weights = Path(
        args.weights or (out_dir or ROOT / "companion" / "pretrained" / "weights") / weights_file
    )
    results_path = Path(
        args.results
        or (out_dir or ROOT / "companion" / "pretrained" / "records") / f"{name}_nll.json"
    )

    seed_everything(0)
    device = resolve_device(args.device)
    x_train = flatten(to_float(load_fashion_mnist("train")[0]))[: args.subset]
    x_test = flatten(to_float(load_fashion_mnist("test")[0]))
    if prepare is not None:
        x_train, x_test = prepare(x_train), prepare(x_test)
    x_test = binarize(x_test, generator=torch.Generator().manual_seed(TEST_SEED))[
        : args.test_subset
    ]

    trainer = Trainer(
        model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=device,
        seed=0, checkpoint_path=checkpoint, batch_transform=DynamicBinarizer(),
        callbacks=[StepDecay(args.lr, args.decay_at)],
    )  # fmt: skip
    start = time.perf_counter()
    history = trainer.fit(x_train, resume=True)
    train_seconds = time.perf_counter() - start
    if not trainer.is_main_process:  # under torchrun: rank 0 evaluates and writes
        return

    start = time.perf_counter()
    nll = nll_nats(model, x_test, batch_size=500)
    eval_seconds = time.perf_counter() - start
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)

    vae_file = ROOT / "companion" / "pretrained" / "records" / "vae_nll.json"
    vae = None
    if prepare is None and vae_file.exists():
        vae = json.loads(vae_file.read_text())["test_iwae_nll"]
    results = {
        "machine": machine_info(device),
        "command": _command(script, args),
        "architecture": architecture,
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": f"Fashion-MNIST{data_note}, {len(x_train)} training images dynamically "
        f"binarised; {len(x_test)} test images binarised once (seed {TEST_SEED})",
        "epochs": args.epochs,
        "learning_rate": {"adam": args.lr, "times_0.1_from_epoch": args.decay_at},
        "batch_size": args.batch_size,
        "train_seconds_this_run": round(train_seconds, 1),
        "seconds_per_epoch": [round(s, 1) for s in history.get("seconds", [])],
        "final_train_nll": round(history["loss"][-1], 3) if history.get("loss") else None,
        "test_nll": round(nll.mean, 3),
        "test_nll_standard_error": round(nll.stderr, 3),
        "test_bits_per_dim": round(nats_to_bits_per_dim(nll.mean, x_test.shape[1]), 5),
        "eval_seconds": round(eval_seconds, 1),
        "vae_iwae_nll_for_comparison": vae,
        "beats_vae": None if vae is None else nll.mean < vae,
        "weights_bytes": weights.stat().st_size,
    }
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"weights: {weights}\nresults: {results_path}")
    return results


def main() -> None:
    args = common_parser(__doc__, epochs=100, decay_at=80).parse_args()
    train_and_report(
        "made", MADE(784, MADE_HIDDEN, seed=0), args, weights_file=MADE_WEIGHTS,
        script="train_made.py",
        architecture={"hidden": list(MADE_HIDDEN), "ordering": "natural", "num_masks": 1,
                      "activation": "relu", "seed": 0},
    )  # fmt: skip


if __name__ == "__main__":
    main()
