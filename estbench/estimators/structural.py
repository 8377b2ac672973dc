"""Structural estimators: data-free facts of the standalone network. Pure functions of
(space, arch, shape settings)."""

from __future__ import annotations

from estbench.spaces.base import SearchSpace
from estbench.spaces.cell import Arch


def params(space: SearchSpace, arch: Arch, **shape: int) -> float:
    return float(space.structural(arch, "params", **shape))


def flops(space: SearchSpace, arch: Arch, **shape: int) -> float:
    return float(space.structural(arch, "flops", **shape))


def relu(space: SearchSpace, arch: Arch, **shape: int) -> float:
    return float(space.structural(arch, "relu", **shape))
