"""``CellSearchSpace``: the search-space protocol implemented once for every cell space
in the NB201 macro skeleton; a concrete space sets ``name``, ``cell`` and, where it
differs, ``default_shape``, its architecture order and its truth sources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from estbench.spaces.base import CellGraph, SearchSpace
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

    def mutation_kind(self, arch: Arch, neighbour: Arch) -> str:
        changed = [k for k, (a, b) in enumerate(zip(arch, neighbour)) if a != b]
        if len(changed) != 1:
            raise ValueError(f"not a mutation pair: {self.to_str(arch)} -> {self.to_str(neighbour)}")
        return f"{arch[changed[0]]}->{neighbour[changed[0]]}"

    def mutation_pairs(self, arch_strs: list[str]) -> tuple[list[int], list[int], list[str]]:
        """The protocol's pairs, vectorised: an architecture is a base-|ops| number with one
        digit per edge, a mutation adds (new - old) * |ops|^edge (same pairs and order of
        kinds as the generic version, ~20x faster on NB201's 15,625 archs)."""
        import numpy as np

        ops = self.cell.ops
        k, n_edges = len(ops), len(self.cell.edges)
        pos = {op: i for i, op in enumerate(ops)}
        digits = np.array([[pos[o] for o in self.parse(s)] for s in arch_strs], dtype=np.int64).reshape(-1, n_edges)
        weights = k ** np.arange(n_edges, dtype=np.int64)
        codes = digits @ weights
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        src, dst, kind_ids = [], [], []
        for e in range(n_edges):
            for new in range(k):
                old = digits[:, e]
                moved = old != new
                target = codes[moved] + (new - old[moved]) * weights[e]
                at = np.minimum(np.searchsorted(sorted_codes, target), len(codes) - 1)
                found = sorted_codes[at] == target
                src.append(np.flatnonzero(moved)[found])
                dst.append(order[at[found]])
                kind_ids.append(old[moved][found] * k + new)
        if not src:
            return [], [], []
        a, b, kid = np.concatenate(src), np.concatenate(dst), np.concatenate(kind_ids)
        names = [f"{ops[i // k]}->{ops[i % k]}" for i in range(k * k)]
        return a.tolist(), b.tolist(), [names[i] for i in kid.tolist()]

    def op_counts(self, arch: Arch) -> dict[str, int]:
        return {op: sum(1 for a in arch if a == op) for op in self.cell.ops}

    def cell_graphs(self, arch_str: str) -> list[CellGraph]:
        """One graph "cell": nodes 0 (input) .. n_nodes-1 (output), one edge j -> i per
        pair j < i carrying its op (``none`` included), in string order."""
        arch = self.parse(arch_str)
        nodes = tuple(str(i) for i in range(self.cell.n_nodes))
        return [CellGraph("cell", nodes, tuple((j, i, op) for (j, i), op in zip(self.cell.edges, arch)))]

    # ---- networks (torch imported only here) ------------------------------------
    def build(
        self, arch: Arch, c: int | None = None, n: int | None = None, num_classes: int | None = None, *, bn: bool = True
    ) -> nn.Module:
        from estbench.spaces.cell.network import CellNetwork

        s = self.shape(c=c, n=n, num_classes=num_classes)
        return CellNetwork(self.cell, arch, s.c, s.n, s.num_classes, bn=bn)

    def thin_network(self, arch: Arch, num_classes: int | None = None) -> nn.Module:
        """TE-NAS's thin network for ``linear_regions`` (its ``TinyNetworkDarts`` with C=1,
        N=1, depth=1, no stem): the architecture's first cell at one channel on a
        1-channel input, then BN(1) + ReLU, global pooling and a linear classifier
        (the last two only complete the network: the region count reads the ReLUs).
        Drawn from torch's global generator; the pass seeds it."""
        from collections import OrderedDict

        from torch import nn

        from estbench.spaces.cell.network import Cell, batch_norm

        classes = self.shape(num_classes=num_classes).num_classes
        return nn.Sequential(
            OrderedDict(
                cell=Cell(self.cell, arch, 1),
                lastact=nn.Sequential(batch_norm(1), nn.ReLU(inplace=False)),
                global_pooling=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(),
                classifier=nn.Linear(1, classes),
            )
        )

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

    def supernet_layers(self, supernet: nn.Module) -> dict[str, list[str]]:
        """NB201 naming (paper A.3.1): ``stem``; the normal cells ``S{stage}C{cell}``, cells
        numbered over the whole network (N=5: S1C0..S1C4, S2C5..S2C9, S3C10..S3C14); the
        reduction blocks ``S2R``, ``S3R`` that open stages 2 and 3; ``classifier`` (the
        final BN and the linear layer)."""
        from estbench.spaces.cell.supernet import CellSupernet

        if not isinstance(supernet, CellSupernet):
            return super().supernet_layers(supernet)
        names, cell = [], 0
        for stage in (1, 2, 3):
            if stage > 1:
                names.append(f"S{stage}R")
            for _ in range(supernet.n):
                names.append(f"S{stage}C{cell}")
                cell += 1
        groups: dict[str, list[str]] = {}
        for name, _ in supernet.named_parameters():
            top, _, rest = name.partition(".")
            if top == "cells":
                layer = names[int(rest.split(".")[0])]
            else:
                layer = "classifier" if top in ("lastact", "classifier") else top
            groups.setdefault(layer, []).append(name)
        return groups

    def checkpoint_info(self) -> dict[str, Any]:
        return {"ops": list(self.cell.ops)}
