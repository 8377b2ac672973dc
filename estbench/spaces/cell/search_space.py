"""``CellSearchSpace``: the search-space protocol implemented once for every cell space
in the NB201 macro skeleton; a concrete space sets ``name``, ``cell`` and, where it
differs, ``default_shape``, its architecture order and its truth sources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from estbench.spaces.base import SearchSpace
from estbench.spaces.cell.presets import PRESETS
from estbench.spaces.cell.samplers import SAMPLERS
from estbench.spaces.cell.space import Arch, CellSpace

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from estbench.data.lookup import DataDir


class CellSearchSpace(SearchSpace):
    cell: CellSpace
    protocols = ("iso", "computational")
    vote_experts = ("relu_logdet", "jacob_cov", "synflow")  # the three best ZSEs of NB201 (paper Table A9)
    presets = PRESETS
    samplers = SAMPLERS

    def arch_list(self, data: DataDir | None) -> list[str]:
        """Every architecture in lexicographic op order (spaces with an official order
        override this)."""
        return [self.cell.to_str(a) for a in self.cell.enumerate()]

    def sample(self, rng: np.random.Generator) -> Arch:
        ops = self.cell.ops
        return tuple(ops[i] for i in rng.integers(0, len(ops), size=len(self.cell.edges)))

    def parse(self, text: str) -> Arch:
        return self.cell.parse(text)

    def to_str(self, arch: Arch) -> str:
        return self.cell.to_str(arch)

    def canonical(self, arch: Arch, protocol: str = "iso") -> str:
        return self.cell.canonical(arch, protocol)

    def is_degenerate(self, arch: Arch) -> bool:
        return self.cell.is_degenerate(arch)

    def mutations(self, arch: Arch) -> list[Arch]:
        return self.cell.mutations(arch)

    # ---- networks (torch imported only here) ------------------------------------
    def build(
        self, arch: Arch, c: int | None = None, n: int | None = None, num_classes: int | None = None, *, bn: bool = True
    ) -> nn.Module:
        from estbench.spaces.cell.network import CellNetwork

        s = self.shape(c=c, n=n, num_classes=num_classes)
        return CellNetwork(self.cell, arch, s.c, s.n, s.num_classes, bn=bn)

    def structural(self, arch: Arch, what: str, live_only: bool = False, **shape: int) -> int:
        from estbench.spaces.cell.cost import structural_cost

        return structural_cost(self.cell, arch, what, self.shape(**shape), live_only)

    def supernet(
        self,
        *,
        c: int | None = None,
        n: int | None = None,
        num_classes: int | None = None,
        bn_affine: bool = False,
        dropout: float = 0.1,
    ) -> nn.Module:
        from estbench.spaces.cell.supernet import CellSupernet

        s = self.shape(c=c, n=n, num_classes=num_classes)
        return CellSupernet(self.cell, s.c, s.n, s.num_classes, bn_affine, dropout)

    def supernet_settings(self, weights: Mapping[str, Any]) -> dict[str, Any]:
        from estbench.spaces.cell.supernet import supernet_settings

        return supernet_settings(weights)

    def checkpoint_info(self) -> dict[str, Any]:
        return {"ops": list(self.cell.ops)}
