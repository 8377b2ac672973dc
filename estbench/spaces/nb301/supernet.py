"""The weight-sharing supernet of NB301 (the DARTS space), as the paper trains it: the
DARTS search network (quark0/darts ``cnn/model_search.py``: ``Network``, ``Cell``,
``MixedOp``; aw_nas's ``SuperNet`` with the ``nb301`` search space, the paper's code)
driven by one discrete ``genotype.Genotype`` per forward.

Weight sharing ("operation on edge", the paper's Table A1: 14 shared positions): every
cell holds one module per (edge, op) for all 14 edges and the 7 ops, like a DARTS
``MixedOp`` per edge. Edge ``e = EDGE_START[j] + i`` joins input ``i`` (0, 1: the cell
inputs; 2 + k: intermediate node k) to intermediate node ``j``: node 0 has edges 0, 1;
node 1 edges 2..4; node 2 edges 5..8; node 3 edges 9..13 (NB301's ConfigSpace
numbering, ``genotype.EDGE_START``). A genotype's pair (op, i) of node j runs module
``edges[e][op]``; two genotypes with the same (op, input) at a node share its weights,
whichever other pairs they have. ``forward(x, genotype)`` computes only the chosen
pairs, so unused modules get no gradient (every intermediate node is concatenated into
the cell output and node 0 always reads both cell inputs, so nothing chosen is dead).

Ops are DARTS's ``operations.py``: sep_conv (ReLU-dwconv-1x1-BN twice), dil_conv
(ReLU-dilated dwconv-1x1-BN, dilation 2), skip_connect (identity; FactorizedReduce on
the stride-2 edges of a reduction cell), 3x3 max / avg pool (padding 1, avg without
the padding). Edges from the cell inputs of a reduction cell have stride 2.

Pools: DARTS's search network puts a BN (affine=False) after each pool, because there
the pool's output is mixed with the other ops' under softmax weights and needs a
comparable scale. Here no op is mixed (a discrete path), the paper's aw_nas supernet has
no BN after its pools, and NB301's evaluation network (DARTS ``model.py``) has none
either, so none is added: a pool has no parameters and no state.

Macro skeleton (DARTS ``Network``; ``c`` initial channels, ``n`` cells; the paper's
aw_nas run: c=16, n=8): stem 3x3 conv to ``3c`` + BN (affine, as DARTS and aw_nas);
reduction cells at ``n // 3`` and ``2 * n // 3`` (channels doubled there; the same index
once when n < 3), normal cells elsewhere; cell k reads the outputs of cells k-2 and k-1
(the stem's for the missing ones) through its preprocessing: 1x1 ReLU-conv-BN, or
FactorizedReduce for c_{k-2} after a reduction cell; output: the concatenation of the 4
intermediate nodes (4C channels); then global average pool, dropout (the paper's 0.1),
linear classifier. Two reductions: the input size must be divisible by 4 (8x8 works).

BN: torch defaults (eps 1e-5, momentum 0.1). Cell BNs (preprocessing and ops) are
``affine=bn_affine`` (DARTS search and aw_nas: off; estbench's default off, the paper's
suggestion 6); the stem BN is affine.

State-dict keys: ``stem.0.weight`` (conv) and ``stem.1.*`` (BN); per cell
``cells.{k}.pre0.*`` / ``cells.{k}.pre1.*`` (ReLU-conv-BN: ``.1.weight`` conv, ``.2.*``
BN; FactorizedReduce: ``.conv_1.weight``, ``.conv_2.weight``, ``.bn.*``);
``cells.{k}.edges.{e}.{op}.*`` with ``op`` the NB301 op name (only the parametrised ones
have keys: sep_conv_*: ``.1``/``.2`` dw/1x1 conv, ``.3`` BN, ``.5``/``.6``, ``.7``;
dil_conv_*: ``.1``, ``.2``, ``.3``; skip_connect on a stride-2 edge: FactorizedReduce's);
``classifier.weight`` / ``classifier.bias``."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from estbench.errors import BadInput
from estbench.spaces.cell.supernet import AvgPool3x3
from estbench.spaces.nb301 import genotype as gt
from estbench.spaces.nb301.network import FactorizedReduce, dil_conv_layers, relu_conv_bn_layers, sep_conv_layers

STEM_MULTIPLIER = 3
N_EDGES = gt.N_EDGES
PARAM_OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")  # skip_connect too at stride 2
# node -> its two (edge, op, input)
Plan = tuple[tuple[tuple[int, str, int], tuple[int, str, int]], ...]


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, affine: bool):
        super().__init__(*relu_conv_bn_layers(c_in, c_out, 1, 1, 0, affine=affine))


class SepConv(nn.Sequential):
    """DARTS's SepConv (``network.sep_conv_layers``)."""

    def __init__(self, c: int, kernel: int, stride: int, affine: bool):
        super().__init__(*sep_conv_layers(c, kernel, stride, affine=affine))


