"""Architecture samplers for training a cell supernet, registered by short name.

``space.make_sampler(name, rng).step()`` returns the architectures to train on one batch
(their gradients are averaged). MC samples (S > 1, paper Sec. 6.1) are the trainer calling
``step()`` S times. Every random draw comes from the passed ``numpy`` generator, so a
sampler is deterministic given it and checkpointing that generator's state checkpoints
the sampler (no other state changes between steps).

- ``uniform``: every op of every edge uniform, i.e. uniform over all architectures;
- ``deiso``: uniform over isomorphism classes (``cell.canonical(arch, 'iso')``; 6,466 on
  NB201, paper Sec. 6.2 / A.3.3), each class trained through one fixed representative:
  its first member in ``cell.enumerate()`` order (ops in the space's op order, edges in
  string order), so the table needs no benchmark file;
- ``fairnas``: the paper's Algorithm 1: an independent random permutation of the ops per
  edge, column j being architecture j, so each step trains len(ops) architectures in
  which every edge uses every op exactly once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Callable

import numpy as np

from estbench.registry import Registry
from estbench.spaces.cell.space import Arch, CellSpace

if TYPE_CHECKING:
    from estbench.spaces.cell.search_space import CellSearchSpace


class CellSampler:
    """Base class: ``step()`` -> the architectures of one training step."""

    def __init__(self, space: CellSearchSpace, rng: np.random.Generator):
        self.space, self.cell, self.rng = space, space.cell, rng

    def step(self) -> list[Arch]:
        raise NotImplementedError

    @classmethod
    def trained_as(cls, space: CellSearchSpace) -> Callable[[Arch], Arch]:
        """Every architecture is trained as itself."""
        return lambda arch: arch


SAMPLERS: Registry[type[CellSampler]] = Registry("sampler")


@SAMPLERS.register("uniform", per_step=1, description="uniform over all architectures")
class UniformSampler(CellSampler):
    def step(self) -> list[Arch]:
        return [self.space.sample(self.rng)]


@lru_cache(maxsize=8)
def iso_table(cell: CellSpace) -> dict[str, Arch]:
    """iso key -> the fixed representative of that isomorphism class (first-seen order)."""
    first: dict[str, Arch] = {}
    for arch in cell.enumerate():
        first.setdefault(cell.canonical(arch, "iso"), arch)
    return first


def iso_representatives(cell: CellSpace) -> tuple[Arch, ...]:
    return tuple(iso_table(cell).values())


@SAMPLERS.register("deiso", per_step=1, description="uniform over isomorphism classes (one representative each)")
class DeisoSampler(CellSampler):
    def __init__(self, space: CellSearchSpace, rng: np.random.Generator):
        super().__init__(space, rng)
        self.representatives = iso_representatives(self.cell)

    def step(self) -> list[Arch]:
        return [self.representatives[int(self.rng.integers(0, len(self.representatives)))]]

    @classmethod
    def trained_as(cls, space: CellSearchSpace) -> Callable[[Arch], Arch]:
        """Only the class representatives are trained, so every member of a class is
        scored through its representative (the same function, with trained weights)."""
        table, cell = iso_table(space.cell), space.cell
        return lambda arch: table[cell.canonical(arch, "iso")]


@SAMPLERS.register(
    "fairnas", per_step="len(ops)", description="paper Algorithm 1: every edge uses every op once per step"
)
class FairNASSampler(CellSampler):
    def step(self) -> list[Arch]:
        ops = self.cell.ops
        perms = [self.rng.permutation(len(ops)) for _ in self.cell.edges]  # P[edge] = a permutation of the ops
        return [tuple(ops[p[j]] for p in perms) for j in range(len(ops))]
