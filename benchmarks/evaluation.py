"""One likelihood table for the book: every model on the same binarised Fashion-MNIST test set.

The 10,000 test images are binarised once with seed 12345 (as in
``scripts/train_vae.py``, ``scripts/train_made.py`` and
``scripts/train_pixelcnn.py``), and every model is scored on exactly them:

* Bernoulli mixtures (``companion.classical.bernoulli.BernoulliMixture``, K components,
  EM on the training images binarised once with seed 0), fitted here and timed:
  exact NLL;
* the shipped VAE: the importance-weighted bound with k = 1000, from
  ``companion/pretrained/records/vae_nll.json`` (written by ``scripts/train_vae.py``;
  ``--recompute-vae`` computes it again);
* the shipped MADE and PixelCNN, when their weights exist: exact NLL, computed
  here from the weights (their training scripts record the same number and the
  training time, read from their results files).

Published anchors (binarised MNIST, a different and easier data set, listed
for scale only): NADE 88.9, MADE 86.6, PixelCNN 81.3 nats; Fashion-MNIST VAE
228.7 (Exemplar VAE paper's table). Target: the PixelCNN beats the book's VAE.
Because every model scores the same images, the PixelCNN and the VAE are also
compared image by image (``paired_with_vae``: the mean difference and its
paired standard error, with the VAE's bound recomputed per image, k = 1000).

    python benchmarks/evaluation.py    # writes companion/pretrained/records/evaluation.json
    python benchmarks/evaluation.py --components 10 --out /tmp/evaluation.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import RESULTS, machine_info, write_results

from companion import resolve_device, seed_everything
from companion.classical import BernoulliMixture
from companion.data import binarize, flatten, load_fashion_mnist, to_float
from companion.evaluation import Estimate, log_likelihoods, nats_to_bits_per_dim
from companion.models import importance_weighted_nll
from companion.models.autoregressive.pixelcnn import PIXELCNN_BLOCKS
from companion.pretrained import load_made, load_pixelcnn, load_vae

TEST_SEED = 12345
TRAIN_SEED = 0
PUBLISHED = {
    "binarised MNIST: NADE (Larochelle & Murray, 2011)": 88.9,
    "binarised MNIST: MADE (Germain et al., 2015)": 86.6,
    "binarised MNIST: PixelCNN (van den Oord et al., 2016)": 81.3,
    "Fashion-MNIST: VAE (Exemplar VAE paper, table)": 228.7,
}


def _row(model: str, kind: str, nll: float, stderr: float | None, **extra) -> dict:
    return {
        "model": model,
        "likelihood": kind,
        "test_nll_nats": round(nll, 3),
        "stderr": None if stderr is None else round(stderr, 3),
        "bits_per_dim": round(float(nats_to_bits_per_dim(nll, 784)), 4),
        **extra,
    }


def mixture_rows(x_train: torch.Tensor, x_test: torch.Tensor, components: list[int]) -> list:
    rows = []
    for k in components:
        start = time.perf_counter()
        model = BernoulliMixture(n_components=k, max_iter=100, random_state=0).fit(x_train)
        seconds = time.perf_counter() - start
        log_p = model.score_samples(x_test)
        nll, stderr = -log_p.mean().item(), (log_p.std() / len(log_p) ** 0.5).item()
        rows.append(
            _row(
                f"Bernoulli mixture, K = {k}",
                "exact",
                nll,
                stderr,
                train_seconds=round(seconds, 1),
                iterations=int(model.n_iter_),
            )  # fmt: skip
        )
    return rows


def autoregressive_rows(x_test: torch.Tensor, per_image: dict[str, torch.Tensor]) -> list:
    """Rows for the shipped MADE and PixelCNN; their per-image NLLs go into ``per_image``."""
    rows = []
    for name, loader, results in (
        ("MADE 784-1000-784", load_made, "made_nll.json"),
        (f"PixelCNN ({PIXELCNN_BLOCKS} dilated residual blocks)", load_pixelcnn,
         "pixelcnn_nll.json"),
    ):  # fmt: skip
        try:
            model = loader()
        except FileNotFoundError as error:
            rows.append({"model": name, "likelihood": "exact", "missing": str(error)})
            continue
        per_image[name] = -log_likelihoods(model, x_test)  # (N,) nats
        estimate = Estimate(per_image[name].mean().item(), stderr(per_image[name]))
        record = RESULTS / results
        trained = json.loads(record.read_text()) if record.exists() else {}
        # a model grown from a smaller one (scripts/train_pixelcnn.py) counts both stages
        stage = trained.get("architecture", {}).get("grown_from", {})
        epochs = (trained.get("epochs") or 0) + (stage.get("epochs") or 0)
        seconds = trained.get("seconds_per_epoch", []) + stage.get("seconds_per_epoch", [])
        rows.append(
            _row(
                name,
                "exact",
                float(estimate.mean),
                float(estimate.stderr),
                epochs=epochs or None,
                # every epoch, over all resumed runs (train_seconds_this_run is the last run only)
                train_seconds=round(sum(seconds), 1) or None,
                command=trained.get("command"),
            )  # fmt: skip
        )
    return rows


def stderr(values: torch.Tensor) -> float:
    """Standard error of the mean of ``values`` (N,)."""
    return (values.std() / len(values) ** 0.5).item()


def vae_bounds(x_test: torch.Tensor) -> torch.Tensor:
    """The VAE's importance-weighted bound on -log p(x) per test image, k = 1000, seed 1: (N,)."""
    seed_everything(1)
    return importance_weighted_nll(load_vae(), x_test, k=1000, chunk=250, batch_size=250).double()


