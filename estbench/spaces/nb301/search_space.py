"""``nb301``: NAS-Bench-301, the DARTS search space (about 10^18 architectures: an open
space whose architectures come from truth files, arch files and ``--archs sample:N``).
An architecture is a ``genotype.Genotype``; its string is estbench's form
(``genotype.to_str``), and arch files may use the DARTS, NASLib or ConfigSpace forms
(``genotype.parse``). The iso protocol merges operand order and node renumbering
(``genotype`` docstring).

Truth: NB301's training-data json directories and NASLib's 725-arch table are measured
(one training run each); the YAHPO ONNX surrogate's predictions are a metric marked
``surrogate`` in the ``metrics`` table, never merged with measured values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from estbench.spaces.base import CellGraph, SearchSpace, TruthSource, table_source
from estbench.spaces.nb301 import genotype as gt
from estbench.spaces.nb301.genotype import Genotype

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

TRUTH_HOW_TO_GET = (
    "Get NASLib's NB301 zero-cost table (naslib_zc_nb301.json / zc_nasbench301.json, github automl/NASLib: 725 "
    "archs with one run's validation accuracy), the NB301 training-data json directories (github automl/nasbench301, "
    "nb_301_v13_lc_iclr_final), or the YAHPO Gym nb301 ONNX surrogate (model_v2.onnx with encoding_v2.json and "
    "param_set_v2.R beside it, github slds-lmu/yahpo_data) for surrogate truth of the stored archs."
)


class NB301(SearchSpace):
    name = "nb301"
    enumerable = False
    protocols = ("iso",)
    vote_experts = ("plain", "grasp", "relu_logdet")  # the voting experts of the paper's Table A9 on NB301
    default_truth = ("cifar10-valid", "cifar10-valid-1seed")  # NB301's json dirs, else NASLib's one run
    default_oneshot = "os_loss"  # the paper's OS score for NB301 (Sec. 4.1: OS loss beats OS accuracy here)
    # initial channels, cells (reductions at n//3 and 2n//3), classes, input size: NB301's evaluation network
    default_shape = {"c": 32, "n": 8, "num_classes": 10, "resolution": 32}
    truth_how_to_get = TRUTH_HOW_TO_GET
    supernet_shape = {"c": 16, "n": 8}  # the paper's supernet (aw_nas nb301 config); the evaluation network has c=32

    @property
    def truth_sources(self) -> tuple[TruthSource, ...]:
        mod = "estbench.spaces.nb301"
        return (
            TruthSource("naslib", ("nb301/naslib_zc_nb301.json", "nb301/zc_nasbench301.json"),
                        f"{mod}.truth:read_naslib", claims=".json"),
            TruthSource("nb301-dir", ("nb301/nb_301_v13_lc_iclr_final",), f"{mod}.truth:read_nb301_dir", claims="dir"),
            TruthSource("surrogate", ("nb301/yahpo_surrogate/model_v2.onnx",), f"{mod}.surrogate:read_surrogate",
                        claims=".onnx"),
            table_source(self.name, default_epoch=100, open_space=True),
        )  # fmt: skip

    @property
    def samplers(self):
        from estbench.spaces.nb301.samplers import SAMPLERS

        return SAMPLERS

    @property
    def presets(self):
        from estbench.spaces.nb301.presets import PRESETS

        return PRESETS

    # ---- architectures --------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Genotype:
        return gt.sample(rng)

    def parse(self, text: str) -> Genotype:
        return gt.parse(text)

    def to_str(self, arch: Genotype) -> str:
        return gt.to_str(arch)

    def canonical(self, arch: Genotype, protocol: str = "iso") -> str:
        return gt.canonical(arch)

    def mutations(self, arch: Genotype) -> list[Genotype]:
        return gt.mutations(arch)

    def mutation_kind(self, arch: Genotype, neighbour: Genotype) -> str:
        return gt.mutation_kind(arch, neighbour)

    def op_counts(self, arch: Genotype) -> dict[str, int]:
        return gt.op_counts(arch)

    def cell_graphs(self, arch_str: str) -> list[CellGraph]:
        """The normal and the reduction cell: inputs c_{k-2}, c_{k-1}, nodes 0..3, the
        output c_{k} (plain edges: the concatenation)."""
        g = self.parse(arch_str)
        nodes = ("c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}")
        out = []
        for name, cell in g.cells():
            edges = [(i, 2 + k // 2, op) for k, (op, i) in enumerate(cell)]
            edges += [(2 + j, 6, "") for j in range(gt.NODES)]
            out.append(CellGraph(name, nodes, tuple(edges)))
        return out

    # ---- networks ---------------------------------------------------------------------
    def build(
        self,
        arch: Genotype,
        c: int | None = None,
        n: int | None = None,
        num_classes: int | None = None,
        *,
        bn: bool = True,
    ) -> nn.Module:
        from estbench.spaces.nb301.network import NB301Network

        s = self.shape(c=c, n=n, num_classes=num_classes)
        return NB301Network(arch, s.c, s.n, s.num_classes, bn=bn)

    def structural(self, arch: Genotype, what: str, live_only: bool = False, **shape: int) -> int:
        from estbench.spaces.nb301.cost import structural

        return structural(arch, what, live_only, shape=self.shape(**shape))

    # ---- weight sharing ---------------------------------------------------------------
    def supernet(
        self,
        *,
        c: int | None = None,
        n: int | None = None,
        num_classes: int | None = None,
        bn_affine: bool = False,
        dropout: float = 0.1,
    ) -> nn.Module:
        from estbench.spaces.nb301.supernet import NB301Supernet

        c = self.supernet_shape["c"] if c is None else c
        n = self.supernet_shape["n"] if n is None else n
        classes = self.default_shape["num_classes"] if num_classes is None else num_classes
        return NB301Supernet(c, n, classes, bn_affine, dropout)

    def supernet_settings(self, weights: Mapping[str, Any]) -> dict[str, Any]:
        from estbench.spaces.nb301.supernet import supernet_settings

        return supernet_settings(weights)

    def supernet_layers(self, supernet: nn.Module) -> dict[str, list[str]]:
        from estbench.spaces.nb301.supernet import NB301Supernet, supernet_layers

        return supernet_layers(supernet) if isinstance(supernet, NB301Supernet) else super().supernet_layers(supernet)

    def checkpoint_info(self) -> dict[str, Any]:
        return {"ops": list(gt.OPS)}


SPACE = NB301()
