"""Drawing a space's ``CellGraph`` (``SearchSpace.cell_graphs``) on a matplotlib axes:
the nodes left to right in their order, each edge a curve from its source to its
target, coloured by its op (one colour per op across a figure, from ``op_colors``) and
labelled with a short form of it, as in the cells of the paper's Fig. 6 / A25.

Reading choices: an edge of the zero op (``none``) is not drawn (it carries nothing;
the arch string in the section's table still names it); edges between neighbouring
nodes are straight (their label on the line), longer ones arc, those from even sources
above the line and from odd ones below, higher the more nodes they skip (the label at
the apex), so NB201's six edges never cross a label. Nodes with short labels are
circles, the input and output grey; ops on nodes (NB101) are node colours, named by
the figure's legend; long labels are boxes.
Nothing here imports pyplot."""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np

from estbench.report.html.plot import color
from estbench.spaces.base import CellGraph

ZERO_OPS = ("none", "zero")
PLAIN = "#444444"  # an edge without an op ("")
NODE_R = 0.17  # node radius (circles) or half height (boxes), in node steps

# short edge labels of the ops the known spaces use (NB201, DARTS / NB301)
_SHORT = {
    "skip_connect": "skip",
    "nor_conv_1x1": "1x1",
    "nor_conv_3x3": "3x3",
    "avg_pool_3x3": "avg",
    "max_pool_3x3": "max",
    "identity": "id",
    # NB101: ops on nodes
    "conv3x3-bn-relu": "3x3",
    "conv1x1-bn-relu": "1x1",
    "maxpool3x3": "mp",
    "input": "in",
    "output": "out",
}
_CONV = re.compile(r"^(sep|dil)_conv_(\d)x\2$")


def short_op(op: str) -> str:
    """A label of a few characters for ``op`` (``sep_conv_3x3`` -> ``sep3``)."""
    if op in _SHORT:
        return _SHORT[op]
    m = _CONV.match(op)
    if m:
        return f"{m.group(1)}{m.group(2)}"
    return op if len(op) <= 6 else op[:5] + "\u2026"


def op_colors(ops: Iterable[str]) -> dict[str, str]:
    """One colour per drawn op, in the order given (zero ops and "" get none)."""
    out: dict[str, str] = {}
    for op in ops:
        if op and op not in ZERO_OPS and op not in out:
            out[op] = color(len(out))
    return out


def graph_ops(graphs: Iterable[CellGraph]) -> list[str]:
    """The edge ops of ``graphs`` in order of first appearance."""
    return list(dict.fromkeys(op for g in graphs for _, _, op in g.edges))


def _curve(x0: float, x1: float, src: int, span: int) -> tuple[np.ndarray, float]:
    """The control point of the quadratic curve of an edge (node step 1) and the height
    of its apex."""
    if span <= 1:
        return np.array([(x0 + x1) / 2, 0.0]), 0.0
    apex = (0.3 + 0.3 * (span - 2)) * (1 if src % 2 == 0 else -1)
    return np.array([(x0 + x1) / 2, 2 * apex]), apex


