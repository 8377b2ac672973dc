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
    added_archs: int = 0  # open spaces: architectures the file brought into the store
    unmatched: int = 0  # open spaces: key-only rows whose key no stored architecture has


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
    added = unmatched = 0
    if not space.enumerable:
        before_n = store.arch_count(space.name)
        tbl, unmatched = resolve_open(store, space, tbl)
        added = store.arch_count(space.name) - before_n
    if replace:
        before = {name: len(store.truth_arch_ids(space.name, name)) for name in tbl.metrics}
    else:
        before = check_no_shrink(store, space.name, tbl, path)
    n = store.put_truth(space.name, tbl)
    return TruthLoad(tbl.metrics, n, {k: v for k, v in before.items() if v}, tbl.duplicates, added, unmatched)


def resolve_open(store: Store, space: SearchSpace, tbl: TruthTable) -> tuple[TruthTable, int]:
    """An open space's table with every row on a stored arch id: architectures the store
    lacks are added (id -1 rows), key-only rows go to every stored architecture with
    that key (a row of the file's own architecture wins over a key row for the same
    arch). Returns the table and the number of key-only rows no stored arch matched."""
    from estbench.runs.selection import add_open_archs

    new = [s for s, aid in zip(tbl.arch_strs, tbl.arch_ids) if aid < 0 and s]
    ids = add_open_archs(store, space, new) if new else {}
    keys = tbl.keys or [""] * len(tbl.arch_ids)
    key_rows = [k for k, (s, aid) in enumerate(zip(tbl.arch_strs, tbl.arch_ids)) if aid < 0 and not s]
    by_key = store.arch_ids_by_key(space.name, [keys[k] for k in key_rows]) if key_rows else {}
    out_ids: list[int] = []
    out_strs: list[str] = []
    source: list[int] = []  # row of tbl behind each output row
    for k, (s, aid) in enumerate(zip(tbl.arch_strs, tbl.arch_ids)):
        if aid >= 0 or s:
            out_ids.append(aid if aid >= 0 else ids[s])
            out_strs.append(s)
            source.append(k)
    taken = set(out_ids)
    unmatched = 0
    for k in key_rows:
        matched = by_key.get(keys[k], [])
        unmatched += not matched
        for aid in matched:
            if aid not in taken:
                taken.add(aid)
                out_ids.append(aid)
                out_strs.append(f"<key {keys[k]}>")
                source.append(k)
    out = TruthTable(out_ids, out_strs, duplicates=tbl.duplicates)
    for name, info in tbl.metrics.items():
        vals = tbl.values[name]
        out.add(info, [vals[k] for k in source])
    return out, unmatched
