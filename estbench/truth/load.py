"""Load ground truth into the store from whichever source the user has."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from estbench.data.lookup import DataDir
from estbench.errors import BadInput, MissingData
from estbench.spaces.base import SearchSpace
from estbench.store.store import Store
from estbench.truth.model import MetricInfo, TruthTable


def find_truth_source(space: SearchSpace, data: DataDir) -> Path:
    """The first of the space's truth sources present in the data directories, else the
    table shipped with estbench for the space (if any)."""
    from estbench.data.builtin import builtin_path

    found = data.find_optional(space.truth_candidates())
    shipped = builtin_path(space.builtin_truth) if space.builtin_truth else None
    if found is None and shipped is not None:
        return shipped
    return found or data.find(space.truth_candidates(), f"{space.name} ground truth", space.truth_how_to_get)


def read_truth(space: SearchSpace, path: Path, source: str, arch_ids: dict[str, int], metrics: list[str]) -> TruthTable:
    """Read ``path`` with the space's reader for ``source`` ("auto": recognised by the path)."""
    reader = space.truth_source(source) if source != "auto" else None  # unknown names fail before any file access
    if not path.exists():
        raise MissingData(f"truth file {path} does not exist")
    reader = reader or space.detect_truth_source(path)
    return reader.read(path, arch_ids, metrics or None)


@dataclass(frozen=True)
class TruthLoad:
    """What ``load_truth`` did: the metrics loaded, the values written (now in the store),
    per metric how many values the store had before, and identical repeated rows dropped."""

    metrics: dict[str, MetricInfo]
    n_values: int
    replaced: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0


def check_no_shrink(store: Store, space: str, table: TruthTable, path: Path) -> dict[str, int]:
    """Per metric, how many values the store has; BadInput when loading ``table`` would
    drop some of them (the file lacks archs the store has a value for)."""
    before, shrinks = {}, []
    for name in table.metrics:
        old = store.truth_arch_ids(space, name)
        before[name] = len(old)
        new = {aid for aid, v in zip(table.arch_ids, table.values[name]) if v is not None}
        lost = [aid for aid in old if aid not in new]
        if lost:
            shrinks.append(
                f"{name}: the store has {len(old)} values, the file {len(new)} (it lacks {len(lost)} of them)"
            )
    if shrinks:
        raise BadInput(
            f"{path} would drop truth values: {'; '.join(shrinks)}; pass --replace to replace "
            "these metrics with the file's values, or load a file that covers them"
        )
    return before


def load_truth(
    store: Store,
    space: SearchSpace,
    data: DataDir,
    file: str | None,
    source: str,
    metrics: list[str],
    replace: bool = False,
) -> TruthLoad:
    """Read truth and write it to the store in one transaction. A metric the store holds
    is replaced by the file's values; without ``replace`` only when none of its values
    would be lost."""
    from estbench.runs.selection import arch_ids_by_string, ensure_archs

    path = Path(file) if file else find_truth_source(space, data)
    ensure_archs(store, space, data)
    tbl = read_truth(space, path, source, arch_ids_by_string(store, space.name), metrics)
    if replace:
        before = {name: len(store.truth_arch_ids(space.name, name)) for name in tbl.metrics}
    else:
        before = check_no_shrink(store, space.name, tbl, path)
    n = store.put_truth(space.name, tbl)
    return TruthLoad(tbl.metrics, n, {k: v for k, v in before.items() if v}, tbl.duplicates)
