"""PixelCNN for binary single-channel images (van den Oord et al., 2016).

Pixels are generated in raster order, row by row and left to right within a
row. A convolution whose kernel is zero below its centre row and right of
its centre keeps that order: the first layer (mask type A) also zeroes the
centre, so output (r, c) never sees input (r, c); later layers (type B) keep
the centre, since their input at (r, c) already depends only on earlier
pixels. The last 1×1 convolution gives the Bernoulli logit of each pixel
given all pixels before it, so

    log p(x) = Σ_(r, c) log Bernoulli(x_rc; σ(η_rc(x_<rc)))

is exact and takes one pass; sampling takes one pass per pixel. (The plain
PixelCNN has a blind spot: part of the region above and to the right is
never seen. The gated PixelCNN removes it; this one is the simpler model.)
Dilated 3×3 convolutions in the residual blocks widen how far up the image
each logit can look without adding cost; the mask is the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from companion._validation import check_positive_int
from companion.models.autoregressive.base import AutoregressiveImageModel, draw_bernoulli

PIXELCNN_CHANNELS = 64
PIXELCNN_BLOCKS = 10
PIXELCNN_DILATIONS = (1, 2, 4, 8, 1, 1, 2, 4, 8, 1)


class MaskedConv2d(nn.Conv2d):
    """A 'same' convolution with an odd square kernel masked for raster order.

    mask_type ``"A"``: rows above the centre and the pixels left of it;
    ``"B"``: the same plus the centre. Single-channel images only, so there
    is no masking between colour channels.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str,
        dilation: int = 1,
    ):  # fmt: skip
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type={mask_type!r} must be 'A' (first layer) or 'B'.")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size={kernel_size} must be odd, e.g. 7 or 3.")
        padding = dilation * (kernel_size // 2)
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation)
        centre = kernel_size // 2
        mask = torch.ones(1, 1, kernel_size, kernel_size)
        mask[..., centre, centre + (mask_type == "B") :] = 0  # the centre row, right part
        mask[..., centre + 1 :, :] = 0  # every row below
        self.mask_type = mask_type
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            x, self.weight * self.mask, self.bias, padding=self.padding, dilation=self.dilation
        )


class ResidualBlock(nn.Module):
    """ReLU, 1×1 (c → c/2), ReLU, masked 3×3 type B (c/2 → c/2), ReLU, 1×1 (c/2 → c), plus x.

    A dilated 3×3 reaches ``dilation`` pixels away at the same cost.
    """

    def __init__(self, channels: int, dilation: int = 1):
        super().__init__()
        half = max(1, channels // 2)
        self.net = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, half, 1),
            nn.ReLU(), MaskedConv2d(half, half, 3, "B", dilation),
            nn.ReLU(), nn.Conv2d(half, channels, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class PixelCNN(AutoregressiveImageModel):
    """An autoregressive model of binary (1, H, W) images with masked convolutions.

    Parameters
    ----------
    channels : int
        Width of the residual stream.
    n_blocks : int
        Residual blocks after the 7×7 type-A layer.
    dilations : sequence of int, optional
        Dilation of each block's 3×3 convolution (``n_blocks`` values; all 1
        by default). Growing dilations let the last layer see far more rows
        above it at the same cost (a 7×7 then five plain 3×3 layers see 8
        rows up; dilations 1, 2, 4, 8, 1 see 19).
    image_shape : (int, int)
        (H, W); inputs may be (N, 1, H, W), (N, H, W) or rows (N, H·W).
        :meth:`forward` gives logits (N, 1, H, W).
    """

    def __init__(
        self,
        channels: int = PIXELCNN_CHANNELS,
        n_blocks: int = PIXELCNN_BLOCKS,
        *,
        dilations: Sequence[int] | None = None,
        image_shape: tuple[int, int] = (28, 28),
    ):
        super().__init__()
        self.channels = check_positive_int(channels, name="channels")
        self.n_blocks = check_positive_int(n_blocks, name="n_blocks", minimum=0)
        dilations = (1,) * n_blocks if dilations is None else tuple(dilations)
        if len(dilations) != n_blocks:
            raise ValueError(
                f"dilations={dilations} has {len(dilations)} values for n_blocks={n_blocks}; "
                "give one per block."
            )
        self.dilations = tuple(check_positive_int(d, name="dilation") for d in dilations)
        self._record(torch.tensor(self.dilations or (0,)))
        self._set_image_shape(image_shape)
        self.net = nn.Sequential(
            MaskedConv2d(1, channels, 7, "A"),                       # (c, H, W)
            *(ResidualBlock(channels, d) for d in self.dilations),   # (c, H, W)
            nn.ReLU(), nn.Conv2d(channels, channels, 1),
            nn.ReLU(), nn.Conv2d(channels, 1, 1),                    # (1, H, W) logits
        )  # fmt: skip
        # Channels-last weights and inputs run the convolutions about 1.3x faster on
        # CPU (oneDNN); values are the same, and .to(device) keeps the layout.
        self.to(memory_format=torch.channels_last)

    def _logits(self, rows: torch.Tensor) -> torch.Tensor:
        """Logits of p(x_rc = 1 | pixels before (r, c)), (N, 1, h, W), for rows (N, h·W)
        holding h whole image rows; the network runs in the channels-last layout."""
        images = rows.reshape(rows.shape[0], 1, -1, self.image_shape[1])
        return self.net(images.contiguous(memory_format=torch.channels_last))

    def _complete(
        self, rows: torch.Tensor, n_rows: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Draw image rows ``n_rows`` … H-1 of ``rows`` (N, H·W) in place, pixel by pixel.

        Logits of row r depend on rows ≤ r only, so each pass runs on the
        rows drawn so far (about half the cost of whole images).
        """
        H, W = self.image_shape
        for r in range(n_rows, H):
            for c in range(W):
                logits = self._logits(rows[:, : (r + 1) * W])[:, 0, r, c]  # (N,)
                rows[:, r * W + c] = draw_bernoulli(logits, generator)
        return rows


def deepen(model: PixelCNN, dilations: Sequence[int]) -> PixelCNN:
    """A copy of ``model`` with ``len(dilations)`` more residual blocks and the same function.

    The new blocks (one per dilation) come after the old ones, and each
    starts with its last 1×1 convolution at zero, so it adds nothing to the
    residual stream until training moves it: capacity is added without
    losing what the smaller model learnt (a function-preserving step, as in
    Net2Net). The copy is on ``model``'s device and dtype.
    """
    dilations = tuple(dilations)
    ref = model.net[0].weight
    deeper = PixelCNN(
        model.channels, model.n_blocks + len(dilations),
        dilations=model.dilations + dilations, image_shape=model.image_shape,
    ).to(device=ref.device, dtype=ref.dtype)  # fmt: skip
    old, new = list(model.net), list(deeper.net)
    kept = old[: model.n_blocks + 1]  # the type-A layer and the old blocks
    head = old[model.n_blocks + 1 :]  # ReLU, 1x1, ReLU, 1x1
    for source, target in zip(
        kept + head, new[: len(kept)] + new[deeper.n_blocks + 1 :], strict=True
    ):
        target.load_state_dict(source.state_dict())
    with torch.no_grad():
        for block in new[model.n_blocks + 1 : deeper.n_blocks + 1]:
            block.net[-1].weight.zero_()
            block.net[-1].bias.zero_()
    return deeper.train(model.training)
