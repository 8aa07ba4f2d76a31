"""Train the raster-scan PixelRNN on 14×14 binarised Fashion-MNIST and measure its exact test NLL.

The images are halved to 14×14 (means of 2×2 blocks, ``halve_images``) so
that the 196-step LSTM trains in minutes on a CPU. One LSTM layer of
``PIXELRNN_HIDDEN`` units reads, at each pixel, the pixel to its left, the
three above it and a first-column flag (companion/models/autoregressive/pixelrnn.py); a linear
readout plus a bias per position gives the Bernoulli logit. Adam (lr 1e-3,
divided by ten from ``--decay-at``), batch 128, a fresh Bernoulli draw of
every training batch; the 10,000 halved test images are binarised once with
seed 12345.

    python scripts/train_pixelrnn.py --epochs 12 --decay-at 10

writes ``companion/pretrained/weights/pixelrnn_fashion_mnist_14.pt`` (float32 state
dict, loaded with ``weights_only=True`` by
``companion.models.autoregressive.pixelrnn.load_pixelrnn``) and
``companion/pretrained/records/pixelrnn_nll.json``. It resumes from
``_build/pixelrnn.ckpt`` when run again. ``--subset N`` and
``--test-subset N`` make a smoke run whose files go to ``_build/smoke/``.
"""

from __future__ import annotations

from train_made import common_parser, train_and_report  # the same protocol as MADE's

from companion.models import PixelRNN
from companion.models.autoregressive.pixelrnn import PIXELRNN_HIDDEN, halve_images
from companion.pretrained.loaders import PIXELRNN_WEIGHTS


def main() -> None:
    args = common_parser(__doc__, epochs=12, decay_at=10).parse_args()
    train_and_report(
        "pixelrnn", PixelRNN(PIXELRNN_HIDDEN), args,
        weights_file=PIXELRNN_WEIGHTS, script="train_pixelrnn.py",
        architecture={"lstm_layers": 1, "hidden": PIXELRNN_HIDDEN, "image": "14x14",
                      "inputs": "left, up-left, up, up-right, first-column flag",
                      "output": "linear readout plus one bias per position"},
        prepare=halve_images, data_note=" halved to 14×14 (2×2 means)",
    )  # fmt: skip


if __name__ == "__main__":
    main()
