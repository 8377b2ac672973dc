"""Architecture samplers for training the NB1shot-3 supernet, registered by short name
(``SAMPLERS``; a space sets ``samplers = SAMPLERS``).

``SAMPLERS.get(name)(space, rng).step()`` returns the architectures of one training
step. Every draw comes from ``rng`` through ``space.sample(rng)`` (NB1shot-3: one of the
paper's 14,580 configurations, uniform) or ``rng.permutation``, so checkpointing the
generator's state checkpoints the sampler.

- ``uniform``: one architecture per step, ``space.sample(rng)``: the paper's "random
  sampling from the 14580 architectures";
- ``fairnas``: the paper's Algorithm 1 carried over to ops on nodes: per step 3
  architectures drawn with ``space.sample(rng)`` (their inputs are kept, their ops
  discarded), then one random permutation of the 3 ops per choice block (block 1 to 5);
  architecture j takes op ``perm[block][j]`` at every block. Every op
  module of every block is trained exactly once per step whatever the inputs (they are
  shared across inputs), and each architecture on its own is uniform over the space.
  The inputs cannot be made fair the same way (vertices 4, 5, 6 choose among 3, 4, 5
  extra inputs, not 3), and the input projections are used by the architectures whose
  blocks take the cell input, as under ``uniform``.

No ``deiso`` sampler: the 14,580 configurations have 14,580 distinct module hashes (no
two are isomorphic, ``oneshot3``), so it would be ``uniform``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from estbench.registry import Registry
from estbench.spaces.nb101.spec import INPUT, OPS, OUTPUT, Spec

if TYPE_CHECKING:
    from estbench.spaces.base import SearchSpace


class NB101Sampler:
    """Base class: ``step()`` -> the architectures of one training step."""

    def __init__(self, space: SearchSpace, rng: np.random.Generator):
        self.space, self.rng = space, rng

    def step(self) -> list[Any]:
        raise NotImplementedError

    @classmethod
    def trained_as(cls, space: SearchSpace) -> Callable[[Any], Any]:
        """Every architecture is trained as itself."""
        return lambda arch: arch


SAMPLERS: Registry[type[NB101Sampler]] = Registry("sampler")


@SAMPLERS.register("uniform", per_step=1, description="uniform over the space's architectures")
class UniformSampler(NB101Sampler):
    def step(self) -> list[Any]:
        return [self.space.sample(self.rng)]


@SAMPLERS.register(
    "fairnas", per_step=len(OPS), description="paper Algorithm 1: every block uses every op once per step"
)
class FairNASSampler(NB101Sampler):
    def step(self) -> list[Any]:
        archs = [self.space.sample(self.rng) for _ in range(len(OPS))]
        perms = [self.rng.permutation(len(OPS)) for _ in archs[0].ops[1:-1]]  # P[block]
        return [Spec(a.matrix, (INPUT, *(OPS[p[j]] for p in perms), OUTPUT)) for j, a in enumerate(archs)]
