"""NB101 truth files as estbench truth tables: the readers of ``truth.py`` yield neutral
records (module hash, pruned spec or none, metrics in percent), turned here into a
``TruthTable`` for ``estbench truth load``.

In ``nb101`` (an open space) a record with a spec is its architecture: new ones enter
the store with the file (id -1 rows). A record without a spec (the 20k table) and every
record in ``nb101-1shot3`` is a key row: its values go to every stored architecture with
that module hash (``TruthTable.keys``), since the same graph can be written with its
vertices in another order."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from estbench.errors import BadInput
from estbench.spaces.nb101 import spec as nb
from estbench.spaces.nb101 import truth as tr
from estbench.truth.files import load_json
from estbench.truth.model import TruthTable


def to_table(records: Iterable[tr.NB101Record], arch_ids: dict[str, int], metrics: list[str] | None, source: str,
             by_key: bool) -> TruthTable:  # fmt: skip
    """The table of ``records``; ``by_key``: every record a key row (else a record with a
    spec names its architecture by string)."""
    ids: list[int] = []
    strs: list[str] = []
    keys: list[str] = []
    values: dict[str, list[float | None]] = {}
    seen: dict[str, int] = {}
    n = 0
    for r in records:
        s = ""
        if r.matrix is not None and not by_key:
            s = nb.to_str(nb.prune(r.matrix, r.ops))
        tag = s or f"#{r.module_hash}"
        if tag in seen:  # the same architecture (or hash) twice: keep the first
            continue
        seen[tag] = n
        ids.append(arch_ids.get(s, -1) if s else -1)
        strs.append(s)
        keys.append(r.module_hash)
        for name, v in r.metrics.items():
            values.setdefault(name, [None] * n).append(float(v))
        n += 1
        for col in values.values():
            if len(col) < n:
                col.append(None)
    if not n:
        raise BadInput(f"{source}: no NB101 architectures in the file")
    names = sorted(values)
    if metrics:
        missing = [m for m in metrics if m not in values]
        if missing:
            raise BadInput(f"{source}: no metric {', '.join(missing)} in the file (has: {', '.join(names)})")
        names = list(dict.fromkeys(metrics))
    table = TruthTable(ids, strs, keys=keys)
    for name in names:
        table.add(tr.metric_info(name, source), values[name])
    return table


def read_tfrecord(path: Path, arch_ids: dict[str, int], metrics: list[str] | None = None, by_key: bool = False):
    """The official ``nasbench_only108.tfrecord`` (or ``nasbench_full``), streamed."""
    return to_table(tr.read_official(path), arch_ids, metrics, str(path), by_key)


def read_vis(path: Path, arch_ids: dict[str, int], metrics: list[str] | None = None, by_key: bool = False):
    """``nasbench_vis_1k.json`` (specs) or ``nasbench_vis_20k.json`` (hashes only)."""
    data = load_json(Path(path))
    with_spec = isinstance(data, dict) and "adjacency" in data
    records = tr.read_vis_1k(path) if with_spec else tr.read_vis_20k(path)
    return to_table(records, arch_ids, metrics, str(path), by_key)


def read_naslib(path: Path, arch_ids: dict[str, int], metrics: list[str] | None = None, by_key: bool = False):
    """NASLib's zero-cost NB101 table: one-seed validation accuracy of 500 archs."""
    return to_table((p.record for p in tr.read_naslib_zc(path)), arch_ids, metrics, str(path), by_key)
