"""Cheap structural facts of NB301 networks (params, fvcore FLOPs, ReLU-module count).

Costs are additive over the network's modules: stem + per cell its two preprocessings
and its 8 ops + the head (global pool and classifier). Each component is measured once
on a real torch module (its parameters, fvcore FLOPs at its input resolution, its ReLU
modules) and cached per (kind, channels, stride, resolution), so scoring an
architecture builds nothing after the first few (tens of microseconds each). Adds,
slices and concatenations are free for fvcore; the tests check the sums against the
full network.

fvcore counts conv and linear multiply-accumulates, BN (eval) as 2 per element, the
global pool as 1 per input element, and nothing for ReLUs and pools. NASLib's NB301
``flops`` (tensorwatch's torchstat, on its own network whose cell-op BNs are not affine
and whose pools are followed by a BN) counts more: see tests/test_nb301_network.py."""

from __future__ import annotations

from functools import cache
from typing import Any

from torch import nn

from estbench.errors import BadInput
from estbench.spaces.base import NetShape
from estbench.spaces.cell.cost import count_params, count_relus, fvcore_flops
from estbench.spaces.nb301 import genotype as gt
from estbench.spaces.nb301.network import (
    STEM_MULTIPLIER,
    FactorizedReduce,
    ReLUConvBN,
    cells_of,
    layout,
    make_op,
    op_stride,
)

DEFAULT_SHAPE = NetShape(c=32, n=8, num_classes=10, resolution=32)
WHATS = ("params", "flops", "relu")


@cache
def _component(what: str, kind: str, c_in: int, c_out: int, stride: int, res: int) -> int:
    """The cost of one module on a c_in x res x res input: ``kind`` "stem" (3x3 conv to
    c_out + BN), "rcb" (1x1 ReLU-conv-BN c_in -> c_out), "fr" (FactorizedReduce),
    "head" (global pool + linear to c_out classes) or an NB301 op on c_in channels."""
    module: nn.Module
    if kind == "stem":
        module = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
    elif kind == "rcb":
        module = ReLUConvBN(c_in, c_out, 1, 1, 0)
    elif kind == "fr":
        module = FactorizedReduce(c_in, c_out)
    elif kind == "head":
        module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, c_out))
    else:
        module = make_op(kind, c_in, stride)
    if what == "params":
        return count_params(module)
    if what == "relu":
        return count_relus(module)
    return fvcore_flops(module, (1, c_in, res, res))


def _cell_cost(what: str, cell: gt.Cell, c: int, reduction: bool, res: int) -> int:
    """The 8 ops of one cell of C = ``c`` channels whose inputs are res x res."""
    total = 0
    for op, i in cell:
        stride = op_stride(reduction, i)
        total += _component(what, op, c, c, stride, res if i < 2 or not reduction else res // 2)
    return total


def structural(genotype: Any, what: str, live_only: bool = False, shape: NetShape = DEFAULT_SHAPE) -> int:
    """Params, fvcore FLOPs (multiply-accumulates for one image, eval mode) or the number
    of ReLU modules of ``NB301Network(genotype, shape.c, shape.n, shape.num_classes)`` on
    ``shape.resolution`` inputs. Every intermediate node of a DARTS cell is concatenated
    into its output, so every op is live and ``live_only`` changes nothing."""
    del live_only  # no dead ops in a DARTS cell
    if what not in WHATS:
        raise BadInput(f"unknown structural measure {what!r}; known: {', '.join(WHATS)}")
    normal, reduce = cells_of(genotype)
    res = shape.resolution
    total = _component(what, "stem", 3, STEM_MULTIPLIER * shape.c, 1, res)
    res_pp = res  # the resolutions of s0 and s1
    cells: dict[tuple, int] = {}  # the normal cells of a stage after its first are alike
    for c_pp, c_p, c, reduction, reduction_prev in layout(shape.c, shape.n):
        if reduction and res % 2:
            raise BadInput(f"NB301 input size {shape.resolution} does not halve evenly at every reduction cell")
        key = (c_pp, c_p, c, reduction, reduction_prev, res)
        if key not in cells:
            pre0 = _component(what, "fr" if reduction_prev else "rcb", c_pp, c, 1, res_pp)
            pre1 = _component(what, "rcb", c_p, c, 1, res)
            cells[key] = pre0 + pre1 + _cell_cost(what, reduce if reduction else normal, c, reduction, res)
        total += cells[key]
        res_pp, res = res, res // 2 if reduction else res
    return total + _component(what, "head", gt.NODES * c, shape.num_classes, 1, res)
