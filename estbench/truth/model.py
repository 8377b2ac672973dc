"""In-memory ground truth: metric descriptions and per-architecture values."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from estbench.errors import BadInput

_COLUMN_RE = re.compile(r"^(?P<base>[a-z0-9]+(?:_[a-z]+)+?)(?:_(?P<epoch>\d+)ep)?(?P<one>_1seed)?$")
SPLITS = ("test", "valid", "train")


@dataclass(frozen=True)
class MetricInfo:
    """A truth metric: ``name`` like ``cifar10-test``; the training epoch it was read
    at; whether it is a mean over training seeds; where it came from; ``surrogate``: a
    model's prediction (NB301's ONNX surrogate), not a measured training result: kept
    apart from measured truth (``truth load --merge`` refuses to mix them)."""

    name: str
    epoch: int
    seed_mean: bool
    source: str = ""
    higher_is_better: bool = True
    description: str = ""
    surrogate: bool = False


@dataclass
class TruthTable:
    """Values of several metrics for architectures given by id and string.

    ``values[metric][k]`` is the value for ``arch_ids[k]`` (None when missing). In an open
    space (``SearchSpace.enumerable`` False) a reader may give id -1 for an architecture
    the store lacks (``load_truth`` adds it), or, for a file that names architectures only
    by their canonical key (NB101's hash), an empty string and the key in ``keys[k]``
    (the value goes to every stored architecture with that ``iso_key``)."""

    arch_ids: list[int]
    arch_strs: list[str]
    metrics: dict[str, MetricInfo] = field(default_factory=dict)
    values: dict[str, list[float | None]] = field(default_factory=dict)
    duplicates: int = 0  # identical repeated rows the reader dropped
    keys: list[str] | None = None  # canonical keys of key-only rows (open spaces)

    def __post_init__(self) -> None:
        seen: dict[int, int] = {}
        for k, aid in enumerate(self.arch_ids):
            if aid < 0:
                continue
            if aid in seen:  # the store keeps one value per (arch, metric): a second would be dropped
                raise BadInput(f"architecture {self.arch_strs[k]} (id {aid}) appears twice in the truth table")
            seen[aid] = k

    def add(self, info: MetricInfo, values: list[float | None]) -> None:
        """Add a metric's values (None: missing); a non-finite value is refused."""
        if len(values) != len(self.arch_ids):
            raise BadInput(f"metric {info.name}: {len(values)} values for {len(self.arch_ids)} architectures")
        for k, v in enumerate(values):
            if v is not None and not math.isfinite(v):
                raise BadInput(
                    f"metric {info.name}: {v} for {self.arch_strs[k]} (id {self.arch_ids[k]}) is not a finite accuracy"
                )
        self.metrics[info.name] = info
        self.values[info.name] = values

    def count(self, metric: str) -> int:
        """How many architectures have a value of ``metric``."""
        return sum(v is not None for v in self.values[metric])

    def rows(self):
        """(arch_id, metric, value) for every non-missing value."""
        for name, vals in self.values.items():
            for aid, v in zip(self.arch_ids, vals):
                if v is not None:
                    yield aid, name, float(v)


def metric_from_column(column: str, default_epoch: int, source: str) -> MetricInfo:
    """Map an estbench-table column to a metric.

    ``cifar10_test`` -> ``cifar10-test`` (default epoch, seed mean);
    ``cifar10_valid_valid`` -> ``cifar10-valid-valid``;
    ``cifar10_test_1seed`` -> ``cifar10-test-1seed`` (one training run);
    ``cifar10_test_12ep_1seed`` -> ``cifar10-test-12ep-1seed`` (epoch 12, one run).
    """
    m = _COLUMN_RE.match(column)
    if not m or m.group("base").split("_")[-1] not in SPLITS:
        raise BadInput(
            f"{source}: column {column!r} is not a metric column; expected <dataset>_<split>"
            "[_<E>ep][_1seed] such as cifar10_test or cifar10_test_12ep_1seed"
        )
    epoch = int(m.group("epoch")) if m.group("epoch") else default_epoch
    one = bool(m.group("one"))
    name = column.replace("_", "-")
    what = f"{'one training run' if one else 'mean over training seeds'}, epoch {epoch}"
    return MetricInfo(name=name, epoch=epoch, seed_mean=not one, source=source, description=what)
