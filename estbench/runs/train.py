"""Training runs: a supernet trained as a named run recorded in the store.

The store is opened only for short writes while a supernet trains (run registration,
one row per epoch with its checkpoint, and the epoch's forgetting probes when
``--probe-forgetting`` is on), so analyses can read it between epochs. While
a run trains, its ``running`` row (this host, a live pid) is its lock: a second
``train`` of the same run is refused with one line."""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from estbench.data.lookup import DataDir
from estbench.errors import BadInput, EstbenchError
from estbench.estimators.oneshot.checkpoint import list_checkpoints
from estbench.estimators.oneshot.train import RESUMABLE_CHANGES, resume_state
from estbench.spaces.base import SearchSpace
from estbench.store import Store
from estbench.store.runs import new_run_id


def runs_dir_for(store_path: str, explicit: str | None) -> Path:
    """Where run folders live: --runs-dir, else ``estbench_runs`` beside the store."""
    if explicit:
        return Path(explicit)
    base = Path(store_path).resolve().parent if store_path != ":memory:" else Path.cwd()
    return base / "estbench_runs"


_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_run_name(name: str) -> None:
    """A run name is one folder name inside the runs folder: no path separators, no
    ``..``, not empty (its checkpoints must never land outside RUNS_DIR/SPACE)."""
    if not _RUN_NAME.fullmatch(name) or ".." in name:
        raise BadInput(
            f"--run {name!r}: a run name is 1-100 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit, without '..' (it names the folder of the run's checkpoints)"
        )


@dataclass
class TrainOutcome:
    run_dir: Path
    epochs_done: int
    checkpoints: list[int]
    seconds: float
    resumed_from: int = 0  # the checkpoint epoch this session continued from
    probes: int = 0  # forgetting probe rows this session recorded


def _register(
    store: Store,
    space: SearchSpace,
    name: str,
    cfg,
    config: dict,
    run_dir: Path,
    resume: bool,
    threads: int | None,
    claim: dict,
) -> tuple[str, dict | None]:
    """(run id, checkpoint state to continue from) of ``name``: a new run, or the
    recorded one when resuming with the same config (only RESUMABLE_CHANGES may differ).
    Refused, with nothing written: a name used with another config, a run another
    process trains right now (the lock: a ``running`` row whose process lives), a
    checkpoint that cannot be resumed. Decided and recorded under one connection, so two
    processes never both claim a run. ``claim["run_id"]`` is set just before the run
    row is written (for the caller's cleanup if a signal lands in between)."""
    with store.session():  # the store's file lock: no other process gets in between
        store.mark_stale_runs()
        old = store.train_run(space.name, name)
        if old is not None and old["status"] == "running":
            raise EstbenchError(_busy(name, old))
        if old is not None and _left_nothing(old, run_dir):  # failed or killed at once: start afresh
            store.forget_train_run(old["run_id"], space.name, name)
            old, resume = None, False
        if old is None:
            _check_new_run(store, space, name, run_dir, resume)
            claim["run_id"] = new_run_id()
            return store.start_run("train", space.name, name, config, threads, claim["run_id"]), None
        _check_same_run(name, old["config"], config, run_dir, resume)
        state = resume_state(cfg, space, run_dir)
        stats = state["stats"] if state is not None else []
        ckpts = {e: str(p) for e, p in list_checkpoints(run_dir).items()}
        claim["run_id"] = old["run_id"]
        store.reopen_run(old["run_id"], config, space.name, name, stats, ckpts, threads)
        return old["run_id"], state


def _busy(name: str, old: dict) -> str:
    where = "this host" if old["host"] == socket.gethostname() else f"host {old['host']}"
    pid = f"pid {old['pid']}" if old["pid"] is not None else "no pid recorded"
    return (
        f"run {name!r} is being trained right now ({pid} on {where}); wait for it or stop it first "
        "(if that process is not this run's, mark the run with estbench sql --write "
        f"\"UPDATE runs SET status = 'interrupted' WHERE run_id = '{old['run_id']}'\")"
    )


def _left_nothing(old: dict, run_dir: Path) -> bool:
    """A run that never finished an epoch nor wrote a checkpoint: its name is free again."""
    where = Path(old["config"].get("run_dir") or run_dir)
    return old["status"] != "done" and old["epochs"] == 0 and not list_checkpoints(where)


def _check_new_run(store: Store, space: SearchSpace, name: str, run_dir: Path, resume: bool) -> None:
    if resume:
        known = ", ".join(store.train_run_names(space.name)) or "none"
        raise BadInput(f"no run {name!r} for {space.name} to resume (known: {known})")
    if list_checkpoints(run_dir):
        raise BadInput(f"{run_dir} already holds checkpoints of an unrecorded run; move it away or use another --run")


