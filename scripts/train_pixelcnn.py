"""Train the PixelCNN on dynamically binarised Fashion-MNIST and measure its exact test NLL.

PixelCNN with a 7×7 type-A masked convolution, ``PIXELCNN_BLOCKS`` residual
blocks of width ``PIXELCNN_CHANNELS`` whose 3×3 convolutions are dilated by
``PIXELCNN_DILATIONS`` (companion/pixelcnn.py), and a 1×1
output to Bernoulli logits (van den Oord et al., 2016), trained with Adam
(lr 1e-3, divided by ten from ``--decay-at``), batch 128, on a fresh
Bernoulli draw of every training batch; the 10,000 test images are
binarised once with seed 12345, as for the VAE, so the numbers compare.
The target is a test NLL below the VAE's importance-weighted bound
(``benchmarks/results/vae_nll.json``).

    python scripts/train_pixelcnn.py --epochs 20 --decay-at 15

writes ``companion/weights/pixelcnn_fashion_mnist.pt`` (float32 state dict,
loaded with ``weights_only=True`` by ``companion.pixelcnn.load_pixelcnn``)
and ``benchmarks/results/pixelcnn_nll.json`` (test NLL in nats with its
standard error, bits/dim, train time, machine, command). It resumes from
``_build/pixelcnn.ckpt`` when run again. ``--subset N`` and
``--test-subset N`` make a smoke run whose files go to ``_build/smoke/``.
"""

from __future__ import annotations

from train_made import common_parser, train_and_report  # the same protocol as MADE's

from companion.pixelcnn import (
    PIXELCNN_BLOCKS,
    PIXELCNN_CHANNELS,
    PIXELCNN_DILATIONS,
    WEIGHTS_FILE,
    PixelCNN,
)


def main() -> None:
    args = common_parser(__doc__, epochs=20, decay_at=15).parse_args()
    train_and_report(
        "pixelcnn", PixelCNN(PIXELCNN_CHANNELS, PIXELCNN_BLOCKS, dilations=PIXELCNN_DILATIONS),
        args,
        weights_file=WEIGHTS_FILE, script="train_pixelcnn.py",
        architecture={"first": "7x7 masked type A", "channels": PIXELCNN_CHANNELS,
                      "residual_blocks": PIXELCNN_BLOCKS, "dilations": list(PIXELCNN_DILATIONS),
                      "block": "1x1, 3x3 type B (dilated), 1x1",
                      "output": "1x1, 1x1 to one Bernoulli logit per pixel"},
    )  # fmt: skip


if __name__ == "__main__":
    main()
