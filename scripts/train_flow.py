"""Train a RealNVP or a MAF on uniformly dequantised Fashion-MNIST and score its test set.

The architectures are ``companion.models.flows.FASHION_FLOWS`` (RealNVP: 6
affine couplings with checkerboard masks, MLP 784-512-1568 conditioners;
MAF: 5 MADE layers 784-512-784 (+784 scales) with alternating orderings;
each layer followed by ActNorm, after a logit transform with α = 0.05).
Adam, batch 128, constant learning rate; every training batch gets fresh
uniform noise (``companion.data.UniformDequantizer``). The 10,000 test
images are dequantised once with seed 12345, the same noise the
continuous-likelihood benchmark (``benchmarks/continuous_likelihood.py``)
uses, and scored in 8-bit bits per dimension with every Jacobian term
counted (``companion.models.flows.dequantized_bits_per_dim``).

    python scripts/train_flow.py --kind maf --epochs 13 --max-minutes 28

trains epoch by epoch, resuming from ``_build/flow_<kind>.ckpt`` (the
checkpoint holds the random state, so a resumed run is the run), until
``--epochs`` or, checked after each epoch, ``--max-minutes`` of this
process's wall time; it then writes ``companion/pretrained/weights/
flow_<kind>_fashion_mnist.pt`` (float16 state dict; the test set is scored
with the weights rounded to float16, i.e. the model that ships) and
``companion/pretrained/records/flow_<kind>.json`` (the command, epochs done,
train time, machine, test bits/dim with its standard error). ``--subset N``
and ``--test-subset N`` make a smoke run whose files go to ``_build/smoke/``.
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
from companion.data import UniformDequantizer, dequantize, flatten, load_fashion_mnist
from companion.distributed import broadcast
from companion.models.flows import (
    FASHION_FLOWS,
    FASHION_LOGIT_ALPHA,
    dequantized_bits_per_dim,
    fashion_flow,
)
from companion.training import Trainer

TEST_SEED = 12345  # the one dequantisation of the test images, shared with the benchmark


def test_images(n: int | None = None) -> torch.Tensor:
    """The first n Fashion-MNIST test images dequantised with seed 12345, (n, 784) in [0, 1)."""
    images = flatten(load_fashion_mnist("test")[0])[:n]
    return dequantize(images, generator=torch.Generator().manual_seed(TEST_SEED))


@torch.no_grad()
def flow_bits_per_dim(model, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Per-image 8-bit bits/dim (N,) of dequantised images x (N, 784) under a flow."""
    model.eval()
    device = next(model.parameters()).device
    log_p = torch.cat([model.log_prob(x[i : i + batch_size].to(device)).double().cpu()
                       for i in range(0, len(x), batch_size)])  # fmt: skip
    return dequantized_bits_per_dim(log_p, x.shape[1], levels=256)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", choices=sorted(FASHION_FLOWS), default="maf")
    parser.add_argument("--epochs", type=int, default=13)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--grad-clip", type=float, default=100.0)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--test-subset", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    smoke = args.subset is not None or args.test_subset is not None
    build = ROOT / "_build" / ("smoke" if smoke else "")
    checkpoint = build / f"flow_{args.kind}.ckpt"
    weights = (build if smoke else ROOT / "companion" / "pretrained" / "weights") / (
        f"flow_{args.kind}_fashion_mnist.pt"
    )
    record = (build if smoke else ROOT / "companion" / "pretrained" / "records") / (
        f"flow_{args.kind}.json"
    )
    seed_everything(0)
    device = resolve_device(args.device)
    x_train = flatten(load_fashion_mnist("train")[0])[: args.subset]  # uint8 (N, 784)
    model = fashion_flow(args.kind)

    start = time.perf_counter()
    history: dict = {}
    for target in range(1, args.epochs + 1):  # one epoch per fit, resumed from the checkpoint
        trainer = Trainer(
            model, epochs=target, batch_size=args.batch_size, lr=args.lr, device=device,
            seed=0, checkpoint_path=checkpoint, batch_transform=UniformDequantizer(),
            grad_clip=args.grad_clip, progress=False,
        )  # fmt: skip
        history = trainer.fit(x_train, resume=True)
        minutes = (time.perf_counter() - start) / 60
        print(f"epoch {target}: train bits/dim {history['bits_per_dim'][-1]:.4f} "
              f"({minutes:.1f} min)", flush=True)  # fmt: skip
        stop = torch.tensor(args.max_minutes is not None and minutes > args.max_minutes)
        if broadcast(stop).item():  # rank 0's clock decides for every process (torchrun)
            break
    if not trainer.is_main_process:  # under torchrun: rank 0 evaluates and writes
        return
    epochs_done = len(history.get("loss", []))
    train_seconds = time.perf_counter() - start

    state = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}  # fmt: skip
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    start = time.perf_counter()
    bpd = flow_bits_per_dim(model, test_images(args.test_subset))
    eval_seconds = time.perf_counter() - start
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, weights)

    command = f"python scripts/train_flow.py --kind {args.kind} --epochs {args.epochs}"
    for key in ("max_minutes", "subset", "test_subset"):
        if getattr(args, key) is not None:
            command += f" --{key.replace('_', '-')} {getattr(args, key)}"
    if args.lr != 1e-3:
        command += f" --lr {args.lr}"
    result = {
        "machine": machine_info(device),
        "command": command,
        "kind": args.kind,
        "architecture": {
            **FASHION_FLOWS[args.kind],
            "hidden": list(FASHION_FLOWS[args.kind]["hidden"]),
            "logit_alpha": FASHION_LOGIT_ALPHA,
            "actnorm": True,
        },  # fmt: skip
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": f"Fashion-MNIST, {len(x_train)} training images, fresh uniform dequantisation "
        f"per batch; {len(bpd)} test images dequantised once (seed {TEST_SEED})",
        "epochs_requested": args.epochs,
        "epochs_done": epochs_done,
        "learning_rate": args.lr,
        "batch_size": args.batch_size,
        "grad_clip": args.grad_clip,
        "train_seconds_this_run": round(train_seconds, 1),
        "seconds_per_epoch": [round(s, 1) for s in history.get("seconds", [])],
        "train_bits_per_dim": [round(v, 4) for v in history.get("bits_per_dim", [])],
        "test_bits_per_dim": round(float(bpd.mean()), 4),
        "test_bits_per_dim_standard_error": round(float(bpd.std() / len(bpd) ** 0.5), 4),
        "eval_seconds": round(eval_seconds, 1),
        "weights_bytes": weights.stat().st_size,
    }
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
