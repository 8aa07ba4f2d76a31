"""A raster-scan PixelRNN for small binary images: an LSTM reads the pixels one at a time.

PixelRNN (van den Oord et al., 2016) predicts each pixel from all the pixels
before it in raster order with a recurrent network. The paper's Row LSTM and
Diagonal BiLSTM compute a whole row (or diagonal) of states at once with
convolutions; this is the plainer one-dimensional form: one LSTM step per
pixel, so its state is the only memory of everything above. At step t
(pixel (r, c)) the LSTM reads pixels that are already known: the one to the
left, the three in the row above (up-left, up, up-right) and a flag for the
first column. Its state after step t depends on pixels before t only, so

    log p(x) = Σ_t log Bernoulli(x_t; σ(w·h_t + b_t)),

with a bias b_t per position, is exact and normalised. Training scores all
H·W conditionals in one call of the LSTM; sampling runs H·W steps, each one
LSTM cell update, carrying the state rather than recomputing the prefix.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from companion._validation import check_positive_int
from companion.models.autoregressive.base import AutoregressiveImageModel, draw_bernoulli

PIXELRNN_HIDDEN = 128
PIXELRNN_SHAPE = (14, 14)
N_INPUTS = 5  # left, up-left, up, up-right, first-column flag


def halve_images(x: torch.Tensor) -> torch.Tensor:
    """(N, 28·28) or (N, 1, 28, 28) grey images in [0, 1] -> (N, 14·14): means of 2×2 blocks.

    Any even side works: (N, 1, H, W) gives (N, H/2 · W/2). Binarise after
    halving, so each pixel is on with the probability of its block's mean.
    """
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ValueError(
                f"rows of {x.shape[1]} values are not square images; give (N, 1, H, W)."
            )
        x = x.reshape(-1, 1, side, side)
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] % 2 or x.shape[3] % 2:
        raise ValueError(
            f"halve_images needs (N, 1, H, W) images with even H and W, got {tuple(x.shape)}."
        )
    return F.avg_pool2d(x, 2).flatten(1)


class PixelRNN(AutoregressiveImageModel):
    """An autoregressive model of binary (1, H, W) images with an LSTM over the raster scan.

    Parameters
    ----------
    hidden : int
        Width of the LSTM state.
    n_layers : int
        Stacked LSTM layers.
    image_shape : (int, int)
        (H, W); inputs may be (N, 1, H, W), (N, H, W) or rows (N, H·W).
        :meth:`forward` gives logits (N, H·W).
    """

    def __init__(
        self,
        hidden: int = PIXELRNN_HIDDEN,
        n_layers: int = 1,
        *,
        image_shape: tuple[int, int] = PIXELRNN_SHAPE,
    ):
        super().__init__()
        self.hidden = check_positive_int(hidden, name="hidden")
        self.n_layers = check_positive_int(n_layers, name="n_layers")
        self._set_image_shape(image_shape)
        self._record(torch.tensor(self.image_shape))  # the position biases depend on it
        self.lstm = nn.LSTM(N_INPUTS, hidden, n_layers, batch_first=True)
        self.readout = nn.Linear(hidden, 1)
        self.position_logit = nn.Parameter(torch.zeros(self.input_dim))  # b_t

    def _inputs(self, rows: torch.Tensor) -> torch.Tensor:
        """What each step reads, (N, h·W, 5), for rows (N, h·W) holding h whole image rows.

        Left, up-left, up, up-right and a first-column flag; pixels off the
        image (or above the first row given) read as 0.
        """
        W = self.image_shape[1]
        images = rows.reshape(rows.shape[0], 1, -1, W)  # whole rows: the image or its top part
        left = F.pad(images, (1, 0))[..., :W]  # (N, 1, h, W)
        above = F.pad(images, (1, 1, 1, 0))[..., :-1, :]  # (N, 1, h, W + 2): row r-1, padded
        first = torch.zeros_like(images)
        first[..., 0] = 1
        features = [left, above[..., :W], above[..., 1 : W + 1], above[..., 2:], first]
        return torch.cat(features, 1).flatten(2).transpose(1, 2)  # (N, h·W, 5)

    def _logits(self, rows: torch.Tensor) -> torch.Tensor:
        """Logits of p(x_t = 1 | x_<t), (N, H·W), for rows (N, H·W)."""
        states, _ = self.lstm(self._inputs(rows))  # (N, H·W, hidden)
        return self.readout(states).squeeze(-1) + self.position_logit

    def _complete(
        self, rows: torch.Tensor, n_rows: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Draw image rows ``n_rows`` … H-1 of ``rows`` (N, H·W) in place, pixel by pixel.

        The LSTM reads the given prefix in one call, then takes one step per
        pixel still to draw, carrying its state.
        """
        H, W = self.image_shape
        start = n_rows * W
        state = None
        if start > 0:  # the prefix up to step start-1: its state predicts pixel `start`
            _, state = self.lstm(self._inputs(rows)[:, :start])
        for t in range(start, H * W):
            r = t // W  # step t reads rows r - 1 and r only; the window starts a row above
            top = max(r - 1, 0)
            step = self._inputs(rows[:, top * W : (r + 1) * W])[:, t - top * W : t - top * W + 1]
            out, state = self.lstm(step, state)
            logit = self.readout(out[:, 0]).squeeze(-1) + self.position_logit[t]
            rows[:, t] = draw_bernoulli(logit, generator)
        return rows