class DilConv(nn.Sequential):
    """DARTS's DilConv (``network.dil_conv_layers``)."""

    def __init__(self, c: int, kernel: int, stride: int, affine: bool):
        super().__init__(*dil_conv_layers(c, kernel, stride, affine=affine))


def make_op(op: str, c: int, stride: int, affine: bool) -> nn.Module:
    """The search-network module of ``op`` on a ``c``-channel edge of stride 1 or 2."""
    if op == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if op == "avg_pool_3x3":
        return AvgPool3x3() if stride == 1 else nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine=affine)
    kind, kernel = op.rsplit("_", 1)[0], int(op[-1])
    return SepConv(c, kernel, stride, affine) if kind == "sep_conv" else DilConv(c, kernel, stride, affine)


def edge_of(node: int, inp: int) -> int:
    """The edge number of (intermediate node ``node``, input ``inp``)."""
    return gt.EDGE_START[node] + inp


def cell_plan(cell: Any, name: str = "normal") -> Plan:
    """The checked plan of one cell's 8 (op, input) pairs (BadInput otherwise)."""
    pairs = gt.make_cell(cell, name)
    return tuple(
        tuple((edge_of(j, i), op, i) for op, i in pairs[2 * j : 2 * j + 2])  # type: ignore[misc]
        for j in range(gt.NODES)
    )


def genotype_plans(arch: Any) -> tuple[Plan, Plan]:
    """(normal plan, reduction plan) of a ``Genotype`` or a (normal, reduce) pair."""
    if hasattr(arch, "normal") and hasattr(arch, "reduce"):
        normal, reduce = arch.normal, arch.reduce
    else:
        try:
            normal, reduce = arch
        except (TypeError, ValueError):
            raise BadInput(
                f"an NB301 supernet arch is a Genotype or (normal, reduce) cells, got {type(arch).__name__}"
            ) from None
    return cell_plan(normal, "normal"), cell_plan(reduce, "reduce")


def layout(n: int) -> list[tuple[bool, bool]]:
    """(reduction, reduction_prev) of every cell: reductions at n//3 and 2n//3 (DARTS)."""
    reductions = {n // 3, 2 * n // 3}
    return [(k in reductions, k - 1 in reductions) for k in range(n)]


class SuperCell(nn.Module):
    """One cell position: the two preprocessings and the (edge, op) modules of 14 edges."""

    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, affine: bool):
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_pp, c, affine=affine) if reduction_prev else ReLUConvBN(c_pp, c, affine)
        self.pre1 = ReLUConvBN(c_p, c, affine)
        self.edges = nn.ModuleList()
        for j in range(gt.NODES):
            for i in range(2 + j):
                stride = 2 if reduction and i < 2 else 1
                self.edges.append(nn.ModuleDict({op: make_op(op, c, stride, affine) for op in gt.OPS}))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, plan: Plan) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for (e0, op0, i0), (e1, op1, i1) in plan:
            states.append(self.edges[e0][op0](states[i0]) + self.edges[e1][op1](states[i1]))
        return torch.cat(states[2:], 1)