def _check_same_run(name: str, saved: dict, config: dict, run_dir: Path, resume: bool) -> None:
    diff = sorted(k for k in set(saved) | set(config) if k not in RESUMABLE_CHANGES and saved.get(k) != config.get(k))
    if not resume:
        what = f"with a different config ({', '.join(diff)})" if diff else "already"
        raise BadInput(f"run {name!r} exists {what}; pass --resume to continue it, or choose another --run")
    if diff:
        shown = ", ".join(f"{k}={saved.get(k)!r} (asked {config.get(k)!r})" for k in diff)
        raise BadInput(f"cannot resume run {name!r}: it was trained with {shown}")
    if Path(saved["run_dir"]) != run_dir:
        raise BadInput(
            f"run {name!r} lives in {saved['run_dir']}; pass --runs-dir {Path(saved['run_dir']).parent.parent}"
        )


def run_names(template: str, seeds: list[int] | None, default_seed: int) -> list[tuple[str, int]]:
    """(run name, seed) per ``--seed``: ``{seed}`` in ``--run`` becomes the seed, and
    is required when several seeds are trained (each seed is its own run)."""
    seeds = list(dict.fromkeys(seeds or [default_seed]))
    if len(seeds) > 1 and "{seed}" not in template:
        raise BadInput(
            f"--run {template!r} with {len(seeds)} --seed values: each seed is its own run, so the name needs "
            "{seed} in it (e.g. --run 'uniform-s{seed}')"
        )
    out = [(template.replace("{seed}", str(s)), s) for s in seeds]
    for name, _ in out:
        check_run_name(name)
    return out


@dataclass
class _Plan:
    """One run as the driver sees it: where it lives, what it records, its claim."""

    name: str
    cfg: Any
    run_dir: Path
    config: dict
    arch_ids: dict | None
    claim: dict = field(default_factory=dict)
    state: dict | None = None
    probes: int = 0


def _plan(store: Store, space: SearchSpace, name: str, cfg, images, data: DataDir, runs_dir: Path, probe) -> _Plan:
    """Everything about run ``name`` that can be refused before the store records it."""
    from estbench.estimators.oneshot.train import probe_batch, split_indices

    check_run_name(name)
    split_indices(cfg, len(images))  # too many --train-images: refused before the run is recorded
    arch_ids = None
    if probe is not None and probe.on:
        from estbench.runs.selection import ensure_archs

        probe_batch(cfg, probe, images)  # a --probe-batch larger than the validation split: refused now
        ensure_archs(store, space, data)  # probe rows name architectures by their id
        arch_ids = {space.parse(s): i for i, s in enumerate(store.arch_strings(space.name))}
    run_dir = runs_dir / space.name / name
    return _Plan(name, cfg, run_dir, {**cfg.as_dict(), "run_dir": str(run_dir)}, arch_ids)


def _put_probes(store: Store, space: SearchSpace, plan: _Plan, epoch: int, rows) -> None:
    store.put_forgetting(
        space.name,
        plan.name,
        epoch,
        [(plan.arch_ids[r.arch], r.step, r.acc_after_step, r.acc_after_epoch) for r in rows],
    )
    plan.probes += len(rows)


