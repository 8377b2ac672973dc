"""Load ground truth into the store from whichever source the user has."""

from __future__ import annotations

from pathlib import Path

from estbench.data.lookup import DataDir
from estbench.errors import MissingData
from estbench.spaces.base import SearchSpace
from estbench.store.store import Store
from estbench.truth.model import MetricInfo, TruthTable


def find_truth_source(space: SearchSpace, data: DataDir) -> Path:
    """The first of the space's truth sources present in the data directories."""
    return data.find(space.truth_candidates(), f"{space.name} ground truth", space.truth_how_to_get)


def read_truth(space: SearchSpace, path: Path, source: str, arch_ids: dict[str, int], metrics: list[str]) -> TruthTable:
    """Read ``path`` with the space's reader for ``source`` ("auto": recognised by the path)."""
    reader = space.truth_source(source) if source != "auto" else None  # unknown names fail before any file access
    if not path.exists():
        raise MissingData(f"truth file {path} does not exist")
    reader = reader or space.detect_truth_source(path)
    return reader.read(path, arch_ids, metrics or None)


def load_truth(
    store: Store, space: SearchSpace, data: DataDir, file: str | None, source: str, metrics: list[str]
) -> tuple[dict[str, MetricInfo], int]:
    """Read truth and write it to the store in one transaction; returns (metrics, n values)."""
    from estbench.runs.selection import arch_ids_by_string, ensure_archs

    path = Path(file) if file else find_truth_source(space, data)
    ensure_archs(store, space, data)
    tbl = read_truth(space, path, source, arch_ids_by_string(store, space.name), metrics)
    n = store.put_truth(space.name, tbl)
    return tbl.metrics, n
