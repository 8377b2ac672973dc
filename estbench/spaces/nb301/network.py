"""The NB301 evaluation network in torch: DARTS's ``NetworkCIFAR`` (quark0/darts
``cnn/model.py`` and ``operations.py``), which nasbench301 trains for every architecture
(c=32 initial channels, n=8 cells, 10 classes).

Macro skeleton: stem 3x3 conv to ``3c`` channels + BN; ``n`` cells, reduction cells at
``n // 3`` and ``2 * n // 3`` (channels doubled there; one index when they coincide, as
DARTS's ``i in [n // 3, 2 * n // 3]``); cell k reads the outputs of cells k-2 and k-1
(the stem's for the missing ones); global average pool, linear classifier. The
auxiliary head is not built (nothing here scores with it) and drop path is off.

A cell: ``preprocess0`` (FactorizedReduce when the previous cell was a reduction, else
1x1 ReLU-conv-BN) on ``s0`` and ``preprocess1`` (1x1 ReLU-conv-BN) on ``s1``, both to
``C`` channels; intermediate node j sums its two ops; the output concatenates the 4
intermediate nodes (4C channels). In a reduction cell only the ops reading the cell
inputs (0, 1) have stride 2.

Ops (DARTS ``OPS`` with affine BN, as its evaluation network builds them): max / avg
pool 3x3 padding 1 (avg without the padding in the count) and no BN after them (only
DARTS's search network adds one); skip_connect = Identity, FactorizedReduce at stride
2; sep_conv_k = (ReLU, depthwise k x k, 1x1, BN) twice, the stride on the first;
dil_conv_k = ReLU, depthwise k x k with dilation 2, 1x1, BN. All ReLUs are modules
(``inplace=False``: the zero-shot engine hooks them and reads their inputs after the
call) and the classes keep DARTS's names, so type-name ReLU hooks (relu_logdet's
reference) also see ``ReLUConvBN`` as DARTS's network would; module names follow
DARTS's too (``cells.{k}.preprocess0.op.1.weight``, ``cells.{k}._ops.{i}.op...``), so a
DARTS ``NetworkCIFAR`` state dict without its ``auxiliary_head.*`` keys loads.

Weights use torch's default init (DARTS does the same). ``bn=False`` puts an Identity in
place of every BatchNorm: BN draws no random numbers, so both variants get identical
conv/linear weights under one seed and the same conv/linear names. The input size must
be divisible by 4 (two stride-2 stages; FactorizedReduce needs even sizes)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from estbench.errors import BadInput
from estbench.spaces.nb301 import genotype as gt

STEM_MULTIPLIER = 3


def batch_norm(c: int, bn: bool = True, affine: bool = True) -> nn.Module:
    return nn.BatchNorm2d(c, affine=affine) if bn else nn.Identity()


# The layers of DARTS's parametrised ops, shared with the supernet (``supernet.py``),
# which holds them as plain Sequentials (its keys have no ``.op``) with ``affine`` BNs.
def relu_conv_bn_layers(c_in: int, c_out: int, kernel: int, stride: int, padding: int, bn: bool = True,
                        affine: bool = True) -> list[nn.Module]:  # fmt: skip
    return [
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
        batch_norm(c_out, bn, affine),
    ]


def dil_conv_layers(c: int, kernel: int, stride: int, bn: bool = True, affine: bool = True) -> list[nn.Module]:
    """ReLU, depthwise k x k with dilation 2 (padding keeps the size), 1x1, BN."""
    return [
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, kernel, stride, kernel // 2 * 2, dilation=2, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        batch_norm(c, bn, affine),
    ]


def sep_conv_layers(c: int, kernel: int, stride: int, bn: bool = True, affine: bool = True) -> list[nn.Module]:
    """(ReLU, depthwise k x k, 1x1, BN) twice, the stride on the first."""
    pad = kernel // 2
    return [
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, kernel, stride, pad, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        batch_norm(c, bn, affine),
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, kernel, 1, pad, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        batch_norm(c, bn, affine),
    ]


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, bn: bool = True):
        super().__init__()
        self.op = nn.Sequential(*relu_conv_bn_layers(c_in, c_out, kernel, stride, padding, bn))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    def __init__(self, c: int, kernel: int, stride: int, bn: bool = True):
        super().__init__()
        self.op = nn.Sequential(*dil_conv_layers(c, kernel, stride, bn))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    def __init__(self, c: int, kernel: int, stride: int, bn: bool = True):
        super().__init__()
        self.op = nn.Sequential(*sep_conv_layers(c, kernel, stride, bn))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """ReLU, two 1x1 stride-2 convs (the second shifted by one pixel) to half the output
    channels each, concatenated, BN. DARTS requires an even ``c_out``; an odd one gives
    the second conv the extra channel."""

    def __init__(self, c_in: int, c_out: int, bn: bool = True, affine: bool = True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = batch_norm(c_out, bn, affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], 1))


def make_op(op: str, c: int, stride: int, bn: bool = True) -> nn.Module:
    """DARTS's module of ``op`` on a ``c``-channel edge of stride 1 or 2."""
    if op == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, bn)
    if op == "sep_conv_3x3":
        return SepConv(c, 3, stride, bn)
    if op == "sep_conv_5x5":
        return SepConv(c, 5, stride, bn)
    if op == "dil_conv_3x3":
        return DilConv(c, 3, stride, bn)
    if op == "dil_conv_5x5":
        return DilConv(c, 5, stride, bn)
    raise BadInput(f"unknown NB301 op {op!r}; known: {', '.join(gt.OPS)}")


