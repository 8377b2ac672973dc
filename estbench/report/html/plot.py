"""matplotlib helpers shared by the sections: figures made without pyplot (no global
state, the Agg canvas), one palette, and the few axis conventions every figure follows."""

from __future__ import annotations

import numpy as np

# a colour-blind-safe cycle (Okabe-Ito), then matplotlib's tab20 for more lines
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def new_figure(width: float = 6.4, height: float = 4.0, nrows: int = 1, ncols: int = 1, **kw):
    """A ``(figure, axes)`` pair on the Agg canvas; ``axes`` is one Axes for 1 x 1 (unless
    ``squeeze_false=True``), else a 2-D array (``squeeze=False``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    grid_wanted = kw.pop("squeeze_false", False)  # a 1 x 1 grid as a 2-D array too
    if nrows == 1 and ncols == 1 and not grid_wanted:
        return fig, fig.add_subplot(1, 1, 1)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def color(i: int) -> str:
    """The i-th colour of the palette (tab20 past its end)."""
    if i < len(PALETTE):
        return PALETTE[i]
    from matplotlib import colormaps

    r, g, b, _ = colormaps["tab20"]((i - len(PALETTE)) % 20)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    """(rows, cols) of a small-multiples grid for ``n`` panels."""
    cols = max(1, min(n, max_cols))
    return (n + cols - 1) // cols, cols


def spans_orders(values: np.ndarray, orders: float = 2.0) -> bool:
    """Whether positive finite ``values`` span more than ``orders`` orders of magnitude
    (a histogram then reads better on a log axis)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2 or np.any(v <= 0):
        return False
    return float(np.log10(v.max()) - np.log10(v.min())) > orders


def hide_unused(axes, used: int) -> None:
    """Turn off the panels of a grid past the first ``used``."""
    for ax in np.asarray(axes).ravel()[used:]:
        ax.set_visible(False)


def short(name: str, width: int = 28) -> str:
    """A label cut to ``width`` characters for tick labels and legends."""
    return name if len(name) <= width else name[: width - 1] + "\u2026"
