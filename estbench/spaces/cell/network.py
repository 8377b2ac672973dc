"""The NB201 macro skeleton in torch: stem conv 3x3 + BN, three stages of N cells with
C / 2C / 4C channels separated by ResNet basic reduction blocks, then BN-ReLU, global
average pooling and a linear classifier. Matches the official network exactly
(parameter counts are checked against the benchmark's formula in the tests)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from estbench.spaces.cell.space import CellSpace


def batch_norm(c: int, bn: bool = True, affine: bool = True) -> nn.Module:
    """BatchNorm2d, or an Identity in its place when ``bn`` is False. BN init draws no
    random numbers, so both variants get identical conv/linear weights under one seed
    and keep the same module (state-dict) names."""
    return nn.BatchNorm2d(c, affine=affine, track_running_stats=True) if bn else nn.Identity()


class ReLUConvBN(nn.Sequential):
    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True, bn: bool = True
    ):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            batch_norm(c_out, bn, affine),
        )


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, c: int, affine: bool = True, bn: bool = True) -> nn.Module:
    """One cell operation with c input and output channels, stride 1."""
    factories = {
        "none": lambda: Zero(),
        "skip_connect": lambda: nn.Identity(),
        "nor_conv_1x1": lambda: ReLUConvBN(c, c, 1, 1, 0, affine, bn),
        "nor_conv_3x3": lambda: ReLUConvBN(c, c, 3, 1, 1, affine, bn),
        "avg_pool_3x3": lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    }
    try:
        return factories[op]()
    except KeyError:
        raise ValueError(f"no module for op {op!r}") from None


class ResNetBasicBlock(nn.Module):
    """The stride-2 reduction block between stages."""

    def __init__(self, c_in: int, c_out: int, bn: bool = True):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, bn=bn)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, bn=bn)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Cell(nn.Module):
    """A standalone cell: node i = sum over j < i of op_{j,i}(node j)."""

    def __init__(self, space: CellSpace, arch: Sequence[str], c: int, bn: bool = True):
        super().__init__()
        self.edges = space.edges
        self.n_nodes = space.n_nodes
        self.ops = nn.ModuleList(make_op(op, c, bn=bn) for op in arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for i in range(1, self.n_nodes):
            total = None
            for k, (j, dst) in enumerate(self.edges):
                if dst == i:
                    y = self.ops[k](nodes[j])
                    total = y if total is None else total + y
            nodes.append(total)
        return nodes[-1]


def stage_channels(c: int, n: int) -> list[tuple[int, bool]]:
    """(channels, is_reduction) of every layer after the stem."""
    layers: list[tuple[int, bool]] = []
    for stage in range(3):
        if stage:
            layers.append((c * 2**stage, True))
        layers += [(c * 2**stage, False)] * n
    return layers


class CellNetwork(nn.Module):
    """``bn=False`` replaces every BatchNorm by an Identity (synflow's network) with the
    same conv/linear weights as the BN network under the same torch seed."""

    def __init__(
        self, space: CellSpace, arch: Sequence[str], c: int = 16, n: int = 5, num_classes: int = 10, bn: bool = True
    ):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), batch_norm(c, bn))
        cells: list[nn.Module] = []
        c_prev = c
        for c_cur, reduction in stage_channels(c, n):
            cells.append(ResNetBasicBlock(c_prev, c_cur, bn) if reduction else Cell(space, arch, c_cur, bn))
            c_prev = c_cur
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(batch_norm(c_prev, bn), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x)).flatten(1)
        return self.classifier(x)
