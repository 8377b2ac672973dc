"""The estbench truth-table format: a CSV (optionally gzipped) with an ``arch_str``
column, an optional ``index`` (arch id) column and one column per metric, named
``<dataset>_<split>[_<E>ep][_1seed]`` (e.g. ``cifar10_test``, ``cifar10_valid_valid``).
Empty cells are missing values; nan and inf are refused. A row may repeat an
architecture only with the same values."""

from __future__ import annotations

import csv
import gzip
import io
import math
from pathlib import Path

from estbench.errors import BadInput, MissingData
from estbench.truth.model import TruthTable, metric_from_column


def _open(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise MissingData(f"truth file {path} does not exist.")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with _open(path) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise BadInput(f"{path}: empty truth file (no header row)")
            return [h.strip() for h in header], list(reader)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInput(f"{path}: not a readable CSV truth table ({exc})") from None


def read_arch_list(path: Path) -> list[str]:
    """Architecture strings ordered by the ``index`` column."""
    header, rows = _read_rows(path)
    for col in ("index", "arch_str"):
        if col not in header:
            raise BadInput(f"{path}: missing column {col!r} (has: {', '.join(header)})")
    i_idx, i_arch = header.index("index"), header.index("arch_str")
    pairs = sorted((_index(path, n, r[i_idx]), r[i_arch]) for n, r in enumerate(rows, start=2))
    if [p[0] for p in pairs] != list(range(len(pairs))):
        raise BadInput(f"{path}: the index column is not 0..{len(pairs) - 1}")
    return [p[1] for p in pairs]


def read_truth_table(
    path: Path, arch_ids: dict[str, int], default_epoch: int, metrics: list[str] | None = None, open_space: bool = False
) -> TruthTable:
    """Read the table; ``arch_ids`` maps arch string -> id (the space's official order).
    Rows whose ``index`` disagrees with the string's id are rejected. In an open space
    (``open_space``) an architecture the store lacks gets id -1 (``load_truth`` adds it)
    and ``index`` is ignored (ids are the store's, in arrival order)."""
    header, rows = _read_rows(path)
    if "arch_str" not in header:
        raise BadInput(f"{path}: missing column 'arch_str' (has: {', '.join(header)})")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise BadInput(f"{path}: column(s) {', '.join(twice)} appear more than once in the header")
    metric_cols = [h for h in header if h not in ("index", "arch_str")]
    if not metric_cols:
        raise BadInput(f"{path}: no metric columns besides index/arch_str")
    infos = {c: metric_from_column(c, default_epoch, str(path)) for c in metric_cols}
    if metrics:
        known = {i.name: c for c, i in infos.items()}
        missing = [m for m in metrics if m not in known]
        if missing:
            raise BadInput(f"{path}: no column for metric(s) {', '.join(missing)} (has: {', '.join(sorted(known))})")
        metric_cols = [known[m] for m in metrics]
    i_arch = header.index("arch_str")
    i_idx = header.index("index") if "index" in header else None
    ids, strs = [], []
    cols = {c: header.index(c) for c in metric_cols}
    vals: dict[str, list[float | None]] = {c: [] for c in metric_cols}
    first: dict = {}  # arch id (open space: string) -> (line, values) of its first row
    duplicates = 0
    for n, r in enumerate(rows, start=2):
        if len(r) != len(header):
            raise BadInput(f"{path}:{n}: {len(r)} fields, header has {len(header)}")
        s = r[i_arch]
        if s not in arch_ids and not open_space:
            raise BadInput(f"{path}:{n}: architecture {s!r} is not in the space")
        aid = arch_ids.get(s, -1)
        if i_idx is not None and not open_space and _index(path, n, r[i_idx]) != aid:
            raise BadInput(f"{path}:{n}: index {r[i_idx]} but {s} has id {aid} in the official order")
        row = [_value(path, n, c, r[i]) for c, i in cols.items()]
        key = s if open_space else aid
        if key in first:
            line, had = first[key]
            if row != had:
                raise BadInput(f"{path}:{n}: architecture {s} (id {aid}) has other values than on line {line}")
            duplicates += 1  # an identical repeat adds nothing
            continue
        first[key] = (n, row)
        ids.append(aid)
        strs.append(s)
        for c, v in zip(cols, row):
            vals[c].append(v)
    table = TruthTable(ids, strs, duplicates=duplicates)
    for c in metric_cols:
        table.add(infos[c], vals[c])
    return table


def _index(path: Path, line: int, cell: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise BadInput(f"{path}:{line}: index {cell!r} is not an integer") from None


def _value(path: Path, line: int, column: str, cell: str) -> float | None:
    """A cell's accuracy; None when empty. nan and inf are refused: a missing value is an empty cell."""
    cell = cell.strip()
    if not cell:
        return None
    try:
        value = float(cell)
    except ValueError:
        raise BadInput(f"{path}:{line}: column {column}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise BadInput(
            f"{path}:{line}: column {column}: {cell!r} is not a finite accuracy (leave a missing value empty)"
        )
    return value
