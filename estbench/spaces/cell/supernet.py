"""The weight-sharing supernet of a cell space (NB201 or ``toy``).

Every cell position and edge holds one parameter set per parametrised op (nor_conv_1x1,
nor_conv_3x3: ReLU-Conv-BN); the stem, the ResNet reduction blocks and the head are the
standalone network's own modules (``network``), with dropout before the classifier.
``forward(x, arch)`` computes only the chosen op of each edge that lies on an
input-to-output path (``CellSpace.live_edges``): ``none`` contributes nothing, skip is
the identity, avg pool has no parameters. A degenerate architecture sends a zero feature
map into the head, which is what its standalone network's last cell outputs.

Dropping the edges off every path is exact for edges whose target cannot reach the
output. An edge whose *source* is unreachable carries a zero map; its conv output is
BN(0), which is 0 for the default cell BN (no affine, batch statistics, the paper's
suggestion 6) and a constant per-channel offset otherwise (the BN bias, or the running
statistics in eval mode). The supernet leaves that offset out, like the live-edge
counting of the paper's Table A9.

Cell BN is ``affine=False`` by default; ``bn_affine=True`` turns it on. The state-dict
keys of a cell op are ``cells.{layer}.edges.{edge}.{op}.*``; ``subnet_state_dict(arch)``
maps them onto the standalone ``CellNetwork`` of ``arch``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from estbench.spaces.cell.network import CellNetwork, ReLUConvBN, ResNetBasicBlock, batch_norm, stage_channels
from estbench.spaces.cell.space import PARAMETRIC_OPS, Arch, CellSpace

# node -> the (edge, source, op) of its live in-edges, in string order; None: degenerate
Plan = tuple[tuple[int, tuple[tuple[int, int, str], ...]], ...] | None
_KERNELS = {"nor_conv_1x1": (1, 0), "nor_conv_3x3": (3, 1)}


def cell_plan(cell: CellSpace, arch: Arch) -> Plan:
    """What a forward of ``arch`` computes in one cell (nodes with no live in-edge are
    skipped; they feed nothing that reaches the output)."""
    cell.check(arch)
    live = cell.live_edges(arch)
    if not any(live):
        return None
    plan = []
    for i in range(1, cell.n_nodes):
        ins = tuple((k, j, arch[k]) for k, (j, dst) in enumerate(cell.edges) if dst == i and live[k])
        if ins:
            plan.append((i, ins))
    return tuple(plan)


class AvgPool3x3(nn.AvgPool2d):
    """NB201's avg_pool_3x3 (stride 1, padding 1, padding not counted). Without autograd
    (OS evaluation) it runs as a depthwise 3x3 conv of ones times 1/count, about twice as
    fast as ``avg_pool2d`` on CPU; the two differ by float rounding only (~1e-7)."""

    def __init__(self) -> None:
        super().__init__(3, stride=1, padding=1, count_include_pad=False)
        self._consts: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():  # avg_pool2d's backward is the faster one
            return super().forward(x)
        ones, recip = self._constants(x)
        return F.conv2d(x, ones, padding=1, groups=x.shape[1]) * recip

    def _constants(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (x.shape[1], x.shape[-2], x.shape[-1], x.device, x.dtype)
        if key not in self._consts:
            ones = x.new_ones(x.shape[1], 1, 3, 3)
            count = F.conv2d(x.new_ones(1, 1, *x.shape[-2:]), x.new_ones(1, 1, 3, 3), padding=1)
            self._consts[key] = ones, 1.0 / count
        return self._consts[key]


def _conv(op: str, c: int, affine: bool) -> nn.Module:
    kernel, padding = _KERNELS[op]
    return ReLUConvBN(c, c, kernel, 1, padding, affine=affine)


class SuperCell(nn.Module):
    """One cell position: a ModuleDict of the parametrised ops on every edge."""

    def __init__(self, cell: CellSpace, c: int, bn_affine: bool):
        super().__init__()
        self.n_nodes = cell.n_nodes
        param_ops = [op for op in cell.ops if op in PARAMETRIC_OPS]
        self.edges = nn.ModuleList(nn.ModuleDict({op: _conv(op, c, bn_affine) for op in param_ops}) for _ in cell.edges)
        self.pool = AvgPool3x3()

    def forward(self, x: torch.Tensor, plan: Plan) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x] + [None] * (self.n_nodes - 1)
        for i, ins in plan:
            total = None
            for k, j, op in ins:
                y = self._op(k, op, nodes[j])
                total = y if total is None else total + y
            nodes[i] = total
        return nodes[-1]

    def _op(self, k: int, op: str, x: torch.Tensor) -> torch.Tensor:
        if op == "skip_connect":
            return x
        if op == "avg_pool_3x3":
            return self.pool(x)
        return self.edges[k][op](x)


class CellSupernet(nn.Module):
    """The supernet of ``cell`` in the NB201 macro skeleton (C / 2C / 4C channels, N cells
    per stage). One architecture per forward."""

    def __init__(
        self,
        cell: CellSpace,
        c: int = 16,
        n: int = 5,
        num_classes: int = 10,
        bn_affine: bool = False,
        dropout: float = 0.1,
    ):
        super().__init__()
        unknown = set(cell.ops) - set(PARAMETRIC_OPS) - {"none", "skip_connect", "avg_pool_3x3"}
        if unknown:
            raise ValueError(f"the cell supernet has no module for ops {sorted(unknown)}")
        self.space, self.c, self.n, self.num_classes, self.bn_affine = cell, c, n, num_classes, bn_affine
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), batch_norm(c))
        layers: list[nn.Module] = []
        c_prev = c
        for c_cur, reduction in stage_channels(c, n):
            layers.append(ResNetBasicBlock(c_prev, c_cur) if reduction else SuperCell(cell, c_cur, bn_affine))
            c_prev = c_cur
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(batch_norm(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_prev, num_classes)
        self._plans: dict[Arch, Plan] = {}

    def plan(self, arch: Arch) -> Plan:
        arch = tuple(arch)
        if arch not in self._plans:
            self._plans[arch] = cell_plan(self.space, arch)
        return self._plans[arch]

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        plan = self.plan(arch)
        if plan is None:
            x = self._zero_features(x)
        else:
            x = self.stem(x)
            for layer in self.cells:
                x = layer(x, plan) if isinstance(layer, SuperCell) else layer(x)
        x = self.global_pooling(self.lastact(x)).flatten(1)
        return self.classifier(self.dropout(x))

    def _zero_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last cell's output of a degenerate architecture: zeros of its shape."""
        h, w = x.shape[-2:]
        for _ in range(2):  # two stride-2 reductions (conv k3 p1 s2: ceil(h / 2))
            h, w = (h + 1) // 2, (w + 1) // 2
        return x.new_zeros(x.shape[0], self.c * 4, h, w)

    # ---- the standalone network of one architecture ------------------------------
    def subnet_state_dict(self, arch: Arch) -> dict[str, torch.Tensor]:
        """The weights of ``arch`` under the keys of its standalone ``CellNetwork`` (whose
        cell BNs are affine: without ``bn_affine`` they get weight 1 and bias 0, which
        computes the same thing). Dead-edge ops are copied too."""
        self.space.check(arch)
        out: dict[str, torch.Tensor] = {}
        for key, value in self.state_dict().items():
            parts = key.split(".")
            if parts[0] != "cells" or parts[2] != "edges":
                out[key] = value.clone()
                continue
            layer, k, op, rest = parts[1], int(parts[3]), parts[4], parts[5:]
            if arch[k] == op:
                out[".".join(["cells", layer, "ops", str(k), *rest])] = value.clone()
        if not self.bn_affine:
            for key in [k for k in out if k.startswith("cells.") and ".ops." in k and k.endswith(".2.running_mean")]:
                base = key[: -len("running_mean")]
                out[base + "weight"] = torch.ones_like(out[key])
                out[base + "bias"] = torch.zeros_like(out[key])
        return out

    def standalone(self, arch: Arch) -> nn.Module:
        """The standalone network of ``arch`` carrying this supernet's weights."""
        net = CellNetwork(self.space, arch, self.c, self.n, self.num_classes)
        net.load_state_dict(self.subnet_state_dict(arch))
        return net.to(next(self.parameters()).device)


def supernet_settings(weights: dict[str, torch.Tensor]) -> dict[str, int | bool]:
    """c, n, num_classes and bn_affine of the ``CellSupernet`` that owns ``weights``."""
    layers = {int(k.split(".")[1]) for k in weights if k.startswith("cells.")}
    return {
        "c": weights["stem.0.weight"].shape[0],
        "n": (max(layers) + 1 - 2) // 3,  # 3 stages of n cells and 2 reduction blocks
        "num_classes": weights["classifier.weight"].shape[0],
        "bn_affine": any(".edges." in k and k.endswith(".2.weight") for k in weights),
    }
