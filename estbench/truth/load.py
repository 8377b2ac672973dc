"""Load ground truth into the store from whichever source the user has."""

from __future__ import annotations

from pathlib import Path

from estbench.data.lookup import DataDir
from estbench.errors import BadInput, MissingData
from estbench.spaces.base import SearchSpace
from estbench.store.store import Store
from estbench.truth.model import MetricInfo, TruthTable

SOURCES = ("auto", "table", "nats-simple", "nb201-pth")
PTH_NAMES = ("NAS-Bench-201-v1_1-096897.pth", "NAS-Bench-201-v1_0-e61699.pth")


def _detect(path: Path) -> str:
    if path.is_dir():
        return "nats-simple"
    if path.suffix == ".pth":
        return "nb201-pth"
    return "table"


def find_truth_source(space: SearchSpace, data: DataDir) -> Path:
    """The first truth source present: estbench table, NATS simple dir, NB201 .pth."""
    cands = tuple(space.truth_table_paths) + tuple(getattr(space, "official_paths", ()))
    cands += tuple(f"{space.name}/{n}" for n in PTH_NAMES) + PTH_NAMES
    return data.find(
        cands,
        f"{space.name} ground truth",
        "Get the official NATS-Bench topology directory NATS-tss-v1_0-3ffb9-simple (github D-X-Y/NATS-Bench), "
        "a NAS-Bench-201 .pth archive, or an estbench CSV table (columns index, arch_str, cifar10_test, ...).",
    )


def read_truth(space: SearchSpace, path: Path, source: str, arch_ids: dict[str, int], metrics: list[str]) -> TruthTable:
    from estbench.truth import table

    if source not in SOURCES:
        raise BadInput(f"unknown truth source {source!r} (known: {', '.join(SOURCES)})")
    if not path.exists():
        raise MissingData(f"truth file {path} does not exist")
    kind = _detect(path) if source == "auto" else source
    epoch = getattr(space, "final_epoch", 200)
    if kind == "table":
        return table.read_truth_table(path, arch_ids, epoch, metrics or None)
    from estbench.truth import official

    readers = {"nats-simple": official.read_nats_simple, "nb201-pth": official.read_nb201_pth}
    return readers[kind](path, arch_ids, metrics=metrics or None)


def load_truth(
    store: Store, space: SearchSpace, data: DataDir, file: str | None, source: str, metrics: list[str]
) -> tuple[dict[str, MetricInfo], int]:
    """Read truth and write it to the store in one transaction; returns (metrics, n values)."""
    from estbench.selection import arch_ids_by_string, ensure_archs

    path = Path(file) if file else find_truth_source(space, data)
    ensure_archs(store, space, data)
    tbl = read_truth(space, path, source, arch_ids_by_string(store, space.name), metrics)
    n = store.put_truth(space.name, tbl)
    return tbl.metrics, n
