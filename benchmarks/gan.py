"""GAN benchmark: mode coverage of each trick on the ring and the grid, and DCGAN speed and quality.

Part 1, mode collapse. :func:`companion.evaluation.mode_collapse.fit_mixture_gan` trains
the same recipe with each trick (vanilla, one-sided label smoothing, minibatch
discrimination, unrolled with k = 5) on the 8-mode ring (σ = 0.01) and the
25-mode grid (σ = 0.05), ``--seeds`` seeds each, for the same number of
generator updates. Scored on 2,500 samples: modes with at least 20
high-quality samples, and the share of samples within 3σ of a centre (the
PacGAN protocol). Published numbers (modes) are listed beside ours. Targets:
the best trick reaches 8/8 ring modes and at least 24/25 grid modes with at
least 90 % high-quality samples, averaged over seeds.

Part 2, DCGAN on Fashion-MNIST (28×28, the shipped architecture): training
images per second on this device, and the Fréchet distance (features of the
book's classifier, 5,000 samples against the 10,000 test images) after
``--dcgan-steps`` generator updates from scratch, next to the train-vs-test
floor and the shipped generator's distance.

    python benchmarks/gan.py         # writes companion/pretrained/records/gan[-DEVICE].json
    python benchmarks/gan.py --steps 500 --seeds 1 --dcgan-steps 20 --out /tmp/gan.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from common import RESULTS, machine_info, write_results

from companion import resolve_device, seed_everything
from companion.data import load_fashion_mnist, to_float
from companion.evaluation import MIXTURES, TRICKS, FrechetScorer, fit_mixture_gan
from companion.models import GAN, DCGANDiscriminator, DCGANGenerator
from companion.pretrained import load_dcgan
from companion.pretrained.loaders import DCGAN_CHANNELS, DCGAN_LATENT

PUBLISHED_MODES = {  # VEEGAN (Srivastava et al., 2017) table 1; PacGAN (Lin et al., 2018) table
    "VEEGAN paper: GAN": {"ring": 1.0, "grid": 3.3},
    "VEEGAN paper: unrolled GAN": {"ring": 7.6, "grid": 23.6},
    "VEEGAN paper: VEEGAN": {"ring": 8.0, "grid": 24.6},
    "PacGAN paper: PacGAN2": {"ring": 7.9, "grid": 23.8},
}
TARGETS = {"ring_modes": 8, "grid_modes": 24, "high_quality": 0.9}


def _one_run(job: tuple) -> dict:
    mixture, trick, seed, steps, *rest = job
    eval_at = rest[0] if rest else ()
    torch.set_num_threads(1)  # the runs go in parallel, one core each
    start = time.perf_counter()
    run = fit_mixture_gan(mixture, trick, seed=seed, steps=steps, eval_at=eval_at)
    seconds = time.perf_counter() - start
    row = {
        "mixture": mixture,
        "trick": trick,
        "seed": seed,
        "steps": steps,
        "modes": run.coverage.modes,
        "high_quality": round(run.coverage.high_quality, 4),
        "seconds": round(seconds, 1),
    }
    if eval_at:
        row["eval_at"] = list(eval_at)
        row["along_the_run"] = {
            str(at): {"modes": c.modes, "high_quality": round(c.high_quality, 4)}
            for at, c in sorted(run.snapshots.items())
        }
    return row


def long_runs(
    steps: int,
    tricks: list[str],
    seeds: int,
    eval_at: list[int],
    workers: int,
    cache: Path,
    *,
    new_runs: bool = True,
    recorded: list[dict] = (),
) -> dict:
    """Longer runs of some tricks, scored along the way (one run per mixture, trick and
    seed; the learning rate decays after 80 % of ``steps``, as in the short runs).
    Finished runs are kept in ``cache`` (JSON lines), so the benchmark resumes."""
    key = (steps, tuple(eval_at))
    done = {}
    # runs already in the committed record (a fresh clone has no cache), then the cache
    lines = [json.dumps(r) for r in recorded]
    if cache.exists():
        lines += cache.read_text().splitlines()
    for line in lines:
        r = json.loads(line)
        if (r["steps"], tuple(r.get("eval_at", ()))) == key:
            done[(r["mixture"], r["trick"], r["seed"])] = r
    jobs = [
        (m, t, s, steps, tuple(eval_at))
        for s in range(seeds)
        for t in tricks
        for m in MIXTURES
        if (m, t, s) not in done and new_runs
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for r in pool.map(_one_run, jobs):
            done[(r["mixture"], r["trick"], r["seed"])] = r
            print(json.dumps(r), flush=True)
            cache.parent.mkdir(parents=True, exist_ok=True)
            with cache.open("a") as f:
                f.write(json.dumps(r) + "\n")
    runs = [done[k] for k in sorted(done)]
    summary: dict = {}
    for trick in tricks:
        for mixture in MIXTURES:
            mine = [r for r in runs if r["trick"] == trick and r["mixture"] == mixture]
            if not mine:
                continue
            summary.setdefault(trick, {})[mixture] = {
                str(at): {
                    "modes_mean": round(
                        statistics.mean(r["along_the_run"][str(at)]["modes"] for r in mine), 2
                    ),
                    "high_quality_mean": round(
                        statistics.mean(r["along_the_run"][str(at)]["high_quality"] for r in mine),
                        4,
                    ),
                    "runs": len(mine),
                }
                for at in eval_at
            }
    final = str(steps)
    met = {
        trick: all(
            summary[trick].get(m, {}).get(final, {}).get("runs", 0) == seeds for m in MIXTURES
        )
        and summary[trick]["ring"][final]["modes_mean"] >= TARGETS["ring_modes"]
        and summary[trick]["grid"][final]["modes_mean"] >= TARGETS["grid_modes"]
        and min(
            summary[trick]["ring"][final]["high_quality_mean"],
            summary[trick]["grid"][final]["high_quality_mean"],
        )
        >= TARGETS["high_quality"]
        for trick in summary
    }
    return {
        "steps": steps,
        "eval_at": eval_at,
        "seeds": seeds,
        "tricks": tricks,
        "learning_rate_decay_after_steps": int(0.8 * steps),
        "runs": runs,
        "complete": len(runs) == seeds * len(tricks) * len(MIXTURES),
        "summary": summary,
        "targets": TARGETS,
        "targets_met": met,
    }


def mode_collapse_table(steps: int, seeds: int, workers: int, cache: Path | None) -> dict:
    """Every (mixture, trick, seed) run; finished runs are kept in ``cache`` (JSON lines)
    so that an interrupted benchmark resumes where it stopped."""
    done = {}
    if cache is not None and cache.exists():
        for line in cache.read_text().splitlines():
            r = json.loads(line)
            if r.get("steps") == steps:
                done[(r["mixture"], r["trick"], r["seed"])] = r
    jobs = [
        (m, t, s, steps)
        for m in MIXTURES
        for t in TRICKS
        for s in range(seeds)
        if (m, t, s) not in done
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for r in pool.map(_one_run, jobs):
            done[(r["mixture"], r["trick"], r["seed"])] = r
            print(json.dumps(r), flush=True)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                with cache.open("a") as f:
                    f.write(json.dumps(r) + "\n")
    runs = [done[(m, t, s)] for m in MIXTURES for t in TRICKS for s in range(seeds)]
    summary = {}
    for mixture in MIXTURES:
        for trick in TRICKS:
            mine = [r for r in runs if r["mixture"] == mixture and r["trick"] == trick]
            modes = [r["modes"] for r in mine]
            quality = [r["high_quality"] for r in mine]
            summary.setdefault(trick, {})[mixture] = {
                "modes_mean": round(statistics.mean(modes), 2),
                "modes_min": min(modes),
                "high_quality_mean": round(statistics.mean(quality), 4),
                "seconds_mean": round(statistics.mean(r["seconds"] for r in mine), 1),
            }
    best = max(
        summary,
        key=lambda t: (
            summary[t]["ring"]["modes_mean"] + summary[t]["grid"]["modes_mean"],
            summary[t]["ring"]["high_quality_mean"] + summary[t]["grid"]["high_quality_mean"],
        ),
    )
    b = summary[best]
    met = (
        b["ring"]["modes_mean"] >= TARGETS["ring_modes"]
        and b["grid"]["modes_mean"] >= TARGETS["grid_modes"]
        and min(b["ring"]["high_quality_mean"], b["grid"]["high_quality_mean"])
        >= TARGETS["high_quality"]
    )
    return {
        "steps": steps,
        "seeds": seeds,
        "n_eval_samples": 2500,
        "min_count": 20,
        "runs": runs,
        "summary": summary,
        "best_trick": best,
        "targets": TARGETS,
        "targets_met_by_best_trick": met,
        "published_modes": PUBLISHED_MODES,
    }


def dcgan_part(device: torch.device, steps: int, n_samples: int = 5000) -> dict:
    x_train = to_float(load_fashion_mnist("train")[0]).unsqueeze(1)
    x_test = to_float(load_fashion_mnist("test")[0]).unsqueeze(1)
    scorer = FrechetScorer(x_test, device=device)
    floor = scorer.distance(x_train[:n_samples])

    def distance(generate) -> float:
        with torch.no_grad():
            images = torch.cat([generate(500) for _ in range(n_samples // 500)])
        return scorer.distance((images.cpu() + 1) / 2)

    seed_everything(0)
    gan = GAN(DCGANGenerator(DCGAN_LATENT, DCGAN_CHANNELS), DCGANDiscriminator(DCGAN_CHANNELS))
    gan.to(device)
    optimizers = gan.configure_optimizers(2e-4)
    data = (x_train * 2 - 1).to(device)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    gan.train_step(data[order[:128]], optimizers)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(steps):
        batch = order[(step * 128) % len(order) :][:128]
        gan.train_step(data[batch], optimizers)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    gan.eval()
    shipped, _ = load_dcgan()
    shipped.to(device)
    return {
        "architecture": {"latent": DCGAN_LATENT, "channels": DCGAN_CHANNELS, "batch_size": 128},
        "train_images_per_second": round(steps * 128 / seconds, 1),
        "steps_from_scratch": steps,
        "frechet_after_steps": round(distance(gan.sample), 3),
        "frechet_shipped_generator": round(
            distance(lambda n: shipped(torch.randn(n, DCGAN_LATENT, device=device))), 3
        ),
        "frechet_train_vs_test_floor": round(floor, 3),
        "frechet_samples": n_samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5000, help="generator updates per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--dcgan-steps", type=int, default=300)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "_build" / "gan_runs.jsonl",
        help="finished runs, so that an interrupted benchmark resumes",
    )
    parser.add_argument(
        "--long-only",
        action="store_true",
        help="only (re)compute the long runs and add them to the existing record",
    )
    parser.add_argument("--long-steps", type=int, default=20000)
    parser.add_argument("--long-tricks", nargs="+", default=["vanilla", "minibatch discrimination"])
    parser.add_argument("--eval-at", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="with --long-only: write what the cache holds, start no new run",
    )
    parser.add_argument(
        "--long-cache",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "_build" / "gan_long_runs.jsonl",
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    start = time.perf_counter()
    if args.long_only:
        results = json.loads((RESULTS / "gan.json").read_text())
    else:
        results = {
            "machine": machine_info(device),
            "mode_collapse": mode_collapse_table(args.steps, args.seeds, args.workers, args.cache),
            "dcgan": dcgan_part(device, args.dcgan_steps),
        }
        results["mode_collapse"]["device"] = "cpu (one core per run)"
    results["long_runs"] = long_runs(
        args.long_steps,
        args.long_tricks,
        args.seeds,
        args.eval_at,
        args.workers,
        args.long_cache,
        new_runs=not args.summarise_only,
        recorded=results.get("long_runs", {}).get("runs", []),
    )
    results["long_runs"]["machine"] = machine_info(device)
    results["long_runs"]["command"] = (
        "python benchmarks/gan.py --long-only --long-steps "
        f"{args.long_steps} --eval-at {' '.join(map(str, args.eval_at))} --workers {args.workers}"
    )
    results["seconds_total"] = round(time.perf_counter() - start, 1)
    write_results("gan", device, results, args.out)


if __name__ == "__main__":
    main()
