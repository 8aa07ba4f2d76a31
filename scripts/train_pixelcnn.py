"""Train the PixelCNN on dynamically binarised Fashion-MNIST and measure its exact test NLL.

PixelCNN with a 7×7 type-A masked convolution, residual blocks of width
``PIXELCNN_CHANNELS`` whose 3×3 convolutions are dilated by
``PIXELCNN_DILATIONS`` (companion/models/autoregressive/pixelcnn.py), and a 1×1 output to
Bernoulli logits (van den Oord et al., 2016), trained with Adam (lr 1e-3,
divided by ten from ``--decay-at``), batch 128, on a fresh Bernoulli draw of
every training batch; the 10,000 test images are binarised once with seed
12345, as for the VAE, so the numbers compare. The target is a test NLL
below the VAE's importance-weighted bound (``companion/pretrained/records/vae_nll.json``).

The shipped model was trained in two stages, to spend a CPU's hours well: a
model with the first five blocks, then the full model grown from it
(``companion.models.autoregressive.pixelcnn.deepen``: the new blocks start as the identity, so the
grown model begins exactly where the small one stopped):

    python scripts/train_pixelcnn.py --blocks 5 --epochs 8 --decay-at 20
    python scripts/train_pixelcnn.py --grow-from _build/pixelcnn_5blocks.ckpt \\
        --epochs 14 --decay-at 11

The second command writes ``companion/pretrained/weights/pixelcnn_fashion_mnist.pt``
(float32 state dict, loaded with ``weights_only=True`` by
``companion.models.autoregressive.pixelcnn.load_pixelcnn``) and
``companion/pretrained/records/pixelcnn_nll.json`` (test NLL in nats with its standard
error, bits/dim, train time of both stages, machine, commands). Each stage
resumes from its checkpoint ``_build/pixelcnn_<blocks>blocks.ckpt`` when run
again; a model with fewer blocks than the shipped one writes its weights and
results under ``_build/``. ``--subset N`` and ``--test-subset N`` make a
smoke run whose files go to ``_build/smoke/``.
"""

from __future__ import annotations

from train_made import ROOT, common_parser, train_and_report  # the same protocol as MADE's

from companion import seed_everything
from companion.models import PixelCNN
from companion.models.autoregressive.pixelcnn import PIXELCNN_CHANNELS, PIXELCNN_DILATIONS, deepen
from companion.pretrained.loaders import PIXELCNN_WEIGHTS
from companion.training import load_checkpoint


def grown_model(path: str, dilations: tuple[int, ...]) -> tuple[PixelCNN, dict]:
    """The model saved in the trainer checkpoint ``path``, deepened to ``dilations``."""
    saved = load_checkpoint(path)  # weights_only=True, as everywhere in the package
    state = saved["model_state"]
    small_dilations = tuple(int(d) for d in state["architecture"].tolist())
    if dilations[: len(small_dilations)] != small_dilations:
        raise ValueError(
            f"{path} holds a PixelCNN with dilations {small_dilations}, not a prefix of "
            f"{dilations}; grow from a model trained with --blocks {len(small_dilations)}."
        )
    small = PixelCNN(PIXELCNN_CHANNELS, len(small_dilations), dilations=small_dilations)
    small.load_state_dict(state)
    history = saved.get("history", {})
    stage = {
        "checkpoint": path,
        "blocks": len(small_dilations),
        "epochs": saved.get("epoch"),
        "train_nll_per_epoch": [round(v, 3) for v in history.get("loss", [])],
        "seconds_per_epoch": [round(v, 1) for v in history.get("seconds", [])],
    }
    return deepen(small, dilations[len(small_dilations) :]), stage


def main() -> None:
    parser = common_parser(__doc__, epochs=14, decay_at=11)
    parser.add_argument("--blocks", type=int, default=len(PIXELCNN_DILATIONS),
                        help="use the first N blocks of the shipped architecture")  # fmt: skip
    parser.add_argument("--grow-from", default=None,
                        help="trainer checkpoint of a smaller model to start from")  # fmt: skip
    args = parser.parse_args()
    if not 1 <= args.blocks <= len(PIXELCNN_DILATIONS):
        parser.error(f"--blocks {args.blocks} must be between 1 and {len(PIXELCNN_DILATIONS)}.")
    dilations = PIXELCNN_DILATIONS[: args.blocks]
    shipped = args.blocks == len(PIXELCNN_DILATIONS)
    if args.checkpoint is None:
        args.checkpoint = str(ROOT / "_build" / f"pixelcnn_{args.blocks}blocks.ckpt")
    if not shipped:  # a first stage: keep its files out of the package and the results
        args.weights = args.weights or str(ROOT / "_build" / f"pixelcnn_{args.blocks}blocks.pt")
        args.results = args.results or str(ROOT / "_build" / f"pixelcnn_{args.blocks}blocks.json")
    architecture = {"first": "7x7 masked type A", "channels": PIXELCNN_CHANNELS,
                    "residual_blocks": args.blocks, "dilations": list(dilations),
                    "block": "1x1, 3x3 type B (dilated), 1x1",
                    "output": "1x1, 1x1 to one Bernoulli logit per pixel"}  # fmt: skip
    seed_everything(0)  # the initial weights (of the new blocks, when growing)
    if args.grow_from:
        model, stage = grown_model(args.grow_from, dilations)
        architecture["grown_from"] = stage
    else:
        model = PixelCNN(PIXELCNN_CHANNELS, args.blocks, dilations=dilations)
    train_and_report("pixelcnn", model, args, weights_file=PIXELCNN_WEIGHTS,
                     script="train_pixelcnn.py", architecture=architecture)  # fmt: skip


if __name__ == "__main__":
    main()
