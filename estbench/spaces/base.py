"""The search-space protocol: everything runners, trainer, evaluator and analyses ask a
space. A space is one module or package under ``spaces/`` plus one registry line in
``spaces/__init__.py``; cell spaces implement it once in ``spaces.cell.CellSearchSpace``.

Nothing here imports torch; methods that build networks import it when called."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Hashable, Mapping, Protocol

from estbench.errors import BadInput
from estbench.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from estbench.data.lookup import DataDir
    from estbench.truth.model import TruthTable

Arch = Hashable  # a space's own architecture value (cell spaces: a tuple of op names)


@dataclass(frozen=True)
class NetShape:
    """The macro-skeleton settings of a space's networks (they enter config hashes)."""

    c: int = 16
    n: int = 5
    num_classes: int = 10
    resolution: int = 32


class Sampler(Protocol):
    """How supernet training draws architectures: ``step()`` -> the architectures of one
    step. Every draw comes from the generator the sampler was made with, so restoring
    that generator's state restores the sampler."""

    def step(self) -> list[Arch]: ...


@dataclass(frozen=True)
class TruthSource:
    """One kind of ground-truth file: where ``truth load`` looks for it (relative to a
    data directory), how ``--source auto`` recognises a given path (``claims``: "dir",
    a file suffix such as ".pth", or "file" for any other file) and its reader,
    ``reader(path, arch_ids, metrics=..., **options)`` as a lazy "module:function"."""

    kind: str
    paths: tuple[str, ...]
    reader: str
    claims: str = "file"
    options: Mapping[str, Any] = field(default_factory=dict)

    def recognises(self, path: Path) -> bool:
        if self.claims == "dir":
            return path.is_dir()
        if self.claims == "file":
            return not path.is_dir()
        return path.name.endswith(self.claims)

    def read(self, path: Path, arch_ids: dict[str, int], metrics: list[str] | None) -> TruthTable:
        module, _, attr = self.reader.partition(":")
        return getattr(importlib.import_module(module), attr)(path, arch_ids, metrics=metrics, **self.options)


def table_source(name: str, default_epoch: int = 200, open_space: bool = False) -> TruthSource:
    """The estbench truth table (CSV, optionally gzipped) of space ``name``; metric columns
    without an epoch suffix are read as results after ``default_epoch``; ``open_space``:
    its architectures enter the store with it (a space too large to list)."""
    paths = (f"{name}/{name}_truth.csv.gz", f"{name}/{name}_truth.csv", f"{name}_truth.csv.gz")
    options: dict[str, Any] = {"default_epoch": default_epoch}
    if open_space:
        options["open_space"] = True
    return TruthSource("table", paths, "estbench.truth.table:read_truth_table", options=options)


@dataclass(frozen=True)
class CellGraph:
    """One drawable graph of an architecture (a report draws it; spaces never import
    matplotlib). ``nodes``: the node labels, in drawing order (left to right: inputs
    first, output last); ``edges``: ``(source, target, op)`` with node positions, ``op``
    the operation on the edge, or ``""`` for a plain connection in spaces whose ops sit
    on the nodes (NB101: the node label carries the op); ``name``: which graph of the
    architecture it is ("cell", or "normal" / "reduce" in DARTS-like spaces). An edge
    whose op is ``none`` (the zero op) is kept: the drawer decides how to show it."""

    name: str
    nodes: tuple[str, ...]
    edges: tuple[tuple[int, int, str], ...]


