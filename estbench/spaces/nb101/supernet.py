"""The weight-sharing supernet of NAS-Bench-1shot1 search space 3, as the paper trains
it (the one-shot model of automl/nasbench-1shot1, ``optimizers/darts/model_search.py``,
driven with discrete architectures as its random-WS search does).

An architecture is the *un-pruned* 7-vertex form of an SS3 configuration: a ``Spec``
(``.matrix``: 7 rows of 0/1, ``.ops``: "input", five of ``spec.OPS``, "output") or a
``(matrix, ops)`` pair of the same. Vertex 0 is the cell input, vertices 1..5 the choice
blocks, vertex 6 the output.

Weight sharing ("operation on node", the larger sharing extent of the paper's
Sec. A.1.1): every cell holds, per choice block, one module per parametrised op
(conv3x3 / conv1x1: conv-BN-ReLU) and one 1x1 conv-BN-ReLU projection of the cell
input, plus one projection of the input to the output. A block uses the same op module
whichever inputs it takes. maxpool3x3 (stride 1, padding 1) has no parameters and, as in
1shot1, no BN after it.

Channels: not the NB101 rule (``network.vertex_channels`` splits the output channels
among the vertices feeding it, so widths depend on the architecture; the paper's intro:
"OSE cannot be easily applied for the whole NB101 search space due to its specific
channel number rule"). As in 1shot1, every choice block of a stack with ``C`` channels
has ``C`` channels whatever the architecture, and a cell outputs ``5C`` channels: the
concatenation of blocks 1..5, a block that does not feed the output contributing zeros
(1shot1 multiplies it by its output weight 0), plus the ``5C``-channel projection of the
input when the input feeds the output. The first cell takes the stem's ``C`` channels,
every later one the ``5C'`` of the cell before it. A block sums its inputs (the
projection ``proj[v]`` of the cell input when vertex 0 is a parent, the outputs of
earlier blocks as they are) and applies its op.

Loose ends: a block off every input->output path (``spec.live_vertices``; in SS3 every
block is reachable from the input, so these are the blocks that reach no output: loose
ends and blocks feeding only loose ends) is not computed. In 1shot1 its output is
computed and multiplied by 0 on the way to the output, so leaving it out is exact in the
forward and in every gradient (its parameters get none instead of zero ones); only the
running BN statistics of its modules, which batch-statistics evaluation never reads,
are not updated. The configuration's NB101 architecture is its pruned spec; the
supernet's function is that of the pruned spec's live blocks, so two configurations
pruning alike compute the same thing.

Macro skeleton (``c`` stem channels, ``stacks`` stacks of ``n`` cells; the paper's
1shot1 run: c=16, 3 x 3 = 9 cells): stem 3x3 conv-BN-ReLU to ``c``; before every stack
but the first a 2x2 stride-2 max-pool ('same' padding: 32 -> 16 -> 8, the NB101 network's
``Downsample``; 1shot1's ``MaxPool2d(2, 2, padding=1)`` gives 17 and 9) and the channels
doubled; after the last cell 1shot1's post-processing ReLU-conv1x1-BN (no affine) from
``5C`` to ``C``, global average pool, dropout (the paper's 0.1), linear classifier.

BN: eps 1e-5, torch momentum 0.1 (1shot1 passes TF's decay 0.997 as torch's momentum;
immaterial under batch statistics, the paper's evaluation). Cell BNs (op modules and
projections) are ``affine=bn_affine`` (1shot1's are affine; estbench's default is off, the
paper's suggestion 6); the stem BN is affine, the post-processing BN never.

State-dict keys: ``stem.*``; ``cells.{i}.proj.{v-1}.*`` and ``cells.{i}.proj_out.*``;
``cells.{i}.ops.{v-1}.{op}.*`` with ``op`` the official op name; ``post.*``;
``classifier.*``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from estbench.errors import BadInput
from estbench.spaces.nb101.network import CONV_KERNEL, Downsample
from estbench.spaces.nb101.spec import INPUT, OPS, OUTPUT, live_vertices

N_BLOCKS = 5  # choice blocks of SS3 (vertices 1..5)
N_VERTICES = N_BLOCKS + 2
PARAM_OPS = tuple(op for op in OPS if op in CONV_KERNEL)  # conv3x3-bn-relu, conv1x1-bn-relu
POOL = "maxpool3x3"
BN_EPSILON = 1e-5


@dataclass(frozen=True)
class Block:
    """What one live choice block computes: ``v`` its vertex, ``proj``: whether it takes
    the projected cell input, ``parents``: the earlier live blocks it sums, ``op``."""

    v: int
    proj: bool
    parents: tuple[int, ...]
    op: str


@dataclass(frozen=True)
class Plan:
    """One cell's forward: the live blocks in order, the blocks concatenated into the
    output (the others are zeros), whether the input's projection is added."""

    blocks: tuple[Block, ...]
    concat: tuple[int, ...]
    out_proj: bool


