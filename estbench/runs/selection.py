"""The architectures of a space in the store, and the ``--archs`` selection language:

- ``all`` (default): every architecture
- ``A:B``: arch ids A <= id < B (either side may be empty)
- ``sample:N`` or ``sample:N@SEED``: N ids drawn without replacement (seed 0 by default);
  in an open space (one too large to enumerate, ``SearchSpace.enumerable`` False) N
  distinct architectures drawn from the space itself with ``space.sample`` (the same
  seed gives the same ones), added to the store
- ``with-truth``: every architecture that has a truth value
- ``deiso``: one representative per isomorphism class (the smallest arch id)
- ``deiso:N`` or ``deiso:N@SEED``: N of those representatives drawn without replacement
- a path to a file with one architecture string per line (``#`` starts a comment); in an
  open space the file's architectures the store lacks are added to it
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
    """Fill the ``archs`` table for ``space`` once (official order, iso keys, flags); an
    open space's archs arrive with truth, samples and files instead."""
    n = store.arch_count(space.name)
    if n or not space.enumerable:
        return n
    strs = space.arch_list(data)
    rows = [dict(arch_id=i, **space.describe(s)) for i, s in enumerate(strs)]
    store.put_archs(space.name, rows)
    return len(rows)


def arch_ids_by_string(store: Store, space: str) -> dict[str, int]:
    return {s: i for i, s in enumerate(store.arch_strings(space))}


_SPEC_HELP = "expected all, A:B, sample:N[@SEED], with-truth, deiso, deiso:N[@SEED] or an existing file of arch strings"


def check_archs_spec(space: SearchSpace, spec: str | None) -> None:
    """Refuse a malformed ``--archs`` before any store is opened: an empty spec, an
    empty range or sample, a file that is not text or holds a malformed arch string."""
    spec = _normalized(spec)
    if m := _RANGE.match(spec):
        if m.group(1) and m.group(2) and int(m.group(1)) >= int(m.group(2)):
            raise BadInput(f"--archs {spec}: the range is empty (A:B means A <= id < B)")
    elif m := _SAMPLE.match(spec):
        if int(m.group(2)) < 1:
            raise BadInput(f"--archs {spec}: sample size must be at least 1")
    elif spec not in ("all", "with-truth", "deiso"):
        _arch_file_strings(space, _arch_file(spec))


def _normalized(spec: str | None) -> str:
    if spec is None:
        return "all"
    if not spec.strip():
        raise BadInput(f"--archs {spec!r} is empty; {_SPEC_HELP} (all scores every architecture)")
    return spec.strip()


def _arch_file(spec: str) -> Path:
    path = Path(spec)
    if not path.is_file():
        raise BadInput(f"--archs {spec!r}: {_SPEC_HELP}")
    return path


def select_archs(store: Store, space: SearchSpace, spec: str | None = "all") -> list[int]:
    """Resolve an ``--archs`` spec to sorted arch ids (the archs table must be filled)."""
    name = space.name
    total = store.arch_count(name)
    spec = _normalized(spec)
    if not space.enumerable:
        if (m := _SAMPLE.match(spec)) and m.group(1) == "sample":
            return _sample_open(store, space, int(m.group(2)), int(m.group(3) or 0))
        if not total and spec not in ("with-truth",) and not Path(spec).is_file():
            raise BadInput(
                f"--archs {spec}: the store has no {name} architectures yet ({name} is too large to list): "
                f"load truth (`estbench truth load --space {name} --file F`), draw some (`--archs sample:N`) "
                "or pass a file of architecture strings"
            )
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
    return _archs_from_file(store, space, _arch_file(spec))


def _arch_file_strings(space: SearchSpace, path: Path) -> list[str]:
    """The canonical strings of a file's architectures; BadInput (one line) for a file
    that cannot be read, is not text, or holds a malformed architecture string."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"--archs {path}: cannot read it ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
        bad = text.find("\0")
    except UnicodeDecodeError as exc:
        bad = exc.start
    if bad >= 0:
        raise BadInput(f"--archs {path}: not a text file of architecture strings (binary data at offset {bad})")
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(space.to_str(space.parse(line)))
        except BadInput as exc:
            raise BadInput(f"{path}:{n}: {exc}") from None
    if not out:
        raise BadInput(f"{path}: no architecture strings")
    return out


def add_open_archs(store: Store, space: SearchSpace, strs: list[str]) -> dict[str, int]:
    """The ids of ``strs`` (canonical strings) in an open space, adding those the store lacks."""
    return store.add_archs(space.name, [space.describe(s) for s in dict.fromkeys(strs)])


def _sample_open(store: Store, space: SearchSpace, k: int, seed: int) -> list[int]:
    """``k`` distinct architectures drawn with ``space.sample`` from ``seed``, added to the store."""
    rng = np.random.default_rng(seed)
    strs: dict[str, None] = {}
    tries = 0
    while len(strs) < k:
        tries += 1
        if tries > 20 * k + 1000:
            raise BadInput(f"--archs sample:{k}: drew only {len(strs)} distinct {space.name} architectures")
        strs[space.to_str(space.sample(rng))] = None
    return sorted(add_open_archs(store, space, list(strs)).values())


def _archs_from_file(store: Store, space: SearchSpace, path: Path) -> list[int]:
    strs = _arch_file_strings(space, path)
    if not space.enumerable:
        return sorted(set(add_open_archs(store, space, strs).values()))
    ids = arch_ids_by_string(store, space.name)
    unknown = [s for s in strs if s not in ids]
    if unknown:
        raise BadInput(f"{path}: architecture {unknown[0]} is not in the store's {space.name} architectures")
    return sorted({ids[s] for s in strs})
