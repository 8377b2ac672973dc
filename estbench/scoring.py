"""Score architectures with registered estimators and cache every value in the store.

Resumable by construction: before work, the keys already in the store are skipped;
rows are written in chunks, each in its own transaction, so a killed run loses at
most the chunk in flight and a rerun computes only what is missing."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from estbench.config import ScoreConfig, config_hash
from estbench.estimators import ESTIMATORS
from estbench.spaces.base import SearchSpace
from estbench.store.store import Store

Progress = Callable[[str, int, int], None]  # (estimator, advance, total)


@dataclass
class ScoreSummary:
    estimator: str
    config_hash: str
    requested: int
    cached: int
    computed: int
    failed: int
    nonfinite: int
    seconds: float


def _status(value: float) -> str:
    return "ok" if math.isfinite(value) else "nonfinite"


def score_structural(
    store: Store, space: SearchSpace, name: str, arch_ids: list[int], cfg: ScoreConfig, progress: Progress | None = None
) -> ScoreSummary:
    entry = ESTIMATORS.entry(name)
    meta = entry.meta
    shape = vars(space.shape(c=cfg.c, n=cfg.n, num_classes=cfg.num_classes, resolution=cfg.resolution))
    settings = cfg.settings_for(tuple(meta["settings"]), shape)
    chash = config_hash({"estimator": name, **settings})
    store.put_estimator(name, meta["kind"], meta["higher_is_better"], meta.get("description", ""))
    store.put_config(chash, name, settings)
    done = store.done_arch_ids(space.name, name, chash, epoch=0, seed=0, n_batches=1)
    todo = [a for a in arch_ids if a not in done]
    summary = ScoreSummary(name, chash, len(arch_ids), len(arch_ids) - len(todo), 0, 0, 0, 0.0)
    if progress:
        progress(name, len(arch_ids) - len(todo), len(arch_ids))
    if not todo:
        return summary
    fn = entry.load()
    strs = store.arch_strings(space.name)
    run_id = store.start_run("score", space.name, name, {"estimator": name, "config_hash": chash, **settings})
    start = time.perf_counter()
    status = "interrupted"
    try:
        for lo in range(0, len(todo), cfg.chunk_size):
            rows = []
            for aid in todo[lo : lo + cfg.chunk_size]:
                t0 = time.perf_counter()
                try:
                    value, st, detail = fn(space, space.parse(strs[aid]), **shape), None, None
                    st = _status(value)
                except Exception as exc:  # recorded as a failed row; the run goes on
                    value, st, detail = None, "failed", f"{type(exc).__name__}: {exc}"
                rows.append(
                    (space.name, aid, name, chash, 0, 0, 0, value, st, detail, time.perf_counter() - t0, run_id)
                )
                summary.failed += st == "failed"
                summary.nonfinite += st == "nonfinite"
            store.upsert_scores(rows)
            summary.computed += len(rows)
            if progress:
                progress(name, len(rows), len(arch_ids))
        status = "done"
    finally:
        summary.seconds = time.perf_counter() - start
        store.finish_run(run_id, status, summary.computed)
    return summary


def score(
    store: Store,
    space: SearchSpace,
    names: list[str],
    arch_ids: list[int],
    cfg: ScoreConfig,
    progress: Progress | None = None,
) -> list[ScoreSummary]:
    """Score ``arch_ids`` with the structural estimators in ``names``."""
    return [score_structural(store, space, name, arch_ids, cfg, progress) for name in names]
