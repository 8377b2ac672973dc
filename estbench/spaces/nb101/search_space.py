"""The two NB101 search spaces: ``nb101``, the full NAS-Bench-101 space (every valid
cell of up to 7 vertices and 9 edges; 423,624 unique graphs, too many to list: an open
space whose architectures come from truth files or are sampled), and ``nb101-1shot3``,
NAS-Bench-1shot1 search space 3 as the paper uses it (the 14,580 architectures its
supernet trains on; ``oneshot3``). An architecture is an NB101 cell string
(``spec.to_str``); the iso protocol counts every string, deiso one per official module
hash (``spec.module_hash``, the benchmark's key)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from estbench.errors import BadInput
from estbench.spaces.base import CellGraph, SearchSpace, TruthSource, table_source
from estbench.spaces.nb101 import oneshot3
from estbench.spaces.nb101 import spec as nb
from estbench.spaces.nb101.spec import Spec

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from estbench.data.lookup import DataDir

TRUTH_HOW_TO_GET = (
    "Get the official NAS-Bench-101 file nasbench_only108.tfrecord (github google-research/nasbench, ~500 MB), "
    "or the partial tables nasbench_vis_1k.json / nasbench_vis_20k.json (github tiga1231/nasbench-vis) or "
    "NASLib's zc_nasbench101.json, or an estbench CSV table (columns arch_str, cifar10_valid, ...)."
)


class NB101(SearchSpace):
    name = "nb101"
    enumerable = False
    protocols = ("iso",)
    vote_experts = ("relu_logdet", "grasp", "plain")  # the three best ZSEs of NB101 (paper Table A9)
    # stem channels, cells per stack (3 stacks), classes, input size: the official network
    default_shape = {"c": 128, "n": 3, "num_classes": 10, "resolution": 32}
    default_truth = ("cifar10-valid", "cifar10-valid-1seed")  # the tfrecord's mean, else one run (shared tables)
    truth_how_to_get = TRUTH_HOW_TO_GET

    @property
    def truth_sources(self) -> tuple[TruthSource, ...]:
        reader = "estbench.spaces.nb101.truth_tables"
        opt = {"by_key": self.enumerable}  # 1shot3: every record reaches its archs by module hash
        return (
            TruthSource("tfrecord", ("nb101/nasbench_only108.tfrecord", "nasbench_only108.tfrecord"),
                        f"{reader}:read_tfrecord", claims=".tfrecord", options=opt),
            TruthSource("naslib", ("nb101/naslib_zc_nb101.json", "nb101/zc_nasbench101.json"),
                        f"{reader}:read_naslib", claims="zc_nb101.json", options=opt),
            TruthSource("vis", ("nb101/nasbench_vis_1k.json", "nb101/nasbench_vis_20k.json"),
                        f"{reader}:read_vis", claims=".json", options=opt),
            table_source(self.name, default_epoch=108, open_space=not self.enumerable),
        )  # fmt: skip

    # ---- architectures --------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Spec:
        """The official NB101 sampler (a random upper-triangular matrix and ops until the
        pruned cell is valid): not uniform over the 423,624 graphs (small cells are
        drawn more often), as in the benchmark's own API."""
        return nb.random_spec(rng)

    def parse(self, text: str) -> Spec:
        return nb.parse(text)

    def to_str(self, arch: Spec) -> str:
        return nb.to_str(arch)

    def canonical(self, arch: Spec, protocol: str = "iso") -> str:
        return nb.module_hash(arch)

    def mutations(self, arch: Spec) -> list[Spec]:
        return nb.mutations(arch)

    def mutation_kind(self, arch: Spec, neighbour: Spec) -> str:
        return nb.mutation_kind(arch, neighbour)

    def op_counts(self, arch: Spec) -> dict[str, int]:
        return nb.op_counts(arch)

    def cell_graphs(self, arch_str: str) -> list[CellGraph]:
        return [nb.cell_graph(self.cell_of(self.parse(arch_str)))]

    def cell_of(self, arch: Spec) -> Spec:
        """The NB101 cell an architecture of this space is (itself here)."""
        return arch

    # ---- networks ---------------------------------------------------------------------
    def build(
        self, arch: Spec, c: int | None = None, n: int | None = None, num_classes: int | None = None, *, bn: bool = True
    ) -> nn.Module:
        from estbench.spaces.nb101.network import NB101Network

        s = self.shape(c=c, n=n, num_classes=num_classes)
        cell = self.cell_of(arch)
        return NB101Network(cell.matrix, cell.ops, s.c, s.n, s.num_classes, bn=bn)

    def structural(self, arch: Spec, what: str, live_only: bool = False, **shape: int) -> int:
        from estbench.spaces.nb101.cost import structural

        cell = self.cell_of(arch)
        return structural(cell.matrix, cell.ops, what, live_only, shape=self.shape(**shape))

    def supernet(self, **_: Any) -> nn.Module:
        raise BadInput(
            f"{self.name} has no weight-sharing supernet (the paper trains one on NB101-1shot search space 3): "
            "use --space nb101-1shot3"
        )

    def supernet_settings(self, weights: Mapping[str, Any]) -> dict[str, Any]:
        raise KeyError("no supernet")


