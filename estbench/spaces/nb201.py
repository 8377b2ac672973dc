"""NAS-Bench-201 / NATS-Bench topology space: 4 nodes, 6 edges, 5 ops, 15,625 archs.

The official index order is not derivable from the ops (the benchmark shuffled it), so
it is read from the benchmark data the user has: the estbench truth table, or the
official NATS-Bench "simple" directory, in that order; without either, from the table
shipped with estbench (``estbench.data.builtin``)."""

from __future__ import annotations

from estbench.data.lookup import DataDir
from estbench.errors import BadInput, MissingData
from estbench.spaces.base import TruthSource, table_source
from estbench.spaces.cell import CellSearchSpace, CellSpace

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
PTH_NAMES = ("NAS-Bench-201-v1_1-096897.pth", "NAS-Bench-201-v1_0-e61699.pth")
HOW_TO_GET = (
    "Get the NATS-Bench topology file NATS-tss-v1_0-3ffb9-simple (github D-X-Y/NATS-Bench) or an "
    "estbench truth table nb201/nb201_truth.csv.gz."
)


class NB201(CellSearchSpace):
    name = "nb201"
    cell = CellSpace("nb201", NB201_OPS, n_nodes=4)
    builtin_truth = "nb201-builtin"
    truth_how_to_get = (
        "Get the official NATS-Bench topology directory NATS-tss-v1_0-3ffb9-simple (github D-X-Y/NATS-Bench), "
        "a NAS-Bench-201 .pth archive, or an estbench CSV table (columns index, arch_str, cifar10_test, ...)."
    )
    truth_sources = (
        table_source("nb201"),
        TruthSource(
            "nats-simple",
            ("NATS-tss-v1_0-3ffb9-simple", "nb201/NATS-tss-v1_0-3ffb9-simple"),
            "estbench.truth.official:read_nats_simple",
            claims="dir",
        ),
        TruthSource("nb201-pth", tuple(f"nb201/{n}" for n in PTH_NAMES) + PTH_NAMES,
                    "estbench.truth.official:read_nb201_pth", claims=".pth"),
    )  # fmt: skip

    def arch_list(self, data: DataDir) -> list[str]:
        from estbench.data.builtin import builtin_path
        from estbench.truth import official, table

        tables, nats = self.truth_source("table").paths, self.truth_source("nats-simple").paths
        path = data.find_optional(tables) if data is not None else None
        official_dir = data.find_optional(nats) if data is not None and path is None else None
        if path is None and official_dir is None:
            path = builtin_path(self.builtin_truth)
        if path is not None:
            archs = table.read_arch_list(path)
        elif official_dir is not None:
            archs = official.nats_arch_list(official_dir)
        else:
            raise MissingData(
                "the NB201 architecture list (official index order) was not found; looked in: "
                + ", ".join(str(d / r) for d in data.dirs for r in tables + nats)
                + ". "
                + HOW_TO_GET
            )
        if len(archs) != self.cell.size:
            raise BadInput(f"{path}: expected {self.cell.size} NB201 architectures, found {len(archs)}")
        for a in archs:
            self.parse(a)
        return archs


SPACE = NB201()
