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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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
    from estbench.estimators.oneshot.train import probe_batch, split_indices, train_supernet

    check_run_name(name)
    run_dir = runs_dir / space.name / name
    images = load_cifar10(data, "train")
    split_indices(cfg, len(images))  # too many --train-images: refused before the run is recorded
    probing = probe is not None and probe.on
    if probing:
        from estbench.runs.selection import ensure_archs

        probe_batch(cfg, probe, images)  # a --probe-batch larger than the validation split: refused now
        ensure_archs(store, space, data)  # probe rows name architectures by their id
        arch_ids = {space.parse(s): i for i, s in enumerate(store.arch_strings(space.name))}
    config = {**cfg.as_dict(), "run_dir": str(run_dir)}
    start = time.perf_counter()
    claim: dict = {}
    probed = [0]

    def probes_done(epoch: int, rows) -> None:
        store.put_forgetting(
            space.name, name, epoch, [(arch_ids[r.arch], r.step, r.acc_after_step, r.acc_after_epoch) for r in rows]
        )
        probed[0] += len(rows)

    def epoch_done(stats) -> None:
        ckpt = list_checkpoints(run_dir).get(stats.epoch)
        store.put_train_epoch(space.name, name, stats, None if ckpt is None else str(ckpt), run_id=claim["run_id"])
        if on_epoch:
            on_epoch(stats)

    status, state = "interrupted", None
    try:
        _, state = _register(store, space, name, cfg, config, run_dir, resume, threads, claim)
        store.drop_forgetting_after(space.name, name, 0 if state is None else state["epoch"])
        stats = train_supernet(
            cfg, space, images, run_dir, resume=resume, on_epoch=epoch_done, on_step=on_step, state=state,
            probe=probe if probing else None, on_probes=probes_done,
        )  # fmt: skip
        status = "done"
    finally:
        if "run_id" in claim:  # a no-op unless this process runs the row (see finish_run)
            store.finish_run(claim["run_id"], status)
    resumed_from = 0 if state is None else state["epoch"]
    return TrainOutcome(
        run_dir, len(stats), sorted(list_checkpoints(run_dir)), time.perf_counter() - start, resumed_from, probed[0]
    )