def paired_comparison(pixelcnn: torch.Tensor, vae: torch.Tensor) -> dict:
    """PixelCNN NLL minus the VAE's bound on the same images: mean, paired standard error.

    The pairing removes what the two share (some test images are hard for
    every model), so the standard error of the difference is far smaller than
    either model's own. The VAE's true NLL is at most its bound, so a
    negative difference says the PixelCNN beats the bound, not necessarily
    the VAE's likelihood.
    """
    difference = pixelcnn - vae
    return {
        "pixelcnn_minus_vae_bound_nats": round(difference.mean().item(), 3),
        "paired_standard_error": round(stderr(difference), 3),
        "share_of_images_where_pixelcnn_is_lower": round(
            (difference < 0).double().mean().item(), 4
        ),
        "vae_bound_recomputed_here": round(vae.mean().item(), 3),
        "vae_bound_seed": 1,
    }


def vae_row(x_test: torch.Tensor, recompute: bool) -> dict:
    if recompute:
        nll = vae_bounds(x_test)
        mean, stderr_, source = nll.mean().item(), stderr(nll), "here"
    else:
        saved = json.loads((RESULTS / "vae_nll.json").read_text())
        mean, stderr_ = saved["test_iwae_nll"], saved["test_iwae_nll_standard_error"]
        source = "companion/pretrained/records/vae_nll.json (" + saved["command"] + ")"
    epochs = json.loads((RESULTS / "vae_nll.json").read_text())["epochs"]
    return _row(
        "VAE 784-512-256-32", "bound (IWAE, k = 1000)", mean, stderr_, source=source, epochs=epochs
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--components", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--recompute-vae", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    x_train = flatten(to_float(load_fashion_mnist("train")[0]))
    x_test = flatten(to_float(load_fashion_mnist("test")[0]))
    x_train = binarize(x_train, generator=torch.Generator().manual_seed(TRAIN_SEED))
    x_test = binarize(x_test, generator=torch.Generator().manual_seed(TEST_SEED))
    rows = mixture_rows(x_train, x_test, args.components)
    rows.append(vae_row(x_test, args.recompute_vae))
    per_image: dict[str, torch.Tensor] = {}
    rows += autoregressive_rows(x_test, per_image)
    scored = {r["model"]: r["test_nll_nats"] for r in rows if "test_nll_nats" in r}
    pixelcnn = next((v for k, v in scored.items() if k.startswith("PixelCNN")), None)
    vae = next(v for k, v in scored.items() if k.startswith("VAE"))
    results = {
        "machine": machine_info(device),
        "data": "Fashion-MNIST test images binarised once (seed 12345); mixtures fitted on the "
        "training images binarised once (seed 0)",
        "rows": rows,
        "published_nats": PUBLISHED,
        "target": "the PixelCNN's test NLL below the VAE's bound",
        "target_met": None if pixelcnn is None else pixelcnn < vae,
    }
    pixelcnn_images = next((v for k, v in per_image.items() if k.startswith("PixelCNN")), None)
    if pixelcnn_images is not None:
        start = time.perf_counter()
        results["paired_with_vae"] = paired_comparison(pixelcnn_images, vae_bounds(x_test))
        results["paired_with_vae"]["seconds"] = round(time.perf_counter() - start, 1)
    write_results("evaluation", device, results, args.out)


if __name__ == "__main__":
    main()
