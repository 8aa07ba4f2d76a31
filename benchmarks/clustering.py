"""Clustering benchmark: companion KMeans and GaussianMixture against scikit-learn.

Same run, same starting point for both libraries:

* KMeans, k=10, on the 784-D float32 Fashion-MNIST training pixels, both
  started from the same 10 randomly chosen images;
* GaussianMixture, full covariances, k=10, on PCA-50 features in float64,
  both started from the same weights, means and precisions.

Reports time per iteration, total time, iterations and the final inertia /
average log-likelihood. Targets on the CPU: KMeans time per iteration at most
scikit-learn's with the inertia within 0.5 %; GaussianMixture at least 3x
faster per iteration with the same log-likelihood (1e-4 relative).
Writes ``companion/pretrained/records/clustering[-DEVICE].json``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from common import machine_info, sync, write_results
from sklearn.cluster import KMeans as SkKMeans
from sklearn.mixture import GaussianMixture as SkGMM

from companion import resolve_device
from companion.classical import PCA, GaussianMixture, KMeans
from companion.data import flatten, load_fashion_mnist, to_float

CPU = torch.device("cpu")


def timed(fit, device: torch.device = CPU):
    sync(device)
    start = time.perf_counter()
    model = fit()
    sync(device)
    return model, time.perf_counter() - start


def time_runs(label: str, runs: dict, device: torch.device, value: tuple[str, str]) -> dict:
    """Fit each of ``runs`` once; record time, iterations and one fitted value.

    value: (key in the results, attribute of the fitted model).
    """
    key, attribute = value
    rows = {}
    for name, fit in runs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, seconds = timed(fit, device if name.endswith(f"({device.type})") else CPU)
        rows[name] = {
            "seconds": round(seconds, 3),
            "iterations": int(model.n_iter_),
            "ms_per_iteration": round(1000 * seconds / model.n_iter_, 2),
            key: float(getattr(model, attribute)),
        }
        print(label, name, rows[name])
    return rows


def kmeans_rows(X: torch.Tensor, init: np.ndarray, device: torch.device) -> dict:
    runs = {
        "companion (cpu)": lambda: KMeans(10, init=init).fit(X),
        "sklearn": lambda: SkKMeans(10, init=init, n_init=1).fit(X.numpy()),
    }
    if device.type != "cpu":
        Xd = X.to(device)
        runs[f"companion ({device.type})"] = lambda: KMeans(10, init=init).fit(Xd)
    return time_runs("kmeans", runs, device, ("inertia", "inertia_"))


def gmm_rows(Z: np.ndarray, start: dict, device: torch.device) -> dict:
    runs = {
        "companion (cpu)": lambda: GaussianMixture(10, **start).fit(Z),
        "sklearn": lambda: SkGMM(10, **start).fit(Z),
    }
    if device.type != "cpu":
        Zd = torch.as_tensor(Z, device=device)
        runs[f"companion ({device.type})"] = lambda: GaussianMixture(10, **start).fit(Zd)
    return time_runs("gmm", runs, device, ("average_log_likelihood", "lower_bound_"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu", help="also time the companion on this device")
    args = parser.parse_args()
    device = resolve_device(args.device)
    X = flatten(to_float(load_fashion_mnist("train")[0]))  # (60000, 784) float32
    init = X[np.random.default_rng(0).choice(len(X), 10, replace=False)].numpy()
    kmeans = kmeans_rows(X, init, device)

    Z = PCA(50).fit_transform(X).double().numpy()  # (60000, 50) float64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = SkGMM(10, max_iter=1, random_state=0).fit(Z)  # one shared starting point
    start = {
        "weights_init": first.weights_,
        "means_init": first.means_,
        "precisions_init": first.precisions_,
    }
    gmm = gmm_rows(Z, start, device)

    ours_k, sk_k = kmeans["companion (cpu)"], kmeans["sklearn"]
    ours_g, sk_g = gmm["companion (cpu)"], gmm["sklearn"]
    summary = {
        "kmeans_ms_per_iteration_ratio_companion_over_sklearn": round(
            ours_k["ms_per_iteration"] / sk_k["ms_per_iteration"], 3
        ),
        "kmeans_inertia_relative_difference": abs(ours_k["inertia"] / sk_k["inertia"] - 1),
        "gmm_speedup_per_iteration": round(
            sk_g["ms_per_iteration"] / ours_g["ms_per_iteration"], 2
        ),
        "gmm_log_likelihood_relative_difference": abs(
            ours_g["average_log_likelihood"] / sk_g["average_log_likelihood"] - 1
        ),
        "targets": {
            "kmeans_ratio_at_most": 1.0,
            "kmeans_inertia_within": 0.005,
            "gmm_speedup_at_least": 3,
            "gmm_log_likelihood_within": 1e-4,
        },
    }
    write_results(
        "clustering",
        device,
        {
            "machine": machine_info(device),
            "kmeans": {
                "data": "Fashion-MNIST train pixels, 60000 x 784 float32",
                "k": 10,
                "methods": kmeans,
            },  # fmt: skip
            "gmm": {
                "data": "Fashion-MNIST train, PCA-50 features, float64, full covariances",
                "k": 10,
                "methods": gmm,
            },  # fmt: skip
            "summary": summary,
        },
    )


if __name__ == "__main__":
    main()
