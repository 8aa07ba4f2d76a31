"""The continuous likelihood table: every continuous density model of the book, scored in
8-bit bits per dimension on the same uniformly dequantised Fashion-MNIST test images.

Data. Training images: the 60,000 Fashion-MNIST training images less a validation
set of 10,000 (``train_val_split``, seed 0), each dequantised once (seed 0) as
x = (k + u)/256 in [0, 1)^784. Test images: the 10,000 test images dequantised
once with seed 12345, the noise ``scripts/train_flow.py`` scores its flows on.
Every row is scored on these same images by ``dequantized_bits_per_dim``
(bits/dim = (-log p(x) + 784 log 256) / (784 log 2)), with the standard error
over images.

Rows.

* independent pixels: one 256-bin histogram per pixel, add-β smoothing with β
  chosen on the validation set; its density is constant on every grey-level
  cell, so the dequantised score equals the discrete NLL;
* diagonal Gaussian: per-pixel mean and variance (maximum likelihood);
* PPCA: ``companion.classical.PCA``'s probabilistic model with k components, k
  chosen on the validation set;
* Gaussian mixture: ``companion.classical.GaussianMixture``, full covariances,
  K components (k-means start), K chosen on the validation set among
  ``--gmm-components``, ``--gmm-iter`` EM iterations at most (a CPU budget:
  the fits may stop before EM converges, which the record says);
* VAE: ``companion.models.VAE.mlp`` (784-``--vae-hidden``-``--vae-latent`` and back)
  with a Gaussian decoder that outputs a mean and a log-variance for every pixel
  (``decoder_variance=True``; the log-variances softly floored at the variance of
  the dequantisation noise, log(1/(12·256²))), trained by
  ``companion.training.Trainer`` (Adam, batch 128, seed 0) on the same
  dequantised training images for ``--vae-epochs`` epochs at each learning rate
  of ``--vae-lr`` (or until its share of ``--vae-max-minutes`` is spent); the
  epoch and learning rate with the lowest validation −ELBO are kept (early
  stopping on the validation images). The test images are scored
  with the importance weighted bound L_K (Burda et al., 2016; ``--iwae-k``
  samples, ``companion.models.importance_weighted_nll``): −L_K is an upper bound,
  in expectation, on the VAE's continuous NLL −log p(x), hence on its discrete NLL
  too. The Gaussian puts some mass outside [0, 1]^784, which only loosens that
  bound. The VAE is neither classical nor a flow: the record says so in
  ``family``;
* RealNVP and MAF: the shipped flows (``companion.pretrained.load_flow``). Their
  logit transform (α = 0.05) maps [0, 1]^784 onto a box, so each is
  sub-normalised: its density on [0, 1)^784 integrates to the base mass of that
  box, estimated here by sampling (``Flow.unit_cube_mass``); the score is an
  upper bound on the normalised model's, too high by -log2(mass)/784 (0.04
  bits/dim for a mass of 1e-10: the bound is loose by little even when
  hardly any sample falls inside the cube).

Every continuous density's dequantised score is an upper bound on the NLL of
the discrete model it induces (the bound the chapter proves); for the
histogram the two coincide.

    python benchmarks/continuous_likelihood.py
    python benchmarks/continuous_likelihood.py --n-train 3000 --out /tmp/cl.json  # quick
    python benchmarks/continuous_likelihood.py --only vae --n-train 20000 --threads 1
    python benchmarks/continuous_likelihood.py --only gmm --n-train 20000 --gmm-iter 100 --threads 1

``--only vae`` (``--only gmm``) computes the VAE (the Gaussian mixture) row alone
and merges it into the existing record (``--out`` or the committed one), whose
data it must match: give the same ``--n-train`` and ``--n-test`` as the record's
command. The row keeps its own command, date and training time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from common import RESULTS, ROOT, machine_info, write_results

sys.path.insert(0, str(ROOT / "scripts"))

from train_flow import TEST_SEED, flow_bits_per_dim, test_images

from companion.classical import PCA, GaussianMixture
from companion.data import dequantize, flatten, load_fashion_mnist, train_val_split
from companion.models import VAE, dequantized_bits_per_dim, importance_weighted_nll
from companion.pretrained import load_flow
from companion.training import Trainer

D = 784
FLOWS = ("RealNVP", "MAF")
VAE_NAME = "VAE (Gaussian decoder with per-pixel variances)"
ROW_ORDER = ("independent", "diagonal", "PPCA", "Gaussian mixture", "VAE", *FLOWS)


def mean_stderr(bpd: torch.Tensor) -> dict:
    bpd = bpd.double()
    return {
        "bits_per_dim": round(float(bpd.mean()), 4),
        "standard_error": round(float(bpd.std() / math.sqrt(len(bpd))), 4),
    }


def best_flow_below_classical(rows: list[dict]) -> bool | None:
    """Whether the best flow scores below every classical row (None without a flow)."""
    flows = [r["bits_per_dim"] for r in rows if family(r["model"]) == "flow"]
    classical = [r["bits_per_dim"] for r in rows if family(r["model"]) == "classical"]
    return None if not flows else all(min(flows) < c for c in classical)


def histogram_bpd(train_k: torch.Tensor, k: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-image bits/dim (N,) of grey levels k (N, D) under per-pixel histograms."""
    counts = torch.zeros(D, 256, dtype=torch.float64)
    counts.scatter_add_(1, train_k.long().T, torch.ones(train_k.T.shape, dtype=torch.float64))
    log_p = torch.log((counts + beta) / (counts.sum(1, keepdim=True) + 256 * beta))  # (D, 256)
    cell = log_p.gather(1, k.long().T).T.sum(1)  # log P(k), (N,)
    return dequantized_bits_per_dim(cell + D * math.log(256), D)  # density 256^D P(k) on x