class NB301Supernet(nn.Module):
    """The DARTS search network with discrete paths; ``forward(x, genotype)`` computes
    that one architecture."""

    def __init__(self, c: int = 16, n: int = 8, num_classes: int = 10, bn_affine: bool = False, dropout: float = 0.1):
        super().__init__()
        if c < 1 or n < 1 or num_classes < 1:
            raise BadInput(f"NB301 supernet needs positive c, n, num_classes (got {c}, {n}, {num_classes})")
        self.c, self.n, self.num_classes, self.bn_affine = c, n, num_classes, bn_affine
        c_stem = STEM_MULTIPLIER * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        self.cells = nn.ModuleList()
        c_pp, c_p, c_cur = c_stem, c_stem, c
        for reduction, reduction_prev in layout(n):
            if reduction:
                c_cur *= 2
            self.cells.append(SuperCell(c_pp, c_p, c_cur, reduction, reduction_prev, bn_affine))
            c_pp, c_p = c_p, gt.NODES * c_cur
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        # plans are rebuilt per call (microseconds): training draws a new genotype per step
        # out of ~1e18, so a cache would only grow
        normal, reduce = genotype_plans(arch)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal)
        out = self.global_pooling(s1).flatten(1)
        return self.classifier(self.dropout(out))

    def used_parameters(self, arch: Any) -> set[str]:
        """The names of the parameters a forward of ``arch`` uses (tests, diagnostics)."""
        plans = dict(zip((False, True), genotype_plans(arch)))
        prefixes = []
        for k, cell in enumerate(self.cells):
            prefixes += [f"cells.{k}.pre0.", f"cells.{k}.pre1."]
            prefixes += [f"cells.{k}.edges.{e}.{op}." for node in plans[cell.reduction] for e, op, _ in node]
        names = [k for k, _ in self.named_parameters()]
        return {k for k in names if not k.startswith("cells.") or k.startswith(tuple(prefixes))}


def supernet_settings(weights: Mapping[str, Any]) -> dict[str, Any]:
    """c, n, num_classes and bn_affine of the ``NB301Supernet`` that owns ``weights``;
    KeyError / ValueError when they are not such weights."""
    stem = int(weights["stem.0.weight"].shape[0])
    if stem % STEM_MULTIPLIER:
        raise ValueError(f"a stem of {stem} channels is not {STEM_MULTIPLIER} x c")
    if "cells.0.edges.0.sep_conv_3x3.1.weight" not in weights:  # not an NB301 supernet's weights
        raise KeyError("cells.0.edges.0.sep_conv_3x3.1.weight")
    cells = {int(k.split(".")[1]) for k in weights if k.startswith("cells.")}
    if cells != set(range(len(cells))):
        raise ValueError(f"cell numbers {sorted(cells)} are not 0..{len(cells) - 1}")
    return {
        "c": stem // STEM_MULTIPLIER,
        "n": len(cells),
        "num_classes": int(weights["classifier.weight"].shape[0]),
        "bn_affine": "cells.0.pre1.2.weight" in weights,
    }


def supernet_layers(supernet: NB301Supernet) -> dict[str, list[str]]:
    """Layer name -> its parameter names in network order (the gradient-similarity
    units): ``stem``; one layer per cell, cells numbered over the network and stages
    opened by the reduction cells, as on NB201 (``S{stage}C{k}``, a reduction cell
    ``S{stage}R{k}``; n=8: S1C0, S1C1, S2R2, S2C3, S2C4, S3R5, S3C6, S3C7); ``classifier``."""
    names, stage = [], 1
    for k, cell in enumerate(supernet.cells):
        stage += cell.reduction
        names.append(f"S{stage}{'R' if cell.reduction else 'C'}{k}")
    groups: dict[str, list[str]] = {}
    for name, _ in supernet.named_parameters():
        top, _, rest = name.partition(".")
        groups.setdefault(names[int(rest.split(".")[0])] if top == "cells" else top, []).append(name)
    return groups
