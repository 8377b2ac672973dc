"""Cheap structural facts of NB101 networks (params, fvcore FLOPs, ReLU-module count).

Costs are additive over the network's modules: stem + downsamplings + head + per cell
the input projections and the vertex ops. Each such component is measured once on a
real torch module (its parameters, fvcore FLOPs at its resolution, its ReLU modules) and
cached per (kind, channels, resolution), so scoring an architecture builds nothing
after the first few (tens of microseconds each). Adds, truncations and concatenations are free for fvcore; the
tests check the sums against the full network."""

from __future__ import annotations

from functools import cache
from typing import Sequence

from torch import nn

from estbench.errors import BadInput
from estbench.spaces.base import NetShape
from estbench.spaces.cell.cost import count_params, count_relus, fvcore_flops
from estbench.spaces.nb101.network import (
    CONV_KERNEL,
    MAXPOOL3X3,
    ConvBnRelu,
    Downsample,
    Head,
    Matrix,
    check_cell,
    stack_layout,
    vertex_channels,
)

DEFAULT_SHAPE = NetShape(c=128, n=3, num_classes=10, resolution=32)
WHATS = ("params", "flops", "relu")


@cache
def _component(what: str, kind: str, c_in: int, c_out: int, res: int) -> int:
    """The cost of one module: ``kind`` "conv1"/"conv3" (conv-BN-ReLU c_in -> c_out),
    "maxpool3", "down" (the stack's max-pool) or "head" (pool + dense to c_out classes),
    on a c_in x res x res input."""
    module: nn.Module
    if kind == "head":
        module = Head(c_in, c_out)
    elif kind == "down":
        module = Downsample()
    elif kind == "maxpool3":
        module = nn.MaxPool2d(3, stride=1, padding=1)
    else:
        module = ConvBnRelu(c_in, c_out, int(kind[-1]))
    if what == "params":
        return count_params(module)
    if what == "relu":
        return count_relus(module)
    return fvcore_flops(module, (1, c_in, res, res))


def _vertex_kind(op: str) -> str:
    return "maxpool3" if op == MAXPOOL3X3 else f"conv{CONV_KERNEL[op]}"


def _cell_cost(what: str, matrix: Matrix, ops: tuple[str, ...], c_in: int, c_out: int, res: int) -> int:
    ch = vertex_channels(c_in, c_out, matrix)
    n = len(matrix)
    total = 0
    for t in range(1, n - 1):
        if matrix[0][t]:
            total += _component(what, "conv1", c_in, ch[t], res)
        total += _component(what, _vertex_kind(ops[t]), ch[t], ch[t], res)
    if matrix[0][n - 1]:
        total += _component(what, "conv1", c_in, c_out, res)
    return total


def structural(
    matrix: Sequence[Sequence[int]],
    ops: Sequence[str],
    what: str,
    live_only: bool = False,
    shape: NetShape = DEFAULT_SHAPE,
    stacks: int = 3,
) -> int:
    """Params, fvcore FLOPs (multiply-accumulates for one image, eval mode) or the number
    of ReLU modules of ``NB101Network(matrix, ops, shape.c, shape.n, shape.num_classes,
    stacks)`` on ``shape.resolution`` inputs. The spec must be pruned (BadInput
    otherwise): the official network only ever builds the pruned spec, so every vertex
    lies on an input-to-output path and ``live_only`` changes nothing."""
    del live_only  # a pruned spec has nothing off the input-to-output paths
    if what not in WHATS:
        raise BadInput(f"unknown structural measure {what!r}; known: {', '.join(WHATS)}")
    m = check_cell(matrix, ops)
    ops = tuple(ops)
    res = shape.resolution
    total = _component(what, "conv3", 3, shape.c, res)
    c_last = shape.c
    cells: dict[tuple[int, int, int], int] = {}  # the cells of a stack after its first are alike
    for c_in, c_out, down in stack_layout(shape.c, shape.n, stacks):
        if down:
            total += _component(what, "down", c_in, c_in, res)
            res = -(-res // 2)
        key = (c_in, c_out, res)
        if key not in cells:
            cells[key] = _cell_cost(what, m, ops, c_in, c_out, res)
        total += cells[key]
        c_last = c_out
    return total + _component(what, "head", c_last, shape.num_classes, res)