def arch_parts(arch: Any) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    """(matrix rows as int tuples, ops) of a ``Spec`` or a ``(matrix, ops)`` pair."""
    if hasattr(arch, "matrix") and hasattr(arch, "ops"):
        matrix, ops = arch.matrix, arch.ops
    else:
        try:
            matrix, ops = arch
        except (TypeError, ValueError):
            raise BadInput(
                f"an NB1shot-3 supernet arch is a Spec or (matrix, ops), got {type(arch).__name__}"
            ) from None
    return tuple(tuple(int(x) for x in row) for row in matrix), tuple(ops)


def plan_of(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> Plan:
    """The cell plan of a 7-vertex arch; BadInput when it is malformed or has no
    input->output path."""
    n = len(ops)
    if n != N_VERTICES or len(matrix) != n or any(len(row) != n for row in matrix):
        raise BadInput(f"an NB1shot-3 arch has a {N_VERTICES}x{N_VERTICES} matrix and {N_VERTICES} ops, got {n} ops")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise BadInput(f"NB1shot-3 arch ops must start with {INPUT!r} and end with {OUTPUT!r}, got {list(ops)}")
    bad = [op for op in ops[1:-1] if op not in OPS]
    if bad:
        raise BadInput(f"unknown NB101 op {bad[0]!r}; known: {', '.join(OPS)}")
    if any(matrix[i][j] not in (0, 1) for i in range(n) for j in range(n)) or any(
        matrix[i][j] for i in range(n) for j in range(i + 1)
    ):
        raise BadInput("NB1shot-3 arch matrix must be strictly upper triangular with 0/1 entries")
    live = set(live_vertices(matrix))
    if not live:
        raise BadInput("NB1shot-3 arch has no input-to-output path")
    blocks = tuple(
        Block(v, bool(matrix[0][v]), tuple(u for u in range(1, v) if u in live and matrix[u][v]), ops[v])
        for v in range(1, n - 1)
        if v in live
    )
    concat = tuple(v for v in range(1, n - 1) if v in live and matrix[v][n - 1])
    return Plan(blocks, concat, bool(matrix[0][n - 1]))


def _bn(c: int, affine: bool) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPSILON, affine=affine)