class NB101OneShot3(NB101):
    """NAS-Bench-1shot1 search space 3, the paper's NB101 space: 5 choice blocks, 3 ops,
    the 14,580 architectures without loose ends its supernet is trained on (enumerated,
    ids in ``oneshot3.enumerate_archs`` order)."""

    name = "nb101-1shot3"
    enumerable = True
    supernet_shape = {"c": 16, "n": 3}  # 1shot1's one-shot model (the standalone network's stem is 128)

    @property
    def samplers(self):
        from estbench.spaces.nb101.samplers import SAMPLERS

        return SAMPLERS

    @property
    def presets(self):
        from estbench.spaces.nb101.presets import PRESETS

        return PRESETS

    def arch_list(self, data: DataDir | None) -> list[str]:
        return oneshot3.enumerate_archs()

    def sample(self, rng: np.random.Generator) -> Spec:
        return oneshot3.sample(rng)

    def parse(self, text: str) -> Spec:
        return oneshot3.parse(text)

    def to_str(self, arch: Spec) -> str:
        return oneshot3.to_str(arch)

    def canonical(self, arch: Spec, protocol: str = "iso") -> str:
        return oneshot3.canonical(arch)

    def mutations(self, arch: Spec) -> list[Spec]:
        return oneshot3.mutations(arch)

    def mutation_kind(self, arch: Spec, neighbour: Spec) -> str:
        return oneshot3.mutation_kind(arch, neighbour)

    def cell_of(self, arch: Spec) -> Spec:
        return oneshot3.to_nb101(arch)

    # ---- weight sharing (1shot1's one-shot model: fixed block width, ops shared per block) ----
    def supernet(
        self,
        *,
        c: int | None = None,
        n: int | None = None,
        num_classes: int | None = None,
        bn_affine: bool = False,
        dropout: float = 0.1,
        stacks: int = 3,
    ) -> nn.Module:
        from estbench.spaces.nb101.supernet import NB101Supernet

        c = self.supernet_shape["c"] if c is None else c
        n = self.supernet_shape["n"] if n is None else n
        classes = self.default_shape["num_classes"] if num_classes is None else num_classes
        return NB101Supernet(c, n, classes, stacks, bn_affine, dropout)

    def supernet_settings(self, weights: Mapping[str, Any]) -> dict[str, Any]:
        from estbench.spaces.nb101.supernet import supernet_settings

        return supernet_settings(weights)

    def supernet_layers(self, supernet: nn.Module) -> dict[str, list[str]]:
        from estbench.spaces.nb101.supernet import NB101Supernet, supernet_layers

        return supernet_layers(supernet) if isinstance(supernet, NB101Supernet) else super().supernet_layers(supernet)

    def checkpoint_info(self) -> dict[str, Any]:
        return {"ops": list(nb.OPS), "archs": "paper"}


NB101_SPACE = NB101()
ONESHOT3_SPACE = NB101OneShot3()
