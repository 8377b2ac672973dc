"""Training runs: a supernet trained as a named run recorded in the store.

The store is opened only for short writes while a supernet trains (run registration,
one row per epoch with its checkpoint), so analyses can read it between epochs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from estbench.data.lookup import DataDir
from estbench.errors import BadInput
from estbench.spaces.base import SearchSpace
from estbench.store import Store


def runs_dir_for(store_path: str, explicit: str | None) -> Path:
    """Where run folders live: --runs-dir, else ``estbench_runs`` beside the store."""
    if explicit:
        return Path(explicit)
    base = Path(store_path).resolve().parent if store_path != ":memory:" else Path.cwd()
    return base / "estbench_runs"


@dataclass
class TrainOutcome:
    run_dir: Path
    epochs_done: int
    checkpoints: list[int]
    seconds: float


def _register(store: Store, space: SearchSpace, name: str, config: dict, run_dir: Path, resume: bool) -> str:
    """The run id of ``name``: a new run, or the recorded one when resuming with the same
    config (only RESUMABLE_CHANGES may differ). A name used with another config is refused."""
    from estbench.estimators.oneshot.checkpoint import list_checkpoints
    from estbench.estimators.oneshot.train import RESUMABLE_CHANGES

    old = store.train_run(space.name, name)
    if old is None:
        if resume:
            known = ", ".join(store.train_run_names(space.name)) or "none"
            raise BadInput(f"no run {name!r} for {space.name} to resume (known: {known})")
        if list_checkpoints(run_dir):
            raise BadInput(
                f"{run_dir} already holds checkpoints of an unrecorded run; move it away or use another --run"
            )
        return store.start_run("train", space.name, name, config)
    saved = old["config"]
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
    store.reopen_run(old["run_id"], config)
    return old["run_id"]


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
) -> TrainOutcome:
    """Train (or resume) the supernet run ``name``; refuse a name used with another config."""
    from estbench.data.cifar10 import load_cifar10
    from estbench.estimators.oneshot.checkpoint import list_checkpoints
    from estbench.estimators.oneshot.train import train_supernet

    run_dir = runs_dir / space.name / name
    run_id = _register(store, space, name, {**cfg.as_dict(), "run_dir": str(run_dir)}, run_dir, resume)
    images = load_cifar10(data, "train")
    start = time.perf_counter()
    last = {"epoch": 0}

    def epoch_done(stats) -> None:
        last["epoch"] = stats.epoch
        ckpt = list_checkpoints(run_dir).get(stats.epoch)
        store.put_train_epoch(space.name, name, stats, None if ckpt is None else str(ckpt))
        if on_epoch:
            on_epoch(stats)

    status = "interrupted"
    try:
        stats = train_supernet(cfg, space, images, run_dir, resume=resume, on_epoch=epoch_done, on_step=on_step)
        status = "done"
    finally:
        store.finish_run(run_id, status, last["epoch"])
    return TrainOutcome(run_dir, len(stats), sorted(list_checkpoints(run_dir)), time.perf_counter() - start)