def train_run(
    store: Store,
    space: SearchSpace,
    name: str,
    cfg,
    data: DataDir,
    runs_dir: Path,
    resume: bool,
    on_epoch: Callable | None = None,
    on_step: Callable | None = None,
    threads: int | None = None,
    probe=None,
) -> TrainOutcome:
    """Train (or resume) the supernet run ``name``; refuse a name used with another config.

    Everything that can be refused (the data, the config, the run's record, its last
    checkpoint) is checked before the store records anything, so a refused command
    leaves the store as it was. A resume continues from the last checkpoint; when the
    run was killed before its first checkpoint it restarts from epoch 0, and the epochs
    a killed attempt recorded after its last checkpoint are dropped (``reopen_run``).

    ``probe`` (a ``ForgettingProbe``; off by default): each epoch's probe rows are
    written (``put_forgetting``, replacing any of that epoch) right after its last step,
    before its checkpoint file and its ``train_epochs`` row. So a kill at any point
    leaves the table exact: before the checkpoint the epoch is trained again on resume
    and its rows rewritten, after it they are already stored. The probe is no training
    setting (not in the run's config, the checkpoint or the one-shot config hash): a
    resume may switch it on, off or change it, and always deletes the probes of the
    epochs it trains again, so none of a killed attempt's rows survive unreplaced."""
    from estbench.data.cifar10 import load_cifar10
    from estbench.estimators.oneshot.train import train_supernet

    check_run_name(name)
    images = load_cifar10(data, "train")
    plan = _plan(store, space, name, cfg, images, data, runs_dir, probe)
    start = time.perf_counter()

    def epoch_done(stats) -> None:
        ckpt = list_checkpoints(plan.run_dir).get(stats.epoch)
        store.put_train_epoch(space.name, name, stats, None if ckpt is None else str(ckpt), run_id=plan.claim["run_id"])
        if on_epoch:
            on_epoch(stats)

    status = "interrupted"
    try:
        _, plan.state = _register(store, space, name, cfg, plan.config, plan.run_dir, resume, threads, plan.claim)
        store.drop_forgetting_after(space.name, name, 0 if plan.state is None else plan.state["epoch"])
        stats = train_supernet(
            cfg, space, images, plan.run_dir, resume=resume, on_epoch=epoch_done, on_step=on_step, state=plan.state,
            probe=probe if plan.arch_ids is not None else None,
            on_probes=lambda epoch, rows: _put_probes(store, space, plan, epoch, rows),
        )  # fmt: skip
        status = "done"
    finally:
        if "run_id" in plan.claim:  # a no-op unless this process runs the row (see finish_run)
            store.finish_run(plan.claim["run_id"], status)
    resumed_from = 0 if plan.state is None else plan.state["epoch"]
    return TrainOutcome(
        plan.run_dir, len(stats), sorted(list_checkpoints(plan.run_dir)), time.perf_counter() - start, resumed_from,
        plan.probes,
    )  # fmt: skip


def train_fanout(
    store: Store,
    space: SearchSpace,
    runs: list[tuple[str, Any]],
    data: DataDir,
    runs_dir: Path,
    resume: bool,
    executor,
    on_epoch: Callable | None = None,
    threads: int | None = None,
    probe=None,
) -> dict[str, TrainOutcome | str]:
    """Train the runs ``[(name, cfg)]`` (one per seed) in parallel, one executor task
    each (``RayExecutor.train``); returns name -> outcome, or the error line of a run
    that failed (the others finish).

    This process is the only writer: it refuses what can be refused for every run
    before any is recorded, then claims them all (their ``running`` rows carry its
    pid, so a killed driver leaves them ``interrupted`` for the next command), and
    writes each run's epochs, checkpoint paths and probes as the tasks report them.
    Each task trains from the run's last checkpoint in ``runs_dir``, so ``runs_dir``
    (and the data) must be at the same path on every worker: a shared file system on
    a cluster. A killed driver or worker loses at most the epochs since each run's last
    checkpoint: ``--resume`` continues every run from there, as ``train_run`` does; a
    worker that dies is retried by Ray and its task too continues from the checkpoint.
    ``on_epoch(name, stats)`` after each recorded epoch."""
    from estbench.data.cifar10 import load_cifar10

    images = load_cifar10(data, "train")
    plans = {name: _plan(store, space, name, cfg, images, data, runs_dir, probe) for name, cfg in runs}
    del images  # the tasks load their own
    start = time.perf_counter()
    out: dict[str, TrainOutcome | str] = {}
    try:
        for p in plans.values():
            _, p.state = _register(store, space, p.name, p.cfg, p.config, p.run_dir, resume, threads, p.claim)
            store.drop_forgetting_after(space.name, p.name, 0 if p.state is None else p.state["epoch"])
        specs = {
            p.name: (p.cfg, space, p.run_dir, data, probe if p.arch_ids is not None else None) for p in plans.values()
        }
        for kind, name, *rest in executor.train(specs):
            p = plans[name]
            if kind == "epoch":
                stats, ckpt = rest
                store.put_train_epoch(space.name, name, stats, ckpt, run_id=p.claim["run_id"])
                if on_epoch:
                    on_epoch(name, stats)
            elif kind == "probes":
                _put_probes(store, space, p, *rest)
            else:  # "done" or "failed": the task has ended
                store.finish_run(p.claim["run_id"], kind)
                resumed = 0 if p.state is None else p.state["epoch"]
                ckpts = sorted(list_checkpoints(p.run_dir))
                out[name] = (
                    rest[0]
                    if kind == "failed"
                    else TrainOutcome(p.run_dir, rest[0], ckpts, time.perf_counter() - start, resumed, p.probes)
                )
    finally:
        for p in plans.values():
            if "run_id" in p.claim and p.name not in out:  # the driver stops: the others stay resumable
                store.finish_run(p.claim["run_id"], "interrupted")
    return out
