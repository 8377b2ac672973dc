"""Architecture samplers for training the NB301 supernet, registered by short name
(``SAMPLERS``; the space sets ``samplers = SAMPLERS``).

``SAMPLERS.get(name)(space, rng).step()`` returns the genotypes of one training step.
Every draw comes from ``rng`` through ``space.sample(rng)`` (NB301: ``genotype.sample``,
uniform over the configuration space) or ``rng.permutation``, so checkpointing the
generator's state checkpoints the sampler.

- ``uniform``: one genotype per step, ``space.sample(rng)``;
- ``fairnas``: the paper's Algorithm 1 as its NB301 runs use it (7 architectures a step,
  Table A2): per step 7 genotypes drawn with ``space.sample(rng)`` (their inputs are
  kept, their ops discarded), then one random permutation of the 7 ops per operation
  position, i.e. per (cell type, node, operand slot) in that order (normal then reduce,
  nodes 0..3, slot 0 = the pair with the smaller input, then slot 1): 16 permutations;
  genotype k takes op ``perm[position][k]`` at every position. What is fair: every
  position holds every op exactly once per step, so over a step each op is used
  equally often in each cell type and at each node, and each genotype on its own is
  uniform over the space (its inputs from ``space.sample``, its ops a uniform
  permutation column). What is not: the shared modules are per (edge, op), an edge
  being (node, input), and the inputs vary between the 7 genotypes: an edge is used by
  the genotypes whose node takes that input (0 to 7 of them), and where that input is
  slot 0 in one genotype and slot 1 in another, its ops come from two independent
  permutations and may repeat. Only node 0, which always reads both cell inputs, is
  fair per edge (edges 0 and 1 of each cell type train all 7 ops once per step). Inputs
  cannot be made fair the same way (node j chooses among 1, 3, 6, 10 input pairs, not 7).

No ``deiso`` sampler: the space (~1e18 genotypes) is too large to tabulate its
isomorphism classes (``genotype.canonical``) the way NB201's ``deiso`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from estbench.registry import Registry
from estbench.spaces.nb301.genotype import CELL_TYPES, NODES, OPS, Genotype

if TYPE_CHECKING:
    from estbench.spaces.base import SearchSpace

SLOTS = 2 * NODES  # operation positions per cell


class NB301Sampler:
    """Base class: ``step()`` -> the genotypes of one training step."""

    def __init__(self, space: SearchSpace, rng: np.random.Generator):
        self.space, self.rng = space, rng

    def step(self) -> list[Any]:
        raise NotImplementedError

    @classmethod
    def trained_as(cls, space: SearchSpace) -> Callable[[Any], Any]:
        """Every architecture is trained as itself."""
        return lambda arch: arch


SAMPLERS: Registry[type[NB301Sampler]] = Registry("sampler")


@SAMPLERS.register("uniform", per_step=1, description="uniform over the DARTS configuration space")
class UniformSampler(NB301Sampler):
    def step(self) -> list[Any]:
        return [self.space.sample(self.rng)]


@SAMPLERS.register(
    "fairnas", per_step=len(OPS), description="paper Algorithm 1: every op position uses every op once per step"
)
class FairNASSampler(NB301Sampler):
    def step(self) -> list[Genotype]:
        archs = [self.space.sample(self.rng) for _ in range(len(OPS))]
        perms = {name: [self.rng.permutation(len(OPS)) for _ in range(SLOTS)] for name in CELL_TYPES}

        def cell(arch: Genotype, name: str, k: int) -> tuple[tuple[str, int], ...]:
            # inputs unchanged, so each node's pairs stay sorted by input
            return tuple((OPS[perms[name][s][k]], i) for s, (_, i) in enumerate(arch.cell(name)))

        return [Genotype(cell(a, "normal", k), cell(a, "reduce", k)) for k, a in enumerate(archs)]
