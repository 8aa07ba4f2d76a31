"""PCA benchmark: the companion against scikit-learn's solvers on Fashion-MNIST.

Fashion-MNIST train (60000 x 784, float32), n_components=50. Every method is
timed in the same run: one warm-up call, then ``--rounds`` rounds (at least 3) in
which the methods are interleaved with a pause between fits; the median and the
spread are recorded with the thread pools in use. Each method's explained
variances are compared with a float64 reference (eigenvalues of the centred
covariance computed in float64). Writes ``companion/pretrained/records/pca[-DEVICE].json``.

Targets: on the CPU, the companion within 1.3x of scikit-learn's fastest solver
while at least 10x closer to the reference; on a GPU, at least 20x faster
than scikit-learn's fastest on the CPU.

    python benchmarks/pca.py                 # CPU
    python benchmarks/pca.py --device cuda   # adds the companion on the GPU
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import interleaved, machine_info, spread, write_results
from sklearn.decomposition import PCA as SkPCA

from companion import resolve_device
from companion.classical import PCA
from companion.data import flatten, load_fashion_mnist, to_float

K = 50


def reference_variances(X: torch.Tensor) -> np.ndarray:
    """Top-K covariance eigenvalues of X computed entirely in float64."""
    X64 = X.double()
    X64 -= X64.mean(0)
    return (torch.linalg.eigvalsh(X64.T @ X64).flip(0)[:K] / (len(X) - 1)).numpy()


def relative_error(variances, reference: np.ndarray) -> float:
    values = torch.as_tensor(variances).double().cpu().numpy()
    return float(np.max(np.abs(values / reference - 1)))


def main() -> None:
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
    Xn = X.numpy()
    reference = reference_variances(X)

    methods = {
        "companion (cpu)": lambda: PCA(K).fit(X),
        "sklearn auto": lambda: SkPCA(K, svd_solver="auto").fit(Xn),
        "sklearn covariance_eigh": lambda: SkPCA(K, svd_solver="covariance_eigh").fit(Xn),
        "sklearn randomized": lambda: SkPCA(K, svd_solver="randomized", random_state=0).fit(Xn),
        "sklearn full": lambda: SkPCA(K, svd_solver="full").fit(Xn),
    }
    if device.type != "cpu":
        Xd = X.to(device)
        methods[f"companion ({device.type})"] = lambda: PCA(K).fit(Xd)

    models = {name: fit() for name, fit in methods.items()}  # warm-up; accuracy from these
    times = interleaved(methods, args.rounds, device=device if device.type != "cpu" else None)
    rows = {}
    for name, model in models.items():
        rows[name] = {
            "seconds": spread(times[name], digits=4),
            "max_relative_error": relative_error(model.explained_variance_, reference),
        }
        print(f"{name:26s} {rows[name]['seconds']}   {rows[name]['max_relative_error']:.2e}")

    ours = rows["companion (cpu)"]
    sklearn_rows = {k: v for k, v in rows.items() if k.startswith("sklearn")}
    fastest = min(sklearn_rows, key=lambda k: sklearn_rows[k]["seconds"]["median"])
    best = rows[fastest]["seconds"]["median"]
    summary = {
        "fastest_sklearn": fastest,
        "cpu_time_ratio_to_fastest_sklearn": round(ours["seconds"]["median"] / best, 3),
        "cpu_error_ratio_fastest_sklearn_over_companion": round(
            rows[fastest]["max_relative_error"] / ours["max_relative_error"], 1
        ),
        "targets": {
            "cpu_time_ratio_at_most": 1.3,
            "error_ratio_at_least": 10,
            "gpu_speedup_over_fastest_sklearn_cpu_at_least": 20,
        },  # fmt: skip
    }
    gpu = f"companion ({device.type})"
    if gpu in rows and device.type != "cpu":
        summary["gpu_speedup_over_fastest_sklearn_cpu"] = round(
            best / rows[gpu]["seconds"]["median"], 1
        )
    write_results(
        "pca",
        device,
        {
            "machine": machine,
            "command": f"python benchmarks/pca.py --rounds {args.rounds}",
            "data": "Fashion-MNIST train, 60000 x 784, float32",
            "n_components": K,
            "methods": rows,
            "summary": summary,
        },
        args.out,
    )
    ratio, errors = (
        summary["cpu_time_ratio_to_fastest_sklearn"],
        summary["cpu_error_ratio_fastest_sklearn_over_companion"],
    )
    print(f"{'holds' if ratio <= 1.3 else 'MISSED'}: CPU time within 1.3x of {fastest} ({ratio})")
    print(f"{'holds' if errors >= 10 else 'MISSED'}: at least 10x more accurate ({errors}x)")


if __name__ == "__main__":
    main()
