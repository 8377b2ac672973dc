"""Cheap structural facts of cell-space networks (params, FLOPs, ReLU count).

Costs are additive over cells: cost(arch) = cost(skeleton) + sum over normal cells and
edges of cost(op at that cell's width and resolution). The per-op and skeleton costs
are measured once on real torch modules (parameter count, fvcore FLOPs, ReLU modules)
and cached, so scoring all 15,625 NB201 architectures needs no network builds; the
tests check the sum against the full network."""

from __future__ import annotations

import logging
import warnings
from functools import cache

import torch
from torch import nn

from estbench.spaces.base import NetShape
from estbench.spaces.cell.network import CellNetwork, make_op, stage_channels
from estbench.spaces.cell.space import Arch, CellSpace


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_relus(module: nn.Module) -> int:
    return sum(isinstance(m, nn.ReLU) for m in module.modules())


def fvcore_flops(module: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates as counted by fvcore for one input of ``shape``."""
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fvcore traces with torch.jit
        analysis = FlopCountAnalysis(module, torch.zeros(shape))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())


@cache
def _cost_tables(space: CellSpace, shape: NetShape) -> tuple[dict, dict[tuple[str, int], dict]]:
    """(skeleton costs, per-(op, normal-cell layer) costs) for a network shape."""
    empty = ("none",) * len(space.edges)
    net = CellNetwork(space, empty, shape.c, shape.n, shape.num_classes)
    skeleton = {
        "params": count_params(net),
        "flops": fvcore_flops(net, (1, 3, shape.resolution, shape.resolution)),
        "relu": count_relus(net),
    }
    per_layer: dict[tuple[str, int], dict] = {}
    res = shape.resolution
    for layer, (c, reduction) in enumerate(stage_channels(shape.c, shape.n)):
        if reduction:
            res //= 2
            continue
        for op in space.ops:
            mod = make_op(op, c)
            per_layer[(op, layer)] = {
                "params": count_params(mod),
                "flops": fvcore_flops(mod, (1, c, res, res)),
                "relu": count_relus(mod),
            }
    # the all-none skeleton already contains the cost of its 'none' ops
    for key in skeleton:
        skeleton[key] -= sum(v[key] for (op, _), v in per_layer.items() if op == "none") * len(space.edges)
    return skeleton, per_layer


def structural_cost(
    space: CellSpace, arch: Arch, what: str, shape: NetShape = NetShape(), live_only: bool = False
) -> int:
    """Params, fvcore FLOPs or ReLU-module count of the standalone network; with
    ``live_only``, ops on edges off every input-to-output path are not counted."""
    skeleton, per_layer = _cost_tables(space, shape)
    total = skeleton[what]
    live = space.live_edges(arch) if live_only else (True,) * len(arch)
    layers = {layer for (_, layer) in per_layer}
    for layer in layers:
        for op, on in zip(arch, live):
            if on:
                total += per_layer[(op, layer)][what]
    return total
