"""The search-space interface shared by every space, implemented once for cell spaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from estbench.data.lookup import DataDir
from estbench.spaces.cell import Arch, CellSpace

if TYPE_CHECKING:
    from torch import nn


class SearchSpace:
    """A benchmark search space. Subclasses set ``cell`` and ``default_shape`` and say
    where the official architecture order comes from (``arch_list``)."""

    name: str
    cell: CellSpace
    default_shape: dict[str, int] = {"c": 16, "n": 5, "num_classes": 10, "resolution": 32}
    # relative paths (under a data dir) of the estbench truth table for this space
    truth_table_paths: tuple[str, ...] = ()
    isomorphism_protocols = ("iso", "computational")

    def arch_list(self, data: DataDir) -> list[str]:
        """Every architecture string; the position in the list is the arch id."""
        raise NotImplementedError

    # ---- architecture strings and structure -------------------------------------
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

    def describe(self, arch_str: str) -> dict[str, Any]:
        """The per-architecture facts stored in the ``archs`` table."""
        arch = self.parse(arch_str)
        return {
            "arch_str": arch_str,
            "iso_key": self.canonical(arch, "iso"),
            "comp_key": self.canonical(arch, "computational"),
            "degenerate": self.is_degenerate(arch),
        }

    # ---- networks (torch imported only here) ------------------------------------
    def shape(self, **overrides: int):
        from estbench.spaces.cellcost import NetShape

        return NetShape(**{**self.default_shape, **{k: v for k, v in overrides.items() if v is not None}})

    def build(
        self,
        arch: Arch,
        c: int | None = None,
        n: int | None = None,
        num_classes: int | None = None,
        *,
        bn: bool = True,
    ) -> nn.Module:
        """The standalone network of the benchmark's macro skeleton. ``bn=False`` builds it
        without BatchNorm (for synflow) with the same conv/linear weights under one seed."""
        from estbench.spaces.cellnet import CellNetwork

        s = self.shape(c=c, n=n, num_classes=num_classes)
        return CellNetwork(self.cell, arch, s.c, s.n, s.num_classes, bn=bn)

    def structural(self, arch: Arch, what: str, live_only: bool = False, **shape: int) -> int:
        """``params``, ``flops`` (fvcore multiply-adds) or ``relu`` (ReLU modules) of the
        standalone network; ``live_only`` skips ops on edges off every input-output path."""
        from estbench.spaces.cellcost import structural_cost

        return structural_cost(self.cell, arch, what, self.shape(**shape), live_only)
