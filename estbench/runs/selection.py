"""The architectures of a space in the store, and the ``--archs`` selection language:

- ``all`` (default): every architecture
- ``A:B``: arch ids A <= id < B (either side may be empty)
- ``sample:N`` or ``sample:N@SEED``: N ids drawn without replacement (seed 0 by default)
- ``with-truth``: every architecture that has a truth value
- ``deiso``: one representative per isomorphism class (the smallest arch id)
- ``deiso:N`` or ``deiso:N@SEED``: N of those representatives drawn without replacement
- a path to a file with one architecture string per line (``#`` starts a comment)
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from estbench.data.lookup import DataDir
from estbench.errors import BadInput
from estbench.spaces.base import SearchSpace
from estbench.store.store import Store

_RANGE = re.compile(r"^(\d*):(\d*)$")
_SAMPLE = re.compile(r"^(sample|deiso):(\d+)(?:@(\d+))?$")


def ensure_archs(store: Store, space: SearchSpace, data: DataDir) -> int:
    """Fill the ``archs`` table for ``space`` once (official order, iso keys, flags)."""
    n = store.arch_count(space.name)
    if n:
        return n
    strs = space.arch_list(data)
    rows = [dict(arch_id=i, **space.describe(s)) for i, s in enumerate(strs)]
    store.put_archs(space.name, rows)
    return len(rows)


def arch_ids_by_string(store: Store, space: str) -> dict[str, int]:
    return {s: i for i, s in enumerate(store.arch_strings(space))}


def select_archs(store: Store, space: SearchSpace, spec: str = "all") -> list[int]:
    """Resolve an ``--archs`` spec to sorted arch ids (the archs table must be filled)."""
    name = space.name
    total = store.arch_count(name)
    spec = (spec or "all").strip()
    if spec == "all":
        return list(range(total))
    if m := _RANGE.match(spec):
        lo = int(m.group(1)) if m.group(1) else 0
        hi = int(m.group(2)) if m.group(2) else total
        if not 0 <= lo < hi <= total:
            raise BadInput(f"--archs {spec}: range must lie within 0:{total} and be non-empty")
        return list(range(lo, hi))
    if m := _SAMPLE.match(spec):
        pool = store.class_representatives(name) if m.group(1) == "deiso" else list(range(total))
        k, seed = int(m.group(2)), int(m.group(3) or 0)
        if not 0 < k <= len(pool):
            raise BadInput(f"--archs {spec}: sample size must be 1..{len(pool)}")
        return sorted(np.random.default_rng(seed).choice(pool, size=k, replace=False).tolist())
    if spec == "with-truth":
        ids = store.arch_ids_with_truth(name)
        if not ids:
            raise BadInput(f"--archs with-truth: no truth loaded for {name}; run `estbench truth load --space {name}`")
        return ids
    if spec == "deiso":
        return store.class_representatives(name)
    path = Path(spec)
    if path.is_file():
        return _archs_from_file(store, space, path)
    raise BadInput(
        f"--archs {spec!r}: expected all, A:B, sample:N[@SEED], with-truth, deiso, deiso:N[@SEED] "
        "or an existing file of arch strings"
    )


def _archs_from_file(store: Store, space: SearchSpace, path: Path) -> list[int]:
    ids = arch_ids_by_string(store, space.name)
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            arch = space.parse(line)
        except BadInput as exc:
            raise BadInput(f"{path}:{n}: {exc}") from None
        out.append(ids[space.to_str(arch)])
    if not out:
        raise BadInput(f"{path}: no architecture strings")
    return sorted(set(out))
