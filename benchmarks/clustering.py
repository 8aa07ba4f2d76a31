"""Clustering benchmark: companion KMeans and GaussianMixture against scikit-learn.

Same run, same starting point for both libraries, measured robustly: every fit is
repeated ``--rounds`` times (at least 3), the libraries interleaved with a pause
between fits, and the median and spread of the time per iteration are recorded
with the thread pools in use (threadpoolctl).

* KMeans, k=10, on the 784-D float32 Fashion-MNIST training pixels, both started
  from the same centres: 10 randomly chosen images, and the k-means++ centres of
  ``sklearn.cluster.kmeans_plusplus(X, 10, random_state=0)``; scikit-learn runs
  Lloyd's algorithm (``algorithm="lloyd"``, ``n_init=1``), the target's reference, and
  also Elkan's (``algorithm="elkan"``: the same iterates, distances skipped by
  bounds, as the companion skips them with Hamerly's), for comparison;
* back to back: each library's fit right after the other's (no pause) against
  after a pause, to see whether one library's idle threads slow the other (two
  OpenMP runtimes are loaded: torch's and scikit-learn's);
* GaussianMixture, full covariances, k=10, on PCA-50 features in float64, both
  started from the same weights, means and precisions.

Targets on the CPU: KMeans time per iteration at most scikit-learn's (median ratio
at most 1.0 for both starts) with the inertia within 0.5 %; GaussianMixture at
least 3x faster per iteration with the same log-likelihood (1e-4 relative). The
verdict is printed at the end. Writes
``companion/pretrained/records/clustering[-DEVICE].json``.

    python benchmarks/clustering.py                 # CPU, 5 rounds
    python benchmarks/clustering.py --rounds 3 --out /tmp/clustering.json
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from common import interleaved, machine_info, spread, write_results
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.mixture import GaussianMixture as SkGMM

from companion import resolve_device
from companion.classical import PCA, GaussianMixture, KMeans
from companion.data import flatten, load_fashion_mnist, to_float

TARGETS = {
    "kmeans_ratio_at_most": 1.0,
    "kmeans_inertia_within": 0.005,
    "gmm_speedup_at_least": 3,
    "gmm_log_likelihood_within": 1e-4,
}


def quiet(fit):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit()

    return run


def time_runs(label: str, runs: dict, rounds: int, value: tuple[str, str]) -> dict:
    """Fit each of ``runs`` ``rounds`` times, interleaved; per-iteration times with spread.

    value: (key in the results, attribute of the fitted model).
    """
    key, attribute = value
    fitted: dict[str, object] = {}

    def keep(name, fit):
        return lambda: fitted.__setitem__(name, quiet(fit)())

    times = interleaved({name: keep(name, fit) for name, fit in runs.items()}, rounds)
    rows = {}
    for name, seconds in times.items():
        model = fitted[name]
        iterations = int(model.n_iter_)
        rows[name] = {
            "iterations": iterations,
            "ms_per_iteration": spread(seconds, 1000 / iterations),
            "seconds": spread(seconds, digits=3),
            key: float(getattr(model, attribute)),
        }
        print(label, name, rows[name])
    return rows


def kmeans_rows(X: torch.Tensor, init: np.ndarray, device: torch.device, rounds: int) -> dict:
    Xn = X.numpy()
    runs = {
        "companion (cpu)": lambda: KMeans(10, init=init).fit(X),
        "sklearn": lambda: SkKMeans(10, init=init, n_init=1, algorithm="lloyd").fit(Xn),
        "sklearn (elkan)": lambda: SkKMeans(10, init=init, n_init=1, algorithm="elkan").fit(Xn),
    }
    if device.type != "cpu":
        Xd = X.to(device)
        runs[f"companion ({device.type})"] = lambda: KMeans(10, init=init).fit(Xd)
    return time_runs("kmeans", runs, rounds, ("inertia", "inertia_"))


def back_to_back(X: torch.Tensor, init: np.ndarray, rounds: int, pause: float = 1.0) -> dict:
    """Each library's fit timed right after the other's (no pause) and after a pause."""
    Xn = X.numpy()
    ours = quiet(lambda: KMeans(10, init=init).fit(X))
    theirs = quiet(lambda: SkKMeans(10, init=init, n_init=1, algorithm="lloyd").fit(Xn))
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, other, fit in (("companion", theirs, ours), ("sklearn", ours, theirs)):
            time.sleep(pause)
            other()
            start = time.perf_counter()
            fit()
            times.setdefault(f"{name} right after the other", []).append(
                time.perf_counter() - start
            )
            time.sleep(pause)
            start = time.perf_counter()
            fit()
            times.setdefault(f"{name} after a pause", []).append(time.perf_counter() - start)
    rows: dict = {name: spread(seconds, digits=3) for name, seconds in times.items()}
    for name in ("companion", "sklearn"):
        after = rows[f"{name} right after the other"]["median"]
        rested = rows[f"{name} after a pause"]["median"]
        rows[f"{name} slowdown right after the other"] = round(after / rested, 3)
    rows["pause_seconds"] = pause
    print("back to back", rows)
    return rows


def gmm_rows(Z: np.ndarray, start: dict, device: torch.device, rounds: int) -> dict:
    runs = {
        "companion (cpu)": lambda: GaussianMixture(10, **start).fit(Z),
        "sklearn": lambda: SkGMM(10, **start).fit(Z),
    }
    if device.type != "cpu":
        Zd = torch.as_tensor(Z, device=device)
        runs[f"companion ({device.type})"] = lambda: GaussianMixture(10, **start).fit(Zd)
    return time_runs("gmm", runs, rounds, ("average_log_likelihood", "lower_bound_"))


def median(row: dict) -> float:
    return row["ms_per_iteration"]["median"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu", help="also time the companion on this device")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved repeats (>= 3)")
    parser.add_argument("--out", default=None, help="write the JSON here instead")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error(f"--rounds {args.rounds}: at least 3, so that a median means something")
    device = resolve_device(args.device)
    machine = machine_info(device)
    X = flatten(to_float(load_fashion_mnist("train")[0]))  # (60000, 784) float32
    starts = {
        "random images": X[np.random.default_rng(0).choice(len(X), 10, replace=False)].numpy(),
        "k-means++": kmeans_plusplus(X.numpy(), 10, random_state=0)[0],
    }
    kmeans = {name: kmeans_rows(X, init, device, args.rounds) for name, init in starts.items()}
    pairs = back_to_back(X, starts["k-means++"], args.rounds)

    Z = PCA(50).fit_transform(X).double().numpy()  # (60000, 50) float64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = SkGMM(10, max_iter=1, random_state=0).fit(Z)  # one shared starting point
    start = {
        "weights_init": first.weights_,
        "means_init": first.means_,
        "precisions_init": first.precisions_,
    }
    gmm = gmm_rows(Z, start, device, args.rounds)

    summary: dict = {"kmeans": {}, "targets": TARGETS}
    for name, rows in kmeans.items():
        ours, sk = rows["companion (cpu)"], rows["sklearn"]
        summary["kmeans"][name] = {
            "ms_per_iteration_ratio_companion_over_sklearn": round(median(ours) / median(sk), 3),
            "ms_per_iteration_ratio_companion_over_sklearn_elkan": round(
                median(ours) / median(rows["sklearn (elkan)"]), 3
            ),
            "inertia_relative_difference": abs(ours["inertia"] / sk["inertia"] - 1),
        }
    ours_g, sk_g = gmm["companion (cpu)"], gmm["sklearn"]
    summary["gmm_speedup_per_iteration"] = round(median(sk_g) / median(ours_g), 2)
    summary["gmm_log_likelihood_relative_difference"] = abs(
        ours_g["average_log_likelihood"] / sk_g["average_log_likelihood"] - 1
    )
    verdict = {
        f"kmeans ({name}) per iteration at most scikit-learn's": row[
            "ms_per_iteration_ratio_companion_over_sklearn"
        ]
        <= TARGETS["kmeans_ratio_at_most"]
        for name, row in summary["kmeans"].items()
    }
    verdict |= {
        f"kmeans ({name}) inertia within 0.5 %": row["inertia_relative_difference"]
        <= TARGETS["kmeans_inertia_within"]
        for name, row in summary["kmeans"].items()
    }
    verdict["gmm at least 3x faster per iteration"] = (
        summary["gmm_speedup_per_iteration"] >= TARGETS["gmm_speedup_at_least"]
    )
    verdict["gmm log-likelihood within 1e-4"] = (
        summary["gmm_log_likelihood_relative_difference"] <= TARGETS["gmm_log_likelihood_within"]
    )
    summary["verdict"] = verdict
    write_results(
        "clustering",
        device,
        {
            "machine": machine,
            "command": f"python benchmarks/clustering.py --rounds {args.rounds}",
            "kmeans": {
                "data": "Fashion-MNIST train pixels, 60000 x 784 float32",
                "k": 10,
                "starts": kmeans,
                "back_to_back": pairs,
            },
            "gmm": {
                "data": "Fashion-MNIST train, PCA-50 features, float64, full covariances",
                "k": 10,
                "methods": gmm,
            },
            "summary": summary,
        },
        args.out,
    )
    for claim, holds in verdict.items():
        print(f"{'holds' if holds else 'MISSED'}: {claim}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