class ConvBnRelu(nn.Sequential):
    """Conv (no bias, 'same' padding) + BN + ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, affine: bool = True):
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), _bn(c_out, affine), nn.ReLU())


class ReluConvBn(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, affine: bool = False):
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), _bn(c_out, affine))


class SuperCell(nn.Module):
    """One cell position: ``c_in`` -> ``5c`` channels at one resolution."""

    def __init__(self, c_in: int, c: int, bn_affine: bool):
        super().__init__()
        self.c_in, self.c = c_in, c
        self.proj = nn.ModuleList(ConvBnRelu(c_in, c, 1, bn_affine) for _ in range(N_BLOCKS))
        self.proj_out = ConvBnRelu(c_in, c * N_BLOCKS, 1, bn_affine)
        self.ops = nn.ModuleList(
            nn.ModuleDict({op: ConvBnRelu(c, c, CONV_KERNEL[op], bn_affine) for op in PARAM_OPS})
            for _ in range(N_BLOCKS)
        )
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)

    def forward(self, x: torch.Tensor, plan: Plan) -> torch.Tensor:
        states: dict[int, torch.Tensor] = {}
        for b in plan.blocks:
            total = self.proj[b.v - 1](x) if b.proj else None
            for u in b.parents:
                total = states[u] if total is None else total + states[u]
            assert total is not None  # a live block is reachable from the input
            states[b.v] = self.pool(total) if b.op == POOL else self.ops[b.v - 1][b.op](total)
        if plan.concat:
            zeros = torch.zeros_like(states[plan.concat[0]])  # a block that does not feed the output
            parts = [states[v] if v in plan.concat else zeros for v in range(1, N_BLOCKS + 1)]
            out = torch.cat(parts, 1)
            return out + self.proj_out(x) if plan.out_proj else out
        return self.proj_out(x)  # only the input feeds the output


def stack_widths(c: int, n: int, stacks: int) -> list[tuple[int, int, bool]]:
    """(input channels, block channels, downsample before it) of every cell in order."""
    out = []
    c_in, width = c, c
    for s in range(stacks):
        if s:
            width *= 2
        for i in range(n):
            out.append((c_in, width, s > 0 and i == 0))
            c_in = width * N_BLOCKS
    return out


class NB101Supernet(nn.Module):
    """The NB1shot-3 supernet; ``forward(x, arch)`` computes that one architecture."""

    def __init__(
        self,
        c: int = 16,
        n: int = 3,
        num_classes: int = 10,
        stacks: int = 3,
        bn_affine: bool = False,
        dropout: float = 0.1,
    ):
        super().__init__()
        if c < 1 or n < 1 or stacks < 1 or num_classes < 1:
            raise BadInput(
                f"NB1shot-3 supernet needs positive c, n, stacks, num_classes (got {c}, {n}, {stacks}, {num_classes})"
            )
        self.c, self.n, self.num_classes, self.stacks, self.bn_affine = c, n, num_classes, stacks, bn_affine
        self.stem = ConvBnRelu(3, c, 3, affine=True)
        layout = stack_widths(c, n, stacks)
        self.downsample = tuple(down for _, _, down in layout)
        self.cells = nn.ModuleList(SuperCell(c_in, width, bn_affine) for c_in, width, _ in layout)
        self.pool = Downsample()
        last = layout[-1][1]
        self.post = ReluConvBn(last * N_BLOCKS, last, affine=False)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(last, num_classes)
        self._plans: dict[Any, Plan] = {}

    def plan(self, arch: Any) -> Plan:
        key = arch_parts(arch)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = plan_of(*key)
        return plan

    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        plan = self.plan(arch)
        x = self.stem(x)
        for cell, down in zip(self.cells, self.downsample):
            if down:
                x = self.pool(x)
            x = cell(x, plan)
        x = self.post(x).mean((2, 3))
        return self.classifier(self.dropout(x))

    def used_parameters(self, arch: Any) -> set[str]:
        """The names of the parameters a forward of ``arch`` uses (tests, diagnostics)."""
        plan = self.plan(arch)
        prefixes = []
        for i in range(len(self.cells)):
            for b in plan.blocks:
                if b.proj:
                    prefixes.append(f"cells.{i}.proj.{b.v - 1}.")
                if b.op != POOL:
                    prefixes.append(f"cells.{i}.ops.{b.v - 1}.{b.op}.")
            if plan.out_proj:
                prefixes.append(f"cells.{i}.proj_out.")
        names = {k for k, _ in self.named_parameters()}
        fixed = {k for k in names if not k.startswith("cells.")}
        return fixed | {k for k in names if any(k.startswith(p) for p in prefixes)}


def supernet_settings(weights: Mapping[str, Any]) -> dict[str, Any]:
    """c, n, num_classes and bn_affine (and ``stacks`` when it is not 3) of the
    ``NB101Supernet`` that owns ``weights``; KeyError / ValueError when they are not
    such weights."""
    widths: dict[int, int] = {}
    for k, v in weights.items():
        parts = k.split(".")
        if parts[0] == "cells" and parts[2:5] == ["proj", "0", "0"]:
            widths[int(parts[1])] = int(v.shape[0])
    if not widths:
        raise KeyError("cells.0.proj.0.0.weight")
    stacks = len(set(widths.values()))
    cells = max(widths) + 1
    if cells % stacks or len(widths) != cells:
        raise ValueError(f"{cells} cells do not split into {stacks} stacks")
    out: dict[str, Any] = {
        "c": int(weights["stem.0.weight"].shape[0]),
        "n": cells // stacks,
        "num_classes": int(weights["classifier.weight"].shape[0]),
        "bn_affine": "cells.0.proj.0.1.weight" in weights,
    }
    if stacks != 3:
        out["stacks"] = stacks
    return out


def supernet_layers(supernet: NB101Supernet) -> dict[str, list[str]]:
    """Layer name -> its parameter names in network order (the gradient-similarity
    units): ``stem``; the cells ``S{stack}C{cell}``, cells numbered over the network as on
    NB201 (3 x 3: S1C0..S1C2, S2C3..S2C5, S3C6..S3C8); ``classifier`` (the
    post-processing conv-BN and the linear layer). The downsampling max-pools have no
    parameters, so no group."""
    names = [f"S{s + 1}C{s * supernet.n + i}" for s in range(supernet.stacks) for i in range(supernet.n)]
    groups: dict[str, list[str]] = {}
    for name, _ in supernet.named_parameters():
        top, _, rest = name.partition(".")
        if top == "cells":
            layer = names[int(rest.split(".")[0])]
        else:
            layer = "classifier" if top in ("post", "classifier") else top
        groups.setdefault(layer, []).append(name)
    return groups
