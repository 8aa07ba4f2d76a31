"""Diffusion benchmark: mode coverage on the GAN chapter's mixtures, and Fashion-MNIST quality.

Part 1, ``--part mixtures``. :func:`companion.evaluation.diffusion_coverage.fit_mixture_diffusion`
trains a DDPM with an MLP noise predictor on the 8-mode ring (σ = 0.01) and the
25-mode grid (σ = 0.05) with the protocol of ``benchmarks/gan.py`` (the same data,
number of updates, batch size, learning-rate decay and score: 2,500 samples, modes
with at least 20 high-quality samples, share within 3σ), ``--seeds`` seeds each.
The GAN tricks' rows of ``companion/pretrained/records/gan.json`` are copied beside
ours, with their training seconds. Target: 8/8 and 25/25 modes with at least 90 %
high-quality samples on every seed. Runs are cached in ``--cache`` (JSON lines) so
the part resumes; the record says how many seeds are in (``complete``).

Part 2, ``--part fashion``. The shipped DDPM (``scripts/train_diffusion.py``) sampled
by DDIM with 50 steps and by ancestral sampling through all T levels, the shipped
DCGAN and the shipped VAE (decoder means of prior draws): the Fréchet distance in the
features of the book's classifier against the 10,000 test images (the scorer of the
DCGAN page), on ``--n-ddim`` / ``--n-ddpm`` / ``--n-baselines`` samples, and the
sampling time per image. The Fréchet estimate is biased upwards at small n, so every
model is also scored at the smallest n used, and the train-vs-test floor at each n.

    OMP_NUM_THREADS=1 python benchmarks/diffusion.py --part mixtures
    OMP_NUM_THREADS=1 python benchmarks/diffusion.py --part fashion

write ``companion/pretrained/records/diffusion_mode_coverage.json`` and
``companion/pretrained/records/diffusion_fashion.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from common import RESULTS, ROOT, machine_info

from companion import resolve_device, seed_everything
from companion.data import load_fashion_mnist, to_float
from companion.evaluation import FrechetScorer
from companion.evaluation.diffusion_coverage import fit_mixture_diffusion
from companion.evaluation.mode_collapse import MIXTURES
from companion.pretrained import load_dcgan, load_record, load_vae
from companion.pretrained.loaders import DCGAN_LATENT, load_diffusion

TARGETS = {"ring_modes": 8, "grid_modes": 25, "high_quality": 0.9, "dcgan_frechet": 61.7}


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def mixtures_part(args) -> dict:
    cache = Path(args.cache)
    done: dict[tuple[str, int], dict] = {}
    out = Path(args.out_mixtures)
    lines = []
    if out.exists():  # runs already in the committed record (a fresh clone has no cache)
        lines += [json.dumps(r) for r in json.loads(out.read_text()).get("runs", [])]
    if cache.exists():
        lines += cache.read_text().splitlines()
    for line in lines:
        r = json.loads(line)
        if r["steps"] == args.steps:
            done[(r["mixture"], r["seed"])] = r
    for seed in range(args.seeds):
        for mixture in MIXTURES:
            if (mixture, seed) in done:
                continue
            start = time.perf_counter()
            run = fit_mixture_diffusion(mixture, seed=seed, steps=args.steps)
            seconds = time.perf_counter() - start
            row = {
                "mixture": mixture, "seed": seed, "steps": args.steps,
                "modes": run.coverage.modes, "high_quality": round(run.coverage.high_quality, 4),
                "seconds": round(seconds, 1), "final_loss": round(run.history["loss"][-1], 5),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            done[(mixture, seed)] = row
            cache.parent.mkdir(parents=True, exist_ok=True)
            with cache.open("a") as f:
                f.write(json.dumps(row) + "\n")
    runs = [done[k] for k in sorted(done)]
    summary = {}
    for mixture in MIXTURES:
        mine = [r for r in runs if r["mixture"] == mixture]
        if mine:
            summary[mixture] = {
                "seeds": len(mine),
                "modes_mean": round(statistics.mean(r["modes"] for r in mine), 2),
                "modes_min": min(r["modes"] for r in mine),
                "high_quality_mean": round(statistics.mean(r["high_quality"] for r in mine), 4),
                "high_quality_min": min(r["high_quality"] for r in mine),
                "seconds_mean": round(statistics.mean(r["seconds"] for r in mine), 1),
            }
    gan = load_record("gan")["mode_collapse"]
    n_modes = {"ring": 8, "grid": 25}
    target_met = all(
        m in summary and summary[m]["modes_min"] == n_modes[m]
        and all(r["high_quality"] >= TARGETS["high_quality"] for r in runs if r["mixture"] == m)
        for m in n_modes
    )  # fmt: skip
    return {
        "command": command(),
        "machine": machine_info(torch.device("cpu")),
        "protocol": {
            "steps": args.steps,
            "batch_size": 256,
            "n_eval_samples": 2500,
            "min_count": 20,
            "T": 1000,
            "network": "MLPDenoiser (256, 256, 256)",
            "sampler": "ancestral, all T levels",
        },  # fmt: skip
        "seeds_asked": args.seeds,
        "complete": all(s["seeds"] >= args.seeds for s in summary.values())
        and len(summary) == len(MIXTURES),
        "runs": runs,
        "summary": summary,
        "gan_summary": gan.get("summary", {}),
        "gan_steps": gan.get("steps"),
        "targets": TARGETS,
        "target_met": target_met,
    }


def fashion_part(args) -> dict:
    device = resolve_device("cpu")
    x_train = to_float(load_fashion_mnist("train")[0]).unsqueeze(1)
    x_test = to_float(load_fashion_mnist("test")[0]).unsqueeze(1)
    scorer = FrechetScorer(x_test, device=device)
    model = load_diffusion()
    dcgan, _ = load_dcgan()
    vae = load_vae()

    def timed(draw, n: int) -> tuple[torch.Tensor, float]:
        seed_everything(0)
        start = time.perf_counter()
        with torch.no_grad():
            images = torch.cat([draw(min(250, n - i)) for i in range(0, n, 250)])
        return images.cpu(), (time.perf_counter() - start) / n

    def to_unit(images):  # [-1, 1] -> [0, 1], (n, 1, 28, 28)
        return ((images + 1) / 2).clamp(0, 1).reshape(-1, 1, 28, 28)

    draws = {
        "DDIM, 50 steps": (lambda n: to_unit(model.sample(n, method="ddim", steps=50)),
                           args.n_ddim),
        f"DDPM, {model.T} steps": (lambda n: to_unit(model.sample(n)), args.n_ddpm),
        "DCGAN (shipped)": (lambda n: to_unit(dcgan(torch.randn(n, DCGAN_LATENT))),
                            args.n_baselines),
        "VAE (shipped, decoder means)": (
            lambda n: vae.sample(n).reshape(-1, 1, 28, 28),
            args.n_baselines),
    }  # fmt: skip
    n_small = min(n for _, n in draws.values())
    rows = {}
    for name, (draw, n) in draws.items():
        images, per_image = timed(draw, n)
        rows[name] = {
            "n_samples": n,
            "frechet": round(scorer.distance(images), 3),
            f"frechet_at_{n_small}": round(scorer.distance(images[:n_small]), 3),
            "sampling_ms_per_image": round(1000 * per_image, 3),
        }
        print(name, json.dumps(rows[name]), flush=True)
    floors = {
        str(n): round(scorer.distance(x_train[:n]), 3)
        for n in sorted({n for _, n in draws.values()})
    }
    training = load_record("diffusion_training")
    return {
        "command": command(),
        "machine": machine_info(device),
        "threads": torch.get_num_threads(),
        "models": rows,
        "train_vs_test_floor_by_n": floors,
        "n_compared_alike": n_small,
        "diffusion_training": {
            k: training[k]
            for k in (
                "command",
                "train_minutes_total",
                "images_seen",
                "epochs_equivalent",
                "architecture",
            )
        },  # fmt: skip
        "targets": TARGETS,
        "note": "samples fewer than the 5,000 of the DCGAN page when n_samples < 5000: "
        "sampling the DDPM on this CPU is slow; compare models at the same n "
        f"(frechet_at_{n_small}).",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=["mixtures", "fashion"], required=True)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", default=str(ROOT / "_build" / "diffusion_mixture_runs.jsonl"))
    parser.add_argument("--out-mixtures", default=str(RESULTS / "diffusion_mode_coverage.json"))
    parser.add_argument("--out-fashion", default=str(RESULTS / "diffusion_fashion.json"))
    parser.add_argument("--n-ddim", type=int, default=5000)
    parser.add_argument("--n-ddpm", type=int, default=5000)
    parser.add_argument("--n-baselines", type=int, default=5000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.part == "mixtures":
        result, out = mixtures_part(args), Path(args.out_mixtures)
    else:
        result, out = fashion_part(args), Path(args.out_fashion)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "machine")}, indent=2))


if __name__ == "__main__":
    main()