def diagonal_gaussian_bpd(x_train: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    mu, var = x_train.mean(0), x_train.var(0, unbiased=False)
    log_p = -0.5 * (math.log(2 * math.pi) + var.log() + (x - mu).pow(2) / var).sum(1)
    return dequantized_bits_per_dim(log_p, D)


ONLY = {"vae": "VAE", "gmm": "Gaussian mixture"}  # --only: the row's name starts so


def family(model: str) -> str:
    """The family of a row: "flow", "latent variable" (the VAE) or "classical"."""
    if model in FLOWS:
        return "flow"
    return "latent variable" if model.startswith("VAE") else "classical"


def row_rank(row: dict) -> int:
    return next(i for i, start in enumerate(ROW_ORDER) if row["model"].startswith(start))


class OutOfTime(Exception):
    """Raised by :class:`BestOnValidation` when its time budget is spent."""


class BestOnValidation:
    """Trainer callback: keep a copy of the weights at the lowest validation −ELBO, and
    stop the fit (raise :class:`OutOfTime` after an epoch) once ``seconds`` have passed."""

    def __init__(self, seconds: float = math.inf) -> None:
        self.best, self.epoch, self.state = math.inf, 0, None
        self.history: list[float] = []
        self.deadline = time.perf_counter() + seconds

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        value = logs["val_negative_elbo"]
        self.history.append(value)
        if value < self.best:
            self.best, self.epoch = value, epoch + 1
            self.state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        if time.perf_counter() > self.deadline:
            raise OutOfTime(f"stopped after epoch {epoch + 1}: the time budget is spent")


def gmm_row(x_train: torch.Tensor, x_val: torch.Tensor, x_test: torch.Tensor, args) -> tuple:
    """The Gaussian mixture row: one full-covariance mixture per K of ``--gmm-components``
    (EM for at most ``--gmm-iter`` iterations), K chosen on the validation images;
    returns ``add``'s arguments (name, per-image bits/dim, status, seconds, details)."""
    t = time.perf_counter()
    val, fitted = {}, {}
    for K in args.gmm_components:
        gmm = GaussianMixture(K, covariance_type="full", max_iter=args.gmm_iter, random_state=0)
        fitted[K] = gmm.fit(x_train)
        val[K] = float(dequantized_bits_per_dim(gmm.score_samples(x_val), D).mean())
        print(f"K = {K}: {gmm.n_iter_} EM iterations, converged {gmm.converged_}, "
              f"validation {val[K]:.4f} bits/dim", flush=True)  # fmt: skip
    K_best = min(val, key=val.get)
    details = {
        "K": K_best,
        "em_iterations": int(fitted[K_best].n_iter_),
        "em_converged": bool(fitted[K_best].converged_),
        "validation_bits_per_dim": {str(k): round(v, 4) for k, v in val.items()},
    }
    return (f"Gaussian mixture (K = {K_best}, full covariances)",
            dequantized_bits_per_dim(fitted[K_best].score_samples(x_test), D),
            "exact density; upper bound on the discrete NLL", time.perf_counter() - t,
            details)  # fmt: skip


def fit_vae(x_train: torch.Tensor, x_val: torch.Tensor, args) -> tuple[VAE, dict]:
    """Train one VAE per learning rate, each for ``--vae-epochs`` or its share of
    ``--vae-max-minutes``, and keep the best (epoch, rate) on validation."""
    to_bpd = lambda nats: round((nats / D + math.log(256)) / math.log(2), 4)  # noqa: E731
    best, details = None, {"validation_bits_per_dim_negative_elbo": {}}
    for lr in args.vae_lr:
        torch.manual_seed(0)
        model = VAE.mlp(D, tuple(args.vae_hidden), args.vae_latent, likelihood="gaussian",
                        decoder_variance=True, min_obs_logvar=-math.log(12 * 256**2))  # fmt: skip
        keep = BestOnValidation(60 * args.vae_max_minutes / len(args.vae_lr))
        try:
            Trainer(model, epochs=args.vae_epochs, batch_size=128, lr=lr, device="cpu", seed=0,
                    callbacks=[keep], progress=False).fit(x_train, x_val)  # fmt: skip
        except OutOfTime as stop:
            print(f"VAE lr={lr}: {stop}", flush=True)
        details["validation_bits_per_dim_negative_elbo"][str(lr)] = [
            to_bpd(v) for v in keep.history
        ]
        print(f"VAE lr={lr}: best epoch {keep.epoch}, validation {to_bpd(keep.best)}", flush=True)
        if best is None or keep.best < best[0].best:
            model.load_state_dict(keep.state)
            best = (keep, lr, model)
    keep, lr, model = best
    details.update(learning_rate=lr, epochs=keep.epoch)
    return model.eval(), details


def vae_row(x_train, x_val, x_test, args) -> tuple[torch.Tensor, str, float, dict]:
    start = time.perf_counter()
    model, details = fit_vae(x_train.float(), x_val.float(), args)
    train_seconds = time.perf_counter() - start
    torch.manual_seed(0)
    start = time.perf_counter()
    nll = importance_weighted_nll(model, x_test.float(), k=args.iwae_k).double()
    bpd = dequantized_bits_per_dim(-nll, D)
    with torch.no_grad():
        torch.manual_seed(0)
        elbo = torch.cat([model.elbo(x_test[i : i + 500].float()).double()
                          for i in range(0, len(x_test), 500)])  # fmt: skip
    details = {
        "architecture": f"784-{'-'.join(map(str, args.vae_hidden))}-{args.vae_latent} "
        "encoder; decoder to 784 means and 784 log-variances (floored softly at "
        "log(1/(12·256²)))",
        **details,
        "epochs_requested": args.vae_epochs,
        "epochs_run": {
            lr: len(curve) for lr, curve in details["validation_bits_per_dim_negative_elbo"].items()
        },
        "max_training_minutes": args.vae_max_minutes,
        "learning_rates_tried": args.vae_lr,
        "iwae_k": args.iwae_k,
        "test_bits_per_dim_negative_elbo": mean_stderr(dequantized_bits_per_dim(elbo, D)),
        "train_seconds": round(train_seconds, 1),
        "score_seconds": round(time.perf_counter() - start, 1),
    }
    status = (f"upper bound (IWAE, K = {args.iwae_k}, in expectation) on the VAE's continuous "
              "NLL, hence on its discrete NLL; the Gaussian's mass outside [0, 1]^D only "
              "loosens it")  # fmt: skip
    return bpd, status, time.perf_counter() - start + train_seconds, details


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-train", type=int, default=None, help="first N training images")
    parser.add_argument("--n-test", type=int, default=None, help="first N test images")
    parser.add_argument("--ppca-k", type=int, nargs="+", default=[16, 32, 64, 128, 256, 400])
    parser.add_argument("--gmm-components", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--gmm-iter", type=int, default=15)
    parser.add_argument("--mass-samples", type=int, nargs=2, default=[2000, 200],
                        help="samples for the unit-cube mass of RealNVP and of MAF")  # fmt: skip
    parser.add_argument("--vae-hidden", type=int, nargs="+", default=[400])
    parser.add_argument("--vae-latent", type=int, default=20)
    parser.add_argument("--vae-epochs", type=int, default=100)
    parser.add_argument("--vae-lr", type=float, nargs="+", default=[1e-3, 5e-4])
    parser.add_argument("--vae-max-minutes", type=float, default=14.0,
                        help="training budget, shared evenly by the learning rates")  # fmt: skip
    parser.add_argument("--iwae-k", type=int, default=200)
    parser.add_argument("--only", choices=sorted(ONLY), default=None,
                        help="compute this row alone; merge it into the record")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    start_all = time.perf_counter()

    images = flatten(load_fashion_mnist("train")[0])
    (train_k,), (val_k,) = train_val_split(images, val_fraction=1 / 6, seed=0)
    train_k = train_k[: args.n_train]
    x_train = dequantize(train_k, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x_val = dequantize(val_k, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    test_k = flatten(load_fashion_mnist("test")[0])[: args.n_test]
    x_test = test_images(args.n_test)
    assert torch.equal((x_test * 256).floor().to(torch.uint8), test_k)
    x_test = x_test.double()
    rows: list[dict] = []
    command = " ".join(["python benchmarks/continuous_likelihood.py", *sys.argv[1:]])
    data = (f"Fashion-MNIST; {len(train_k)} training and {len(val_k)} validation images "
            f"dequantised once (seeds 0, 1); {len(x_test)} test images dequantised once "
            f"(seed {TEST_SEED}), the same for every row")  # fmt: skip

    def add(name: str, bpd: torch.Tensor, status: str, seconds: float, **details) -> None:
        rows.append({"model": name, "family": family(name), **mean_stderr(bpd),
                     "status": status, "seconds": round(seconds, 1), **details})  # fmt: skip
        print(rows[-1], flush=True)

    if args.only is not None:
        path = Path(args.out) if args.out else RESULTS / "continuous_likelihood.json"
        record = json.loads(path.read_text())
        if record["data"] != data:
            raise SystemExit(f"the record {path} holds other data:\n  {record['data']}\n"
                             f"not\n  {data}\ngive the --n-train and --n-test of its command: "
                             f"{record['command']}")  # fmt: skip
        if args.only == "vae":
            name = VAE_NAME
            bpd, status, seconds, details = vae_row(x_train, x_val, x_test, args)
        else:
            name, bpd, status, seconds, details = gmm_row(x_train, x_val, x_test, args)
        add(name, bpd, status, seconds, **details, command=command,
            machine=machine_info(torch.device("cpu")))  # fmt: skip
        others = [r for r in record["rows"] if not r["model"].startswith(ONLY[args.only])]
        for r in others:
            r.setdefault("family", family(r["model"]))
            r.setdefault("command", record["command"])
        record["rows"] = sorted(others + rows, key=row_rank)
        record.pop("vae", None)
        record["best_flow_below_every_classical_row"] = best_flow_below_classical(record["rows"])
        write_results("continuous_likelihood", torch.device("cpu"), record, path)
        return

    t = time.perf_counter()
    betas = [0.01, 0.1, 0.5, 1.0]
    val = {b: float(histogram_bpd(train_k, val_k, b).mean()) for b in betas}
    beta = min(val, key=val.get)
    add("independent pixels (256-bin histograms)", histogram_bpd(train_k, test_k, beta),
        "exact: equals the discrete NLL", time.perf_counter() - t,
        smoothing_beta=beta,
        validation_bits_per_dim={str(b): round(v, 4) for b, v in val.items()})  # fmt: skip

    t = time.perf_counter()
    add("diagonal Gaussian", diagonal_gaussian_bpd(x_train, x_test),
        "exact density; upper bound on the discrete NLL", time.perf_counter() - t)  # fmt: skip

    t = time.perf_counter()
    val = {}
    for k in args.ppca_k:
        val[k] = float(dequantized_bits_per_dim(PCA(k).fit(x_train).score_samples(x_val), D).mean())
    k_best = min(val, key=val.get)
    ppca = PCA(k_best).fit(x_train)
    add(f"PPCA (k = {k_best})", dequantized_bits_per_dim(ppca.score_samples(x_test), D),
        "exact density; upper bound on the discrete NLL", time.perf_counter() - t,
        k=k_best,
        validation_bits_per_dim={str(k): round(v, 4) for k, v in val.items()})  # fmt: skip

    name, bpd, status, seconds, details = gmm_row(x_train, x_val, x_test, args)
    add(name, bpd, status, seconds, **details)

    bpd, status, seconds, details = vae_row(x_train, x_val, x_test, args)
    add(VAE_NAME, bpd, status, seconds, **details)

    for kind, label, n_mass in (("realnvp", "RealNVP", args.mass_samples[0]),
                                ("maf", "MAF", args.mass_samples[1])):  # fmt: skip
        t = time.perf_counter()
        try:
            flow = load_flow(kind)
        except FileNotFoundError as error:
            print(f"{label}: skipped ({error})")
            continue
        bpd = flow_bits_per_dim(flow, x_test.float())
        mass = flow.unit_cube_mass(n_mass, seed=0, batch_size=500)
        add(label, bpd, "exact density of a sub-normalised model; upper bound on its "
            "normalised and discrete NLL", time.perf_counter() - t,
            unit_cube_mass={"estimate": mass.mean, "standard_error": round(mass.stderr, 4),
                            "samples": n_mass},
            correction_bits_per_dim_if_normalised=(
                round(math.log2(mass.mean) / D, 6) if mass.mean > 0 else None))  # fmt: skip

    for r in rows:
        r.setdefault("command", command)
    results = {
        "machine": machine_info(torch.device("cpu")),
        "command": command,
        "data": data,
        "unit": "8-bit bits per dimension: (-log p(x) + 784 log 256) / (784 log 2)",
        "rows": rows,
        "best_flow_below_every_classical_row": best_flow_below_classical(rows),
        "seconds": round(time.perf_counter() - start_all, 1),
    }
    write_results("continuous_likelihood", torch.device("cpu"), results, args.out)


if __name__ == "__main__":
    main()
