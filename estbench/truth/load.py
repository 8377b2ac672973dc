"""Load ground truth into the store from whichever source the user has."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from estbench.data.lookup import DataDir
from estbench.errors import BadInput, MissingData
from estbench.spaces.base import SearchSpace
from estbench.store.store import Store
from estbench.truth.model import MetricInfo, TruthTable


def find_truth_source(space: SearchSpace, data: DataDir, source: str = "auto") -> Path:
    """The first of the space's truth sources present in the data directories (only
    ``source``'s paths when one is named), else the table shipped with estbench for the
    space (if any, and only for "auto" or "table")."""
    from estbench.data.builtin import builtin_path

    candidates = space.truth_candidates() if source == "auto" else space.truth_source(source).paths
    found = data.find_optional(candidates)
    shipped = builtin_path(space.builtin_truth) if space.builtin_truth and source in ("auto", "table") else None
    if found is None and shipped is not None:
        return shipped
    what = f"{space.name} ground truth" + (f" ({source})" if source != "auto" else "")
    return found or data.find(candidates, what, space.truth_how_to_get)


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
    unmatched: int = 0  # key-only rows whose key no stored architecture has
    conflicts: int = 0  # --merge: archs whose stored value differs from the file's (the stored kept)


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
    merge: bool = False,
) -> TruthLoad:
    """Read truth and write it to the store in one transaction. A metric the store holds
    is replaced by the file's values; without ``replace`` only when none of its values
    would be lost. ``merge``: the file's values are added to the store's instead (partial
    tables of one metric, such as NB101's), the store's value kept where both have one.
    Every check runs before the first write (an open space's new archs included)."""
    from estbench.runs.selection import arch_ids_by_string, ensure_archs

    path = Path(file) if file else find_truth_source(space, data, source)
    ensure_archs(store, space, data)
    tbl = read_truth(space, path, source, arch_ids_by_string(store, space.name), metrics)
    added = unmatched = 0
    open_rows = not space.enumerable or any(a < 0 for a in tbl.arch_ids)
    if open_rows:  # every check before the first write: a refused file adds no archs
        tbl, unmatched = resolve_open(store, space, tbl, add=False)
    if merge:
        check_same_kind(store, space.name, tbl)
        tbl, conflicts = merged(store, space.name, tbl)
    else:
        conflicts = 0
    if replace or merge:
        before = {name: len(store.truth_arch_ids(space.name, name)) for name in tbl.metrics}
    else:
        before = check_no_shrink(store, space.name, tbl, path)
    if open_rows and any(a < 0 for a in tbl.arch_ids):
        n_archs = store.arch_count(space.name)
        tbl = _with_new_archs(store, space, tbl)
        added = store.arch_count(space.name) - n_archs
    n = store.put_truth(space.name, tbl)
    return TruthLoad(tbl.metrics, n, {k: v for k, v in before.items() if v and not merge}, tbl.duplicates, added,
                     unmatched, conflicts if merge else 0)  # fmt: skip


def check_same_kind(store: Store, space: str, tbl: TruthTable) -> None:
    """BadInput when ``--merge`` would put a surrogate's predictions and measured values
    into one metric: a surrogate metric is never averaged with measured truth."""
    for name, info in tbl.metrics.items():
        have = store.metric_info(space, name)
        if have is not None and have.surrogate != info.surrogate:
            kinds = ("a surrogate's predictions", "measured truth")
            mine, theirs = kinds[not info.surrogate], kinds[not have.surrogate]
            raise BadInput(
                f"--merge: {name} holds {theirs} in the store and the file gives {mine}; a surrogate metric is "
                "never averaged with measured truth (load it without --merge to replace the metric)"
            )


def merged(store: Store, space: str, tbl: TruthTable) -> tuple[TruthTable, int]:
    """The store's values of the table's metrics with the file's added where the store has
    none; the number of archs where both have a value and they differ (the store's kept)."""
    old = {name: store.truth_values(space, name) for name in tbl.metrics}
    ids = list(dict.fromkeys([*tbl.arch_ids, *(a for d in old.values() for a in d)]))
    pos = {a: k for k, a in enumerate(tbl.arch_ids)}
    strs = [tbl.arch_strs[pos[a]] if a in pos else f"<id {a}>" for a in ids]
    out = TruthTable(ids, strs, duplicates=tbl.duplicates)
    conflicts = 0
    for name, info in tbl.metrics.items():
        have, vals = old[name], tbl.values[name]
        col = []
        for a in ids:
            new = vals[pos[a]] if a in pos else None
            if a in have:
                conflicts += new is not None and abs(new - have[a]) > 1e-9
                col.append(have[a])
            else:
                col.append(new)
        out.add(info, col)
    return out, conflicts


def _with_new_archs(store: Store, space: SearchSpace, tbl: TruthTable) -> TruthTable:
    """``tbl`` with its placeholder ids (new archs of an open space) replaced by the ids
    the store gives them when they are added."""
    from estbench.runs.selection import add_open_archs

    new = [s for s, aid in zip(tbl.arch_strs, tbl.arch_ids) if aid < 0]
    ids = add_open_archs(store, space, new)
    out = TruthTable([aid if aid >= 0 else ids[s] for s, aid in zip(tbl.arch_strs, tbl.arch_ids)], tbl.arch_strs,
                     duplicates=tbl.duplicates)  # fmt: skip
    for name, info in tbl.metrics.items():
        out.add(info, tbl.values[name])
    return out


def resolve_open(store: Store, space: SearchSpace, tbl: TruthTable, add: bool = True) -> tuple[TruthTable, int]:
    """A table with every row on a stored arch id: architectures an open space's store
    lacks are added (id -1 rows), key-only rows (any space) go to every stored
    architecture with that key (a row of the file's own architecture wins over a key row for the same
    arch). Returns the table and the number of key-only rows no stored arch matched.
    ``add=False`` writes nothing: new archs keep distinct negative placeholder ids
    (``_with_new_archs`` adds them once every check passed)."""
    from estbench.runs.selection import add_open_archs

    new = list(dict.fromkeys(s for s, aid in zip(tbl.arch_strs, tbl.arch_ids) if aid < 0 and s))
    if new and space.enumerable:
        raise BadInput(f"architecture {new[0]} is not in the {space.name} space")
    for s in new:
        space.parse(s)  # a malformed string: one line before anything is written
    if add:
        ids = add_open_archs(store, space, new) if new else {}
    else:
        ids = {s: -2 - k for k, s in enumerate(new)}
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
