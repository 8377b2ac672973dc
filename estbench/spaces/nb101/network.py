"""The NB101 standalone network in torch, as the official model_builder builds it.

Stem: 3x3 conv-BN-ReLU to ``c`` channels (128). Then ``stacks`` (3) stacks of ``n`` (3)
cells; every stack after the first starts with a 2x2 stride-2 max-pool ('same' padding)
and doubles the channels. Global average pool, then one dense layer (with bias).

Inside a cell (a pruned spec: vertex 0 the input, the last vertex the output):
- the output channels are split among the vertices feeding the output
  (``vertex_channels``, the official compute_vertex_channels: equal shares, the
  remainder one extra channel each to the first ones; other vertices take the max of
  their successors);
- an edge from the input is a 1x1 conv-BN-ReLU projection to the vertex's channels; an
  edge between interior vertices truncates the source to the target's channels (they
  differ by at most one);
- an interior vertex sums its inputs and applies its op (conv3x3 / conv1x1 = conv-BN-ReLU,
  'same' padding, no bias; maxpool3x3 stride 1 'same');
- the output concatenates the vertices feeding it, plus a projection of the input when
  the input feeds it directly (only the projection when nothing else does).

BN: eps 1e-5, TF momentum 0.997 (torch momentum 0.003); batch statistics in train mode,
moving averages in eval mode (the official ``is_training``). Parameters (conv kernels, BN
gamma/beta, dense kernel and bias) match the benchmark's ``trainable_parameters``.

Weights use torch's default init, like the NB201 network (the official TF code draws
variance-scaling truncated-normal kernels and a Glorot dense layer; not emulated).
``bn=False`` puts an Identity in place of every BatchNorm: BN draws no random numbers, so
both variants get identical conv/linear weights under one seed and the same names."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from estbench.errors import BadInput

CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
KNOWN_OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
CONV_KERNEL = {CONV3X3: 3, CONV1X1: 1}
BN_MOMENTUM = 1.0 - 0.997  # TF's decay 0.997 as torch's momentum
BN_EPSILON = 1e-5

Matrix = tuple[tuple[int, ...], ...]


def check_cell(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> Matrix:
    """The matrix as a tuple of 0/1 int rows; BadInput unless it is a pruned NB101 cell:
    square, upper triangular, ops input .. output of the same length, known ops, every
    interior vertex on an input-to-output path, and a path at all."""
    m = tuple(tuple(int(x) for x in row) for row in matrix)
    n = len(m)
    if n < 2 or any(len(row) != n for row in m):
        raise BadInput(f"NB101 cell matrix must be square with >= 2 vertices, got rows of {[len(r) for r in m]}")
    if len(ops) != n:
        raise BadInput(f"NB101 cell has {n} vertices but {len(ops)} ops")
    if ops[0] != "input" or ops[-1] != "output":
        raise BadInput(f"NB101 cell ops must start with 'input' and end with 'output', got {list(ops)}")
    bad = [op for op in ops[1:-1] if op not in KNOWN_OPS]
    if bad:
        raise BadInput(f"unknown NB101 op {bad[0]!r}; known: {', '.join(KNOWN_OPS)}")
    if any(x not in (0, 1) for row in m for x in row) or any(m[i][j] for i in range(n) for j in range(i + 1)):
        raise BadInput("NB101 cell matrix must be strictly upper triangular with 0/1 entries")
    for v in range(1, n - 1):
        if not any(m[u][v] for u in range(v)) or not any(m[v][w] for w in range(v + 1, n)):
            raise BadInput(f"NB101 cell vertex {v} is not on an input-to-output path (prune the spec first)")
    if n == 2 and not m[0][1]:
        raise BadInput("NB101 cell has no input-to-output path")
    return m


def vertex_channels(c_in: int, c_out: int, matrix: Matrix) -> list[int]:
    """Channels of every vertex (the official compute_vertex_channels)."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[-1] = c_in, c_out
    if n == 2:
        return channels
    to_out = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    share, extra = divmod(c_out, len(to_out))
    for i, v in enumerate(to_out):
        channels[v] = share + (1 if i < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return channels


def batch_norm(c: int, bn: bool = True) -> nn.Module:
    return nn.BatchNorm2d(c, eps=BN_EPSILON, momentum=BN_MOMENTUM) if bn else nn.Identity()


class ConvBnRelu(nn.Sequential):
    """Conv (no bias, 'same' padding, stride 1) + BN + ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, bn: bool = True):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), batch_norm(c_out, bn), nn.ReLU()
        )


def make_op(op: str, c: int, bn: bool = True) -> nn.Module:
    """A vertex op with ``c`` input and output channels."""
    if op == MAXPOOL3X3:
        return nn.MaxPool2d(3, stride=1, padding=1)
    return ConvBnRelu(c, c, CONV_KERNEL[op], bn)


class Cell(nn.Module):
    """One module of a pruned spec, ``c_in`` -> ``c_out`` channels, same resolution.
    ``proj[str(t)]``: the input's projection to vertex t (t = n-1: to the output);
    ``ops[str(t)]``: the op of interior vertex t."""

    def __init__(self, matrix: Sequence[Sequence[int]], ops: Sequence[str], c_in: int, c_out: int, bn: bool = True):
        super().__init__()
        m = check_cell(matrix, ops)
        self.matrix, self.channels = m, vertex_channels(c_in, c_out, m)
        if min(self.channels) < 1:
            raise BadInput(f"NB101 cell of {c_out} channels is too narrow to split among its vertices")
        n = len(m)
        self.proj = nn.ModuleDict()
        self.ops = nn.ModuleDict()
        for t in range(1, n - 1):
            if m[0][t]:
                self.proj[str(t)] = ConvBnRelu(c_in, self.channels[t], 1, bn)
            self.ops[str(t)] = make_op(ops[t], self.channels[t], bn)
        if m[0][n - 1]:
            self.proj[str(n - 1)] = ConvBnRelu(c_in, c_out, 1, bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, ch, n = self.matrix, self.channels, len(self.matrix)
        tensors = [x]
        concat = []
        for t in range(1, n - 1):
            add_in = [tensors[s][:, : ch[t]] for s in range(1, t) if m[s][t]]
            if m[0][t]:
                add_in.append(self.proj[str(t)](x))
            total = add_in[0]
            for y in add_in[1:]:
                total = total + y
            tensors.append(self.ops[str(t)](total))
            if m[t][n - 1]:
                concat.append(tensors[t])
        if not concat:
            return self.proj[str(n - 1)](x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, 1)
        if m[0][n - 1]:
            out = out + self.proj[str(n - 1)](x)
        return out


class Downsample(nn.MaxPool2d):
    """2x2 stride-2 max-pool; ceil_mode gives TF's 'same' padding on odd sizes."""

    def __init__(self):
        super().__init__(2, stride=2, ceil_mode=True)


class Head(nn.Module):
    """Global average pool + dense layer."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.mean((2, 3)))


def stack_layout(c: int, n: int, stacks: int) -> list[tuple[int, int, bool]]:
    """(c_in, c_out, downsample before it) of every cell, in network order."""
    layout = []
    c_prev = c
    for s in range(stacks):
        c_cur = c_prev * 2 if s else c_prev
        for i in range(n):
            layout.append((c_prev, c_cur, s > 0 and i == 0))
            c_prev = c_cur
    return layout


class NB101Network(nn.Module):
    """The standalone network of a pruned spec (``matrix`` rows of 0/1, ``ops`` with
    "input"/"output" at the ends). Defaults are the benchmark's: stem ``c`` 128,
    ``stacks`` 3 of ``n`` 3 cells, 10 classes. ``layers``: cells and downsamplings."""

    def __init__(
        self,
        matrix: Sequence[Sequence[int]],
        ops: Sequence[str],
        c: int = 128,
        n: int = 3,
        num_classes: int = 10,
        stacks: int = 3,
        bn: bool = True,
    ):
        super().__init__()
        if c < 1 or n < 1 or stacks < 1 or num_classes < 1:
            raise BadInput(
                f"NB101 network needs positive c, n, stacks, num_classes (got {c}, {n}, {stacks}, {num_classes})"
            )
        m = check_cell(matrix, ops)
        self.stem = ConvBnRelu(3, c, 3, bn)
        layers: list[nn.Module] = []
        c_last = c
        for c_in, c_out, down in stack_layout(c, n, stacks):
            if down:
                layers.append(Downsample())
            layers.append(Cell(m, ops, c_in, c_out, bn))
            c_last = c_out
        self.layers = nn.Sequential(*layers)
        self.head = Head(c_last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))

    def zs_blocks(self) -> list[nn.Module]:
        """The feature blocks of zero-shot proxies that read per-block outputs (AZ-NAS):
        the stem and every cell; the parameter-free downsampling max-pools are not blocks
        (a cell after one is differentiated through it)."""
        return [self.stem, *(m for m in self.layers if isinstance(m, Cell))]
