"""Train the diffusion chapter's DDPM on Fashion-MNIST within a wall-clock budget.

The model: :class:`companion.models.UNet` with ``--channels`` (28×28, 14×14, 7×7
widths) predicting the noise of a :class:`companion.models.DDPM` with ``--T``
levels and the ``--schedule`` of βₜ, trained with the simplified loss
‖ε − ε_θ‖² on the 60,000 training images scaled to [-1, 1], Adam, gradient
norm clipped at 1 and an exponential moving average of the weights (the
weights shipped are the average).

Training runs in *rounds* of ``--round-size`` images each (a fresh random
subset of the training set per round, drawn from the round's number), so that
the run can stop on a wall-clock budget (``--minutes``) between rounds and
resume exactly from ``--checkpoint`` when run again (then the budget counts
the new session only; the record adds the sessions up).

    OMP_NUM_THREADS=1 nice -n 10 python scripts/train_diffusion.py --minutes 55

writes ``companion/pretrained/weights/diffusion_fashion_mnist.pt`` (the averaged
network in float16, loaded by ``companion.pretrained.load_diffusion``) and
``companion/pretrained/records/diffusion_training.json`` (command, machine,
minutes, images seen, loss per round).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine_info

from companion import resolve_device, seed_everything
from companion.data import load_fashion_mnist, to_float
from companion.distributed import broadcast
from companion.models import DDPM, UNet
from companion.pretrained.loaders import DIFFUSION_CONFIG
from companion.training import Trainer
from companion.training.checkpoint import load_checkpoint

WEIGHTS = ROOT / "companion" / "pretrained" / "weights" / "diffusion_fashion_mnist.pt"
RECORD = ROOT / "companion" / "pretrained" / "records" / "diffusion_training.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=55.0, help="wall-clock budget")
    parser.add_argument("--max-rounds", type=int, default=1000)
    parser.add_argument("--round-size", type=int, default=12000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ema", type=float, default=0.995)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--stopped-session-seconds",
        type=float,
        default=None,
        help="a session before this one was stopped by hand after this many seconds (read "
        "from its log) before it could write the record; recorded as such",
    )
    parser.add_argument("--stopped-session-command", default=None)
    parser.add_argument("--checkpoint", default=str(ROOT / "_build" / "diffusion.ckpt"))
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--record", default=str(RECORD))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seed_everything(0)
    device = resolve_device(args.device)
    x_train = to_float(load_fashion_mnist("train")[0]).unsqueeze(1) * 2 - 1  # (60000, 1, 28, 28)

    config = DIFFUSION_CONFIG
    model = DDPM(
        UNet(config["channels"]), (1, 28, 28), T=config["T"], schedule=config["schedule"],
        ema_decay=args.ema, grad_clip=1.0,
    )  # fmt: skip
    trainer = Trainer(model, epochs=1, batch_size=args.batch_size, lr=args.lr, device=device,
                      seed=0, checkpoint_path=args.checkpoint, progress=False)  # fmt: skip
    record_path = Path(args.record)
    previous = json.loads(record_path.read_text()) if record_path.exists() else {}
    sessions = previous.get("sessions", []) if Path(args.checkpoint).exists() else []
    if args.stopped_session_seconds is not None:
        sessions.append({"seconds": args.stopped_session_seconds, "stopped_by_hand": True,
                         "command": args.stopped_session_command})  # fmt: skip
    start = time.perf_counter()
    budget = 60 * args.minutes
    round_seconds: list[float] = []
    rounds_done = 0
    if Path(args.checkpoint).exists():
        rounds_done = int(load_checkpoint(args.checkpoint)["epoch"])
    while rounds_done < args.max_rounds:
        elapsed = time.perf_counter() - start
        longest = max(round_seconds, default=0.0)
        if broadcast(torch.tensor(elapsed + longest > budget)).item():  # rank 0's clock
            break
        t0 = time.perf_counter()
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(rounds_done))
        trainer.epochs = rounds_done + 1
        trainer.fit(x_train[order[: args.round_size]], resume=True)
        round_seconds.append(time.perf_counter() - t0)
        rounds_done = trainer.epoch
        print(
            f"round {rounds_done}: loss {trainer.history['loss'][-1]:.4f}, "
            f"{round_seconds[-1]:.0f} s",
            flush=True,
        )
    if not round_seconds and Path(args.checkpoint).exists():  # nothing trained: load the state
        trainer.epochs = rounds_done
        trainer.fit(x_train[:1], resume=True)  # restores the checkpoint, runs no epoch
    seconds = time.perf_counter() - start
    if not trainer.is_main_process:  # under torchrun: rank 0 evaluates and writes
        return
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    sessions.append({"seconds": round(seconds, 1), "rounds_this_session": len(round_seconds),
                     "machine": machine_info(device), "command": command})  # fmt: skip

    network = model.sampler_network
    state = {k: v.detach().cpu().half() for k, v in network.state_dict().items()}
    Path(args.weights).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"network": state}, args.weights)
    n_params = sum(p.numel() for p in model.network.parameters())
    record = {
        "command": " && ".join(s["command"] for s in sessions if s.get("command")),
        "sessions": sessions,
        "train_minutes_total": round(sum(s["seconds"] for s in sessions) / 60, 1),
        "architecture": {**config, "parameters": n_params},
        "optimiser": {
            "adam_lr": args.lr,
            "batch_size": args.batch_size,
            "grad_clip": 1.0,
            "ema_decay": args.ema,
        },  # fmt: skip
        "rounds": rounds_done,
        "round_size": args.round_size,
        "images_seen": rounds_done * args.round_size,
        "epochs_equivalent": round(rounds_done * args.round_size / len(x_train), 2),
        "loss_by_round": [round(v, 5) for v in trainer.history.get("loss", [])],
    }
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "loss_by_round"}, indent=2))


if __name__ == "__main__":
    main()
