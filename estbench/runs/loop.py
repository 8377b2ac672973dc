"""The one resumable scoring loop, shared by structural, zero-shot and one-shot scoring.

A job says which score keys it fills (grouped: every group shares one expensive setup,
e.g. a seed's batches or an epoch's supernet) and how to compute the rows of one
architecture. The loop, for every group: asks the store which architectures already
have each key, skips them, sets the group up only if anything is missing, computes
the rest architecture by architecture, writes the rows in chunks (one transaction
each, so a kill loses at most the chunk in flight and a rerun computes only what is
missing), and records the run with its status and row count (counted in each chunk's
transaction, so the count is true even after a kill -9)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol, Sequence

from estbench.errors import EstbenchError
from estbench.store import ScoreKey, ScoreRow, Store
from estbench.store.runs import new_run_id

Progress = Callable[[str, int, int], None]  # (task, advance, total)


@dataclass
class ScoreSummary:
    estimator: str
    config_hash: str
    requested: int = 0
    cached: int = 0
    computed: int = 0
    failed: int = 0
    nonfinite: int = 0
    seconds: float = 0.0


@dataclass
class Group:
    """Keys that share one setup; ``label`` names the progress task."""

    label: str
    keys: list[ScoreKey]
    context: dict = field(default_factory=dict)


class Job(Protocol):
    name: str  # the run row's name
    config: dict  # the run row's config
    chunk_size: int

    def groups(self) -> list[Group]: ...

    def prepare(self, group: Group) -> None:
        """Set the group up (load a checkpoint, build batches); only called if work is left."""

    def compute(self, group: Group, arch_id: int, keys: list[ScoreKey], run_id: str) -> Iterable[ScoreRow]:
        """The rows of one architecture for the missing ``keys``."""


def run_job(
    store: Store,
    space: str,
    job: Job,
    arch_ids: Sequence[int],
    progress: Progress | None = None,
    threads: int | None = None,
    warn: Callable[[str], None] | None = None,
    executor=None,
) -> list[ScoreSummary]:
    """Fill every key of ``job`` for ``arch_ids``; returns one summary per (estimator, config).
    ``threads`` (torch's CPU threads) goes into the run row; with ``warn``, a job about to
    add rows to configs that runs with other thread counts wrote says so first.
    ``executor`` (:mod:`.executors`; default local) computes the architectures; this
    process alone writes their rows, in chunks, as they arrive."""
    if executor is None:
        from estbench.runs.executors import LocalExecutor

        executor = LocalExecutor()
    groups = job.groups()
    summaries: dict[tuple[str, str], ScoreSummary] = {}
    for g in groups:
        for k in g.keys:
            s = summaries.setdefault((k.estimator, k.config_hash), ScoreSummary(k.estimator, k.config_hash))
            s.requested += len(arch_ids)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        run = None  # a runs row only once there is work
        for g in groups:
            # asked per group, just before its work: what a concurrent run wrote meanwhile is skipped
            done = {k: store.done_arch_ids(k) for k in g.keys}
            for k in g.keys:
                summaries[(k.estimator, k.config_hash)].cached += sum(a in done[k] for a in arch_ids)
            todo = [(a, ks) for a in arch_ids if (ks := [k for k in g.keys if a not in done[k]])]
            if progress:
                progress(g.label, len(arch_ids) - len(todo), len(arch_ids))
            if not todo:
                continue
            if run is None:
                if warn:
                    _warn_mixed_threads(store, space, groups, threads, warn)
                run = stack.enter_context(recorded_run(store, "score", space, job.name, job.config, threads))
            rows: list[ScoreRow] = []
            for i, (_arch_id, keys, computed) in enumerate(executor.run(job, g, todo, run.run_id), start=1):
                rows += computed
                for k in keys:
                    summaries[(k.estimator, k.config_hash)].computed += 1
                if i % job.chunk_size == 0 or i == len(todo):
                    run.written += store.upsert_run_scores(run.run_id, rows)
                    _count(summaries, rows)
                    rows = []
                if progress:
                    progress(g.label, 1, len(arch_ids))
    for s in summaries.values():
        s.seconds = time.perf_counter() - start
    return list(summaries.values())


@dataclass
class RunRecord:
    run_id: str
    written: int = 0


@contextlib.contextmanager
def recorded_run(
    store: Store, kind: str, space: str, name: str, config: dict, threads: int | None = None
) -> Iterator[RunRecord]:
    """A ``runs`` row for the work inside: ``running`` while it runs, then ``done``, or
    ``interrupted`` when it raised (Ctrl-C and SIGTERM included), with the rows it left
    in the store (the score rows that carry its run id). A run killed outright stays
    ``running`` until the next writer of this host finds its process gone
    (``Store.mark_stale_runs``)."""
    run = RunRecord(new_run_id())
    status, started = "interrupted", False
    try:  # a signal may land while the row is written: finishing is a no-op if it never was
        store.start_run(kind, space, name, config, threads=threads, run_id=run.run_id)
        started = True
        yield run
        status = "done"
    finally:
        with contextlib.suppress(*(() if started else (EstbenchError,))):  # keep the first error
            store.finish_run(run.run_id, status)


def _warn_mixed_threads(store: Store, space: str, groups: list[Group], threads: int | None, warn) -> None:
    """One line when rows of these configs were written with another thread count: the
    config hash leaves threads out (so existing caches stay valid), so a rerun with other
    threads adds to the same cache; the run rows tell the rows apart."""
    hashes = sorted({k.config_hash for g in groups for k in g.keys})
    found = store.score_threads(space, config_hashes=hashes)
    other = {t for ts in found.values() for t in ts if t != threads}
    if not other:
        return
    names = ", ".join(sorted({est for (est, _, _), ts in found.items() if ts - {threads}}))
    known = sorted(t for t in other if t is not None)
    counts = ", ".join([str(t) for t in known] + ["unrecorded"] * (None in other))
    hint = f"; --threads {known[0]} matches them" if len(known) == 1 else ""
    warn(
        f"warning: the store holds {names} rows of these configs written with {counts} threads, this run uses "
        f"{threads}: values differ slightly between thread counts (snip up to 0.5%) and the config hash does not "
        f"tell them apart (runs.threads and the threads column of criteria / report do){hint}"
    )


def _count(summaries: dict, rows: list[ScoreRow]) -> None:
    for r in rows:
        s = summaries[(r.estimator, r.config_hash)]
        s.failed += r.status == "failed"
        s.nonfinite += r.status == "nonfinite"


def record_config(store: Store, estimator: str, settings: dict, label: str | None = None) -> str:
    """Record ``estimator`` (its registry metadata) and one config of it; returns the
    config hash, the key column that separates its settings from any other's."""
    from estbench.config import config_hash
    from estbench.estimators import ESTIMATORS

    meta = ESTIMATORS.meta(estimator)
    store.put_estimator(estimator, meta["kind"], meta["higher_is_better"], meta.get("description", ""))
    chash = config_hash({"estimator": estimator, **settings})
    store.put_config(chash, estimator, settings, label)
    return chash


def timed(fn: Callable[[], float]) -> tuple[float | None, float, str | None]:
    """(value, seconds, error) of ``fn()``; an exception is recorded, not raised."""
    t0 = time.perf_counter()
    try:
        value, error = fn(), None
    except Exception as exc:  # recorded as a failed row; the run goes on
        value, error = None, f"{type(exc).__name__}: {exc}"
    return value, time.perf_counter() - t0, error
