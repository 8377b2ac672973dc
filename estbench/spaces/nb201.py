"""NAS-Bench-201 / NATS-Bench topology space: 4 nodes, 6 edges, 5 ops, 15,625 archs.

The official index order is not derivable from the ops (the benchmark shuffled it), so
it is read from the benchmark data the user has: the estbench truth table, or the
official NATS-Bench "simple" directory, in that order."""

from __future__ import annotations

from estbench.data.lookup import DataDir
from estbench.errors import BadInput, MissingData
from estbench.spaces.base import SearchSpace
from estbench.spaces.cell import CellSpace

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
HOW_TO_GET = (
    "Get the NATS-Bench topology file NATS-tss-v1_0-3ffb9-simple (github D-X-Y/NATS-Bench) or an "
    "estbench truth table nb201/nb201_truth.csv.gz."
)


class NB201(SearchSpace):
    name = "nb201"
    cell = CellSpace("nb201", NB201_OPS, n_nodes=4)
    truth_table_paths = ("nb201/nb201_truth.csv.gz", "nb201/nb201_truth.csv", "nb201_truth.csv.gz")
    official_paths = ("NATS-tss-v1_0-3ffb9-simple", "nb201/NATS-tss-v1_0-3ffb9-simple")

    def arch_list(self, data: DataDir) -> list[str]:
        from estbench.truth import official, table

        path = data.find_optional(self.truth_table_paths)
        if path is not None:
            archs = table.read_arch_list(path)
        else:
            official_dir = data.find_optional(self.official_paths)
            if official_dir is None:
                raise MissingData(
                    "the NB201 architecture list (official index order) was not found; looked in: "
                    + ", ".join(str(d / r) for d in data.dirs for r in self.truth_table_paths + self.official_paths)
                    + ". "
                    + HOW_TO_GET
                )
            archs = official.nats_arch_list(official_dir)
        if len(archs) != self.cell.size:
            raise BadInput(f"{path}: expected {self.cell.size} NB201 architectures, found {len(archs)}")
        for a in archs:
            self.parse(a)
        return archs


SPACE = NB201()
