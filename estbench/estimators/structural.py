"""Structural estimators: data-free facts of the standalone network. Pure functions of
(space, arch, shape settings).

``params`` / ``flops`` / ``relu`` count the whole standalone network (``params`` equals
the benchmark's official counts). The ``*_live`` variants count only ops on edges that
lie on an input-to-output path: the paper's Table A9 "Param" and "relu" rows were
computed this way (aw_nas counted parameters of live edges and ReLUs run by a forward
pass that skips dead edges), so use them to compare with the paper."""

from __future__ import annotations

from estbench.spaces.base import Arch, SearchSpace


def params(space: SearchSpace, arch: Arch, **shape: int) -> float:
    return float(space.structural(arch, "params", **shape))


def flops(space: SearchSpace, arch: Arch, **shape: int) -> float:
    return float(space.structural(arch, "flops", **shape))


def relu(space: SearchSpace, arch: Arch, **shape: int) -> float:
    return float(space.structural(arch, "relu", **shape))


def params_live(space: SearchSpace, arch: Arch, **shape: int) -> float:
    return float(space.structural(arch, "params", live_only=True, **shape))


def flops_live(space: SearchSpace, arch: Arch, **shape: int) -> float:
    return float(space.structural(arch, "flops", live_only=True, **shape))


def relu_live(space: SearchSpace, arch: Arch, **shape: int) -> float:
    return float(space.structural(arch, "relu", live_only=True, **shape))