def cell_extent(graph: CellGraph) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) of ``graph`` drawn by ``draw_cell`` at scale 1 with
    its input node at (0, 0): for placing several cells in one axes."""
    lo, hi = -NODE_R, NODE_R
    for j, i, op in graph.edges:
        if op in ZERO_OPS:
            continue
        _, apex = _curve(j, i, j, abs(i - j))
        lo, hi = min(lo, apex - 0.08), max(hi, apex + 0.08)
    half_w = _half_width(graph)
    return -half_w, max(len(graph.nodes) - 1, 0) + half_w, lo, hi


def _half_width(graph: CellGraph) -> float:
    return 0.42 if max((len(short_op(s)) for s in graph.nodes), default=0) > 3 else NODE_R


def draw_cell(
    ax,
    graph: CellGraph,
    colors: dict[str, str] | None = None,
    *,
    at: tuple[float, float] | None = None,
    scale: float = 1.0,
    labels: bool = True,
    fontsize: float = 6.5,
) -> None:
    """Draw ``graph`` on ``ax``. ``colors``: op -> colour (``op_colors`` of every graph
    in the figure, so one op has one colour in every panel); ops missing from it are
    grey. ``labels``: the short op on each edge. Alone (``at`` None) the cell fills
    ``ax`` (limits set, equal aspect, axis off); with ``at`` its input node is drawn at
    that data point, ``scale`` data units between nodes, and ``ax`` is left as it is
    (many cells in one axes draw much faster than one axes each; the axes must have an
    equal aspect for the nodes to be round)."""
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path

    colors = op_colors(graph_ops([graph])) if colors is None else colors
    origin = np.array([0.0, 0.0] if at is None else at, dtype=float)
    n = len(graph.nodes)
    r, half_w = NODE_R * scale, _half_width(graph) * scale
    boxes = half_w > r

    def pt(x: float, y: float) -> np.ndarray:
        return origin + scale * np.array([x, y])

    for j, i, op in graph.edges:
        if op in ZERO_OPS:
            continue
        p0, p1 = pt(j, 0), pt(i, 0)
        ctrl_u, apex = _curve(j, i, j, abs(i - j))
        ctrl = pt(*ctrl_u)
        if apex:  # leave the nodes along the curve's tangents
            a, b = p0 + _unit(ctrl - p0) * r * 1.1, p1 + _unit(ctrl - p1) * r * 1.1
        else:
            a, b = p0 + _unit(p1 - p0) * half_w, p1 + _unit(p0 - p1) * half_w
            ctrl = (a + b) / 2
        c = colors.get(op, PLAIN if op == "" else "#999999")
        path = Path([a, ctrl, b], [Path.MOVETO, Path.CURVE3, Path.CURVE3])
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=7, lw=1.6, color=c, zorder=2))
        if labels and op:
            ax.text(*pt((i + j) / 2, apex), short_op(op), ha="center", va="center", fontsize=fontsize, color=c,
                    zorder=4, bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.9})  # fmt: skip
    for k, label in enumerate(graph.nodes):
        fc = "#dddddd" if k in (0, n - 1) else "white"
        on_node = label in colors and k not in (0, n - 1)
        if on_node:  # an op on the node (NB101): its colour (the legend names it), no text
            fc = _lighten(colors[label], 0.85)
        label = "" if on_node else short_op(label)
        x, y = pt(k, 0)
        if boxes:
            ax.add_patch(FancyBboxPatch((x - half_w, y - r), 2 * half_w, 2 * r, boxstyle="round,pad=0.02",
                                        fc=fc, ec="#222222", lw=0.9, zorder=3))  # fmt: skip
        else:
            ax.add_patch(Circle((x, y), r, fc=fc, ec="#222222", lw=0.9, zorder=3))
        size = fontsize + (0 if boxes else 0.5) - (1.5 if len(label) > 2 and not boxes else 0)
        ax.text(x, y, label, ha="center", va="center", fontsize=size, zorder=5)
    if at is None:
        left, right, lo, hi = cell_extent(graph)
        ax.set_xlim(left - 0.1, right + 0.1)
        ax.set_ylim(lo - 0.1, hi + 0.1)
        ax.set_aspect("equal", adjustable="box")
        ax.set_axis_off()


def _lighten(hex_color: str, keep: float = 0.45) -> str:
    """``hex_color`` mixed with white (``keep`` of the colour)."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(255 - keep * (255 - v)):02x}" for v in (r, g, b))


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(*v))
    return v / n if n else np.array([1.0, 0.0])


def op_legend(fig, colors: dict[str, str], **kw) -> None:
    """A figure legend of the op colours with their short labels."""
    from matplotlib.lines import Line2D

    if not colors:
        return
    handles = [Line2D([], [], color=c, lw=2) for c in colors.values()]
    names = [f"{short_op(op)} = {op}" if short_op(op) != op else op for op in colors]
    fig.legend(handles, names, ncol=min(len(colors), 6), fontsize=8, frameon=False, **kw)