def op_stride(reduction: bool, inp: int) -> int:
    """Only the ops reading the cell inputs of a reduction cell have stride 2."""
    return 2 if reduction and inp < 2 else 1


def preprocess0(c_pp: int, c: int, reduction_prev: bool, bn: bool = True) -> nn.Module:
    return FactorizedReduce(c_pp, c, bn) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, bn)


class Cell(nn.Module):
    """One DARTS cell of the genotype's normal or reduction cell (8 checked pairs)."""

    def __init__(
        self, cell: gt.Cell, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, bn: bool = True
    ):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = preprocess0(c_pp, c, reduction_prev, bn)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, bn)
        self._indices = tuple(i for _, i in cell)
        self._ops = nn.ModuleList(make_op(op, c, op_stride(reduction, i), bn) for op, i in cell)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for j in range(gt.NODES):
            a, b = 2 * j, 2 * j + 1
            states.append(self._ops[a](states[self._indices[a]]) + self._ops[b](states[self._indices[b]]))
        return torch.cat(states[2:], 1)


def layout(c: int, n: int) -> list[tuple[int, int, int, bool, bool]]:
    """(c_pp, c_p, C, reduction, reduction_prev) of every cell, DARTS's channel rule."""
    reductions = {n // 3, 2 * n // 3}
    out = []
    c_pp = c_p = STEM_MULTIPLIER * c
    c_cur, reduction_prev = c, False
    for k in range(n):
        reduction = k in reductions
        if reduction:
            c_cur *= 2
        out.append((c_pp, c_p, c_cur, reduction, reduction_prev))
        c_pp, c_p, reduction_prev = c_p, gt.NODES * c_cur, reduction
    return out


def cells_of(genotype: Any) -> tuple[gt.Cell, gt.Cell]:
    """The checked (normal, reduce) cells of a ``Genotype`` (BadInput otherwise)."""
    if not (hasattr(genotype, "normal") and hasattr(genotype, "reduce")):
        raise BadInput(f"an NB301 architecture is a Genotype, got {type(genotype).__name__}")
    return gt.make_cell(genotype.normal, "normal"), gt.make_cell(genotype.reduce, "reduce")


class NB301Network(nn.Module):
    """The DARTS evaluation network of ``genotype``; ``forward(x)`` -> logits."""

    def __init__(self, genotype: Any, c: int = 32, n: int = 8, num_classes: int = 10, bn: bool = True):
        super().__init__()
        if c < 1 or n < 1 or num_classes < 1:
            raise BadInput(f"NB301 network needs positive c, n, num_classes (got {c}, {n}, {num_classes})")
        normal, reduce = cells_of(genotype)
        c_stem = STEM_MULTIPLIER * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False), batch_norm(c_stem, bn))
        self.cells = nn.ModuleList(
            Cell(reduce if red else normal, c_pp, c_p, c_cur, red, red_prev, bn)
            for c_pp, c_p, c_cur, red, red_prev in layout(c, n)
        )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(gt.NODES * layout(c, n)[-1][2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))
