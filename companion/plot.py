"""Figures the chapters reuse: image grids, loss curves, 2-D embeddings.

Every function builds a new :class:`matplotlib.figure.Figure` and returns it;
nothing touches pyplot's global state, so figures never leak between cells.
A notebook displays a returned figure by ending a cell with it: the figures
render themselves as PNG (``_repr_png_``), with or without ``%matplotlib inline``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


class NotebookFigure(Figure):
    """A figure that Jupyter shows as a PNG without pyplot's inline backend."""

    def _repr_png_(self) -> bytes:
        FigureCanvasAgg(self)
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def image_grid(
    images,
    *,
    ncols: int = 10,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    image_shape: tuple[int, int] | None = None,
    cmap: str = "gray_r",
    size: float = 1.0,
    suptitle: str | None = None,
) -> Figure:
    """Show images in a grid.

    Parameters
    ----------
    images : array or tensor, shape (n, H, W), (n, 1, H, W) or (n, H*W)
        Flat rows are reshaped to ``image_shape`` (default: square).
    ncols : int
        Images per row.
    titles : sequence of str, optional
        One title per image.
    row_labels : sequence of str, optional
        One label per row, written to the left of it.
    size : float
        Inches per image.
    """
    array = _to_numpy(images).astype(np.float32)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2:
        side = int(round(np.sqrt(array.shape[1])))
        shape = image_shape or (side, side)
        if shape[0] * shape[1] != array.shape[1]:
            raise ValueError(
                f"cannot show rows of {array.shape[1]} values as images; pass image_shape=(H, W)."
            )
        array = array.reshape(-1, *shape)
    if array.ndim != 3:
        raise ValueError(
            f"images must have shape (n, H, W), (n, 1, H, W) or (n, H*W), got {array.shape}."
        )
    n = array.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} images; pass one title per image.")
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    if row_labels is not None and len(row_labels) != nrows:
        raise ValueError(f"got {len(row_labels)} row labels for {nrows} rows; pass one per row.")
    extra = 0.25 if titles is not None else 0.0
    fig = NotebookFigure(figsize=(size * ncols, (size + extra) * nrows + (0.4 if suptitle else 0)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(array[i], cmap=cmap, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    for row, label in enumerate(row_labels or ()):
        axes[row, 0].text(-0.1, 0.5, label, transform=axes[row, 0].transAxes, ha="right",
                          va="center", fontsize=9)  # fmt: skip
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def loss_curves(
    history: Mapping[str, Sequence[float]],
    *,
    keys: Sequence[str] | None = None,
    logy: bool = False,
    title: str | None = None,
) -> Figure:
    """Plot a trainer history: one line per key, validation dashed beside training.

    ``keys`` defaults to every entry except ``seconds`` and the ``val_`` ones,
    which are drawn with their training twin.
    """
    keys = (
        list(keys)
        if keys is not None
        else [k for k in history if k != "seconds" and not k.startswith("val_")]
    )
    missing = [k for k in keys if k not in history]
    if missing:
        raise KeyError(f"history has no {missing}; it has {sorted(history)}.")
    fig = NotebookFigure(figsize=(6, 3.5))
    ax = fig.subplots()
    for key in keys:
        epochs = np.arange(1, len(history[key]) + 1)
        (line,) = ax.plot(epochs, history[key], label=key)
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "--", color=line.get_color(), label=f"val_{key}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("value")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def embedding(
    points,
    labels=None,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    size: float = 5.0,
    s: float = 4.0,
) -> Figure:
    """Scatter 2-D codes, coloured by integer class ``labels`` or by a continuous value.

    points : (n, 2); labels : (n,) ints (legend with ``class_names``) or floats (colour bar).
    """
    xy = _to_numpy(points)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {xy.shape}; project to 2-D first.")
    fig = NotebookFigure(figsize=(size + (1.6 if labels is not None else 0), size))
    ax = fig.subplots()
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=s, alpha=0.7)
    else:
        values = _to_numpy(labels)
        if values.shape[0] != xy.shape[0]:
            raise ValueError(f"got {values.shape[0]} labels for {xy.shape[0]} points.")
        if np.issubdtype(values.dtype, np.integer):
            palette = matplotlib.colormaps["tab10" if values.max() < 10 else "tab20"]
            for c in np.unique(values):
                mask = values == c
                name = class_names[c] if class_names is not None else str(c)
                color = palette(int(c) % palette.N)
                ax.scatter(xy[mask, 0], xy[mask, 1], s=s, alpha=0.7, label=name, color=color)
            ax.legend(
                markerscale=3, frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5)
            )
        else:
            scatter = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=s, cmap="viridis")
            fig.colorbar(scatter, ax=ax)
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


_GLUED: dict[str, object] = {}  # name -> value, for show_glued in the Jupyter edition


def glue(name: str, value) -> None:
    """Hand ``value`` to the book's prose under ``name``, without showing it.

    The page's markdown then quotes the reader's own result with
    ``{glue:text}`name:.2f``` instead of a number typed in by hand. This writes
    the display bundle of MyST-NB's ``glue(name, value, display=False)``, so the
    book build reads it, while a notebook run outside the book (Colab, Jupyter)
    needs no MyST-NB and shows nothing extra: print the value next to it.
    A NumPy scalar or a one-element tensor is glued as the Python number it holds.
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display

    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue name {name!r} must be an identifier such as 'cae_ratio'.")
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        # a plain number, so that {glue:text}`name:.3f` formats it ("np.float64(0.5)" won't)
        value = value.item()
    _GLUED[name] = value
    bundle, metadata = format_display_data(value)
    prefix = "application/papermill.record/"
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    display({prefix + kind: data for kind, data in bundle.items()}, raw=True, metadata=metadata)


def show_glued(*specs: str) -> None:
    """Print the values that :func:`glue` handed to the prose, formatted as the prose does.

    Each spec is ``"name"`` or ``"name:format"`` as in ``{glue:text}`name:.2f```. The
    Jupyter edition of the book (Colab, Binder) calls it below each paragraph that quotes
    the reader's results, because plain Markdown cannot read them.
    """
    for spec in specs:
        name, _, fmt = spec.partition(":")
        if name not in _GLUED:
            print(f"{name}: not computed yet; run the cells above first.")
            continue
        value = _GLUED[name]
        try:
            shown = format(value, fmt)
        except (TypeError, ValueError):
            shown = str(value)
        print(f"{name} = {shown}")