class SearchSpace:
    """A benchmark search space. Subclasses implement the methods that raise
    NotImplementedError and set the class attributes."""

    name: str
    # False for a space too large to list (NB101's 423,624 graphs, NB301's 10^18): its archs
    # enter the store from truth files, samples (``--archs sample:N``) and arch files,
    # with ids in the order they arrive; ``arch_list`` is not called
    enumerable: bool = True
    protocols: tuple[str, ...] = ("iso",)  # the ``canonical`` keys it defines
    vote_experts: tuple[str, ...] = ()  # the default experts of ``vote`` (paper Table A9)
    presets: Mapping[str, Mapping[str, Any]] = {}  # supernet training presets (TrainConfig fields)
    samplers: Registry = Registry("sampler")  # supernet samplers: name -> factory(space, rng)
    default_shape: Mapping[str, int] = {"c": 16, "n": 5, "num_classes": 10, "resolution": 32}
    # the truth metrics analyses use when --truth is not given, in order of preference (the
    # first the store has; ``analysis.points.resolve_truth``)
    default_truth: tuple[str, ...] = ("cifar10-test",)
    # the one-shot estimator the paper reports as "OS" for this space (Table A9: os_acc, NB301 os_loss)
    default_oneshot: str = "os_acc"
    truth_how_to_get: str = "Write an estbench CSV truth table (columns index, arch_str, cifar10_test, ...)."
    builtin_truth: str | None = None  # a truth table shipped with estbench (``data.builtin``), the last fallback

    @property
    def truth_sources(self) -> tuple[TruthSource, ...]:
        """Where ground truth comes from, in lookup order."""
        return (table_source(self.name),)

    # ---- which architectures exist ----------------------------------------------
    def arch_list(self, data: DataDir | None) -> list[str]:
        """Every architecture string; the position in the list is the stable arch id
        (enumerable spaces only)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Arch:
        """One architecture drawn uniformly from the space."""
        raise NotImplementedError

    def parse(self, text: str) -> Arch:
        """The architecture of a string; BadInput saying why for a malformed one."""
        raise NotImplementedError

    def to_str(self, arch: Arch) -> str:
        raise NotImplementedError

    def canonical(self, arch: Arch, protocol: str = "iso") -> str:
        """The key shared by the architectures that ``protocol`` calls the same."""
        raise NotImplementedError

    def is_degenerate(self, arch: Arch) -> bool:
        """True when the network's output does not depend on its input."""
        return False

    def mutations(self, arch: Arch) -> list[Arch]:
        """All edit-distance-1 neighbours."""
        raise NotImplementedError

    def mutation_kind(self, arch: Arch, neighbour: Arch) -> str:
        """The name of the one decision change from ``arch`` to its neighbour ``neighbour``
        (cell spaces: ``"from_op->to_op"``); op-level bias groups mutation pairs by it."""
        raise NotImplementedError

    def op_counts(self, arch: Arch) -> dict[str, int]:
        """How often each operation (or decision value) occurs in ``arch``, for tables of
        architectures; spaces without such a notion return {}."""
        return {}

    def cell_graphs(self, arch_str: str) -> list[CellGraph]:
        """The architecture as drawable graphs (one per cell type); [] when the space has
        no drawing (the report then says so instead of drawing it). BadInput for a
        malformed string."""
        return []

    def mutation_pairs(self, arch_strs: list[str]) -> tuple[list[int], list[int], list[str]]:
        """Every ordered edit-distance-1 pair among ``arch_strs`` (positions in the list)
        with its ``mutation_kind``: (from positions, to positions, kinds). Neighbours
        outside the list are skipped. Spaces with a faster route may override it."""
        index = {s: i for i, s in enumerate(arch_strs)}
        src: list[int] = []
        dst: list[int] = []
        kinds: list[str] = []
        for i, s in enumerate(arch_strs):
            arch = self.parse(s)
            for nb in self.mutations(arch):
                j = index.get(self.to_str(nb))
                if j is not None:
                    src.append(i)
                    dst.append(j)
                    kinds.append(self.mutation_kind(arch, nb))
        return src, dst, kinds

    def describe(self, arch_str: str) -> dict[str, Any]:
        """The per-architecture facts stored in the ``archs`` table."""
        arch = self.parse(arch_str)
        iso = self.canonical(arch, "iso")
        return {
            "arch_str": arch_str,
            "iso_key": iso,
            "comp_key": self.canonical(arch, "computational") if "computational" in self.protocols else iso,
            "degenerate": self.is_degenerate(arch),
        }

    # ---- networks ---------------------------------------------------------------
    def shape(self, **overrides: int | None) -> NetShape:
        """The space's default shape with ``overrides`` (None values are ignored)."""
        return NetShape(**{**self.default_shape, **{k: v for k, v in overrides.items() if v is not None}})

    def build(
        self, arch: Arch, c: int | None = None, n: int | None = None, num_classes: int | None = None, *, bn: bool = True
    ) -> nn.Module:
        """The standalone network of the benchmark's macro skeleton. ``bn=False`` builds it
        without BatchNorm (synflow's network) with the same weights under one seed."""
        raise NotImplementedError

    def structural(self, arch: Arch, what: str, live_only: bool = False, **shape: int) -> int:
        """``params``, ``flops`` or ``relu`` of the standalone network; ``live_only`` counts
        only what lies on an input-to-output path."""
        raise NotImplementedError

    # ---- weight sharing ---------------------------------------------------------
    def supernet(
        self,
        *,
        c: int | None = None,
        n: int | None = None,
        num_classes: int | None = None,
        bn_affine: bool = False,
        dropout: float = 0.1,
    ) -> nn.Module:
        """The weight-sharing network; its ``forward(x, arch)`` computes one architecture."""
        raise NotImplementedError

    def supernet_settings(self, weights: Mapping[str, Any]) -> dict[str, Any]:
        """The ``supernet()`` arguments (shape, bn_affine) of the supernet that owns
        ``weights``; KeyError or IndexError when they are not such weights."""
        raise NotImplementedError

    def checkpoint_info(self) -> dict[str, Any]:
        """What a supernet checkpoint records about the space besides its name."""
        return {}

    def supernet_layers(self, supernet: nn.Module) -> dict[str, list[str]]:
        """Layer name -> the names of its parameters, in network order: the units of the
        gradient-similarity probe. Default: one layer per top-level module."""
        groups: dict[str, list[str]] = {}
        for name, _ in supernet.named_parameters():
            groups.setdefault(name.partition(".")[0], []).append(name)
        return groups

    def candidate(self, supernet: nn.Module, arch: Arch, bn: bool = True) -> nn.Module:
        """``arch`` as a plain ``net(x)`` view of ``supernet`` (zero-shot scoring of
        supernet candidates); ``bn=False`` bypasses its BatchNorms."""
        from estbench.estimators.zeroshot.candidate import SupernetCandidate

        return SupernetCandidate(supernet, arch, bn)

    def sampler_names(self) -> list[str]:
        return self.samplers.names()

    def make_sampler(self, name: str, rng: np.random.Generator) -> Sampler:
        """The sampler ``name`` drawing from ``rng`` (UnknownName with suggestions)."""
        return self.samplers.get(name)(self, rng)

    def trained_as(self, sampler: str) -> Callable[[Arch], Arch]:
        """The architecture a supernet trained with ``sampler`` trained for ``arch``: the
        one to score it through (itself unless the sampler trains class representatives)."""
        return getattr(self.samplers.get(sampler), "trained_as", _itself)(self)

    # ---- ground truth -----------------------------------------------------------
    def truth_candidates(self) -> tuple[str, ...]:
        """Relative paths where ground truth may be, in lookup order."""
        return tuple(p for s in self.truth_sources for p in s.paths)

    def truth_source(self, kind: str) -> TruthSource:
        for s in self.truth_sources:
            if s.kind == kind:
                return s
        known = ", ".join(["auto", *(s.kind for s in self.truth_sources)])
        raise BadInput(f"unknown truth source {kind!r} for {self.name} (known: {known})")

    def detect_truth_source(self, path: Path) -> TruthSource:
        """The source that reads ``path``: specific claims (dirs, suffixes) before "file"."""
        ranked = sorted(self.truth_sources, key=lambda s: s.claims == "file")
        for s in ranked:
            if s.recognises(path):
                return s
        raise BadInput(f"{path}: not a {self.name} truth source ({', '.join(s.kind for s in ranked)})")


def _itself(space: SearchSpace) -> Callable[[Arch], Arch]:
    return lambda arch: arch
