"""One-shot runs end to end: train a supernet as a named run recorded in the store, and
score architectures by their accuracy / loss inside its checkpoints.

The store is opened only for short writes while a supernet trains (run registration,
one row per epoch, one per checkpoint), so analyses can read it between epochs.

Cache key of one-shot scores: the run's training config without the seed (and without
settings that do not change the weights: epochs, checkpoint interval, device, memory
format), plus the evaluation settings. The checkpoint epoch and the training seed are
key columns, so supernets trained with different seeds and otherwise equal settings
share a config and ``criteria`` averages them (multi-supernet averaging, Sec. 5.3)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from estbench.config import config_hash
from estbench.data.lookup import DataDir
from estbench.errors import BadInput, StoreError
from estbench.scoring import ScoreSummary
from estbench.spaces.base import SearchSpace
from estbench.store.store import Store

OS_ESTIMATORS = ("os_acc", "os_loss")
NOT_IN_HASH = ("seed", "epochs", "checkpoint_every", "device", "channels_last")


def runs_dir_for(store_path: str, explicit: str | None) -> Path:
    """Where run folders live: --runs-dir, else ``estbench_runs`` beside the store."""
    if explicit:
        return Path(explicit)
    base = Path(store_path).resolve().parent if store_path != ":memory:" else Path.cwd()
    return base / "estbench_runs"


def find_run(store: Store, space: str, name: str) -> dict | None:
    _, rows = store.query(
        "SELECT run_id, config, status FROM runs WHERE kind = 'train' AND space = ? AND name = ? "
        "ORDER BY started_at DESC LIMIT 1",
        [space, name],
    )
    if not rows:
        return None
    return {"run_id": rows[0][0], "config": json.loads(rows[0][1]), "status": rows[0][2]}


def known_runs(store: Store, space: str) -> list[str]:
    _, rows = store.query("SELECT DISTINCT name FROM runs WHERE kind = 'train' AND space = ? ORDER BY 1", [space])
    return [r[0] for r in rows]


def _with_store(path: str, work: Callable[[Store], object], tries: int = 600):
    """Open the store, run ``work``, close; wait for a lock held by another writer."""
    for attempt in range(tries):
        try:
            with Store(path) as st:
                return work(st)
        except StoreError as exc:
            if "locked" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(1.0)


@dataclass
class TrainOutcome:
    run_dir: Path
    epochs_done: int
    checkpoints: list[int]
    seconds: float


def train_run(
    store_path: str,
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
    from estbench.estimators.oneshot.train import RESUMABLE_CHANGES, train_supernet

    run_dir = runs_dir / space.name / name
    config = {**cfg.as_dict(), "run_dir": str(run_dir)}

    def register(st: Store) -> str:
        old = find_run(st, space.name, name)
        if old is not None:
            saved = old["config"]
            diff = sorted(
                k for k in set(saved) | set(config) if k not in RESUMABLE_CHANGES and saved.get(k) != config.get(k)
            )
            if not resume:
                what = f"with a different config ({', '.join(diff)})" if diff else "already"
                raise BadInput(f"run {name!r} exists {what}; pass --resume to continue it, or choose another --run")
            if diff:
                shown = ", ".join(f"{k}={saved.get(k)!r} (asked {config.get(k)!r})" for k in diff)
                raise BadInput(f"cannot resume run {name!r}: it was trained with {shown}")
            run_dir_saved = Path(saved["run_dir"])
            if run_dir_saved != run_dir:
                raise BadInput(f"run {name!r} lives in {run_dir_saved}; pass --runs-dir {run_dir_saved.parent.parent}")
            st.con.execute(
                "UPDATE runs SET status = 'running', config = ?, finished_at = NULL WHERE run_id = ?",
                [json.dumps(config, sort_keys=True), old["run_id"]],
            )
            return old["run_id"]
        if resume:
            raise BadInput(
                f"no run {name!r} for {space.name} to resume (known: {', '.join(known_runs(st, space.name)) or 'none'})"
            )
        if list_checkpoints(run_dir):
            raise BadInput(
                f"{run_dir} already holds checkpoints of an unrecorded run; move it away or use another --run"
            )
        return st.start_run("train", space.name, name, config)

    run_id = _with_store(store_path, register)
    images = load_cifar10(data, "train")
    start = time.perf_counter()
    last = {"epoch": 0}

    def epoch_done(stats) -> None:
        last["epoch"] = stats.epoch
        ckpts = list_checkpoints(run_dir)

        def write(st: Store) -> None:
            st.con.execute(
                "INSERT INTO train_epochs VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [space.name, name, stats.epoch, stats.train_loss, stats.lr, stats.seconds, stats.steps],
            )
            if stats.epoch in ckpts:
                st.con.execute(
                    "INSERT INTO checkpoints (space, run_name, epoch, path) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [space.name, name, stats.epoch, str(ckpts[stats.epoch])],
                )

        _with_store(store_path, write)
        if on_epoch:
            on_epoch(stats)

    status = "interrupted"
    try:
        stats = train_supernet(cfg, space.cell, images, run_dir, resume=resume, on_epoch=epoch_done, on_step=on_step)
        status = "done"
    finally:
        _with_store(store_path, lambda st: st.finish_run(run_id, status, last["epoch"]))
    return TrainOutcome(run_dir, len(stats), sorted(list_checkpoints(run_dir)), time.perf_counter() - start)


# ---- one-shot scoring ----------------------------------------------------------------
def _trained_representative(space: SearchSpace, sampler: str) -> Callable:
    """A deiso-trained supernet trained one fixed member of each isomorphism class; any
    member is scored through that member (same function, trained weights). Other
    samplers train every architecture, which is scored as itself."""
    if sampler != "deiso":
        return lambda arch: arch
    from estbench.estimators.oneshot.samplers import iso_table

    table = iso_table(space.cell)
    return lambda arch: table[space.cell.canonical(arch, "iso")]


@dataclass(frozen=True)
class OneShotEval:
    batch_size: int = 128
    n_batches: int = 1
    bn: str = "train"
    recal_batches: int = 4
    ensemble: int = 1
    data_seed: int = 0
    device: str = "cpu"
    chunk_size: int = 100


def score_one_shot(
    store: Store,
    space: SearchSpace,
    run: str,
    arch_ids: list[int],
    epochs: list[int] | None,
    ev: OneShotEval,
    data: DataDir,
    progress: Callable | None = None,
) -> list[ScoreSummary]:
    """Store os_acc / os_loss of ``arch_ids`` at each requested checkpoint epoch."""
    from estbench.data.cifar10 import load_cifar10
    from estbench.estimators import ESTIMATORS
    from estbench.estimators.oneshot.checkpoint import list_checkpoints
    from estbench.estimators.oneshot.evaluate import (
        BN_MODES,
        average_checkpoints,
        model_from_checkpoint,
        os_scores,
        split_batches,
    )
    from estbench.estimators.oneshot.train import TrainConfig, split_indices
    from estbench.scoring_zeroshot import check_device

    info = find_run(store, space.name, run)
    if info is None:
        raise BadInput(
            f"no one-shot run {run!r} for {space.name} in the store (known: {', '.join(known_runs(store, space.name)) or 'none'}); train one with `estbench train`"
        )
    if ev.bn not in BN_MODES:
        raise BadInput(f"unknown --bn {ev.bn!r} (known: {', '.join(BN_MODES)})")
    if ev.ensemble < 1 or ev.n_batches < 1 or ev.batch_size < 1:
        raise BadInput("--ensemble, --batches and --batch-size must be >= 1")
    check_device(ev.device)
    saved = dict(info["config"])
    run_dir = Path(saved.pop("run_dir"))
    cfg = TrainConfig.from_dict(saved)
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise BadInput(f"run {run!r} has no checkpoints in {run_dir} yet")
    wanted = list(epochs) if epochs else [max(ckpts)]
    missing = [e for e in wanted if e not in ckpts]
    if missing:
        raise BadInput(
            f"run {run!r} has no checkpoint at epoch {', '.join(map(str, missing))}; saved epochs: {', '.join(map(str, ckpts))}"
        )
    trained_as = _trained_representative(space, cfg.sampler)
    images = load_cifar10(data, "train")
    train_idx, valid_idx = split_indices(cfg, len(images))
    batches = split_batches(images, valid_idx, ev.batch_size, ev.n_batches, seed=ev.data_seed)
    recal = (
        split_batches(images, train_idx, ev.batch_size, ev.recal_batches, seed=ev.data_seed)
        if ev.bn == "recalibrate"
        else None
    )
    train_part = {k: v for k, v in cfg.as_dict().items() if k not in NOT_IN_HASH}
    settings = {
        "space": space.name, "train": train_part, "batch_size": ev.batch_size, "bn": ev.bn,
        "recal_batches": ev.recal_batches if ev.bn == "recalibrate" else 0, "ensemble": ev.ensemble,
        "data": f"cifar10-valid[{images.kind}]@{ev.data_seed}",
    }  # fmt: skip
    label = (
        f"{run}" + (f" ens{ev.ensemble}" if ev.ensemble > 1 else "") + (" bn-recal" if ev.bn == "recalibrate" else "")
    )
    hashes = {}
    for name in OS_ESTIMATORS:
        meta = ESTIMATORS.meta(name)
        store.put_estimator(name, meta["kind"], meta["higher_is_better"], meta.get("description", ""))
        hashes[name] = config_hash({"estimator": name, **settings})
        store.put_config(hashes[name], name, settings)
        store.con.execute("UPDATE configs SET label = ? WHERE config_hash = ?", [label, hashes[name]])
    strs = store.arch_strings(space.name)
    summaries = {n: ScoreSummary(n, hashes[n], len(arch_ids) * len(wanted), 0, 0, 0, 0, 0.0) for n in OS_ESTIMATORS}
    run_id = store.start_run("score", space.name, f"{run}:os", {**settings, "epochs": wanted, "run": run})
    start, status, written = time.perf_counter(), "interrupted", 0
    try:
        for epoch in wanted:
            done = set.intersection(
                *(store.done_arch_ids(space.name, n, hashes[n], epoch, cfg.seed, ev.n_batches) for n in OS_ESTIMATORS)
            )
            todo = [a for a in arch_ids if a not in done]
            for n in OS_ESTIMATORS:
                summaries[n].cached += len(arch_ids) - len(todo)
            task = f"one-shot {run} epoch {epoch}"
            if progress:
                progress(task, len(arch_ids) - len(todo), len(arch_ids))
            if not todo:
                continue
            members = [e for e in ckpts if e <= epoch][-ev.ensemble :]
            if len(members) < ev.ensemble:
                raise BadInput(
                    f"--ensemble {ev.ensemble} at epoch {epoch} needs {ev.ensemble} checkpoints up to it; run {run!r} has {len(members)}"
                )
            source = average_checkpoints([ckpts[e] for e in members]) if ev.ensemble > 1 else ckpts[epoch]
            model = model_from_checkpoint(source, space.cell, device=ev.device, channels_last=cfg.channels_last)
            for lo in range(0, len(todo), ev.chunk_size):
                chunk = todo[lo : lo + ev.chunk_size]
                archs = [trained_as(space.parse(strs[a])) for a in chunk]
                rows = []
                for i, b, acc, loss, secs in os_scores(model, archs, batches, ev.bn, recal):
                    aid = chunk[i]
                    rows.append(
                        (space.name, aid, "os_acc", hashes["os_acc"], epoch, cfg.seed, b, acc, "ok", None, secs, run_id)
                    )
                    st = "ok" if math.isfinite(loss) else "nonfinite"
                    rows.append(
                        (
                            space.name,
                            aid,
                            "os_loss",
                            hashes["os_loss"],
                            epoch,
                            cfg.seed,
                            b,
                            loss if st == "ok" else None,
                            st,
                            None if st == "ok" else repr(loss),
                            secs,
                            run_id,
                        )
                    )
                store.upsert_scores(rows)
                written += len(rows)
                for n in OS_ESTIMATORS:
                    summaries[n].computed += len(chunk)
                if progress:
                    progress(task, len(chunk), len(arch_ids))
        status = "done"
    finally:
        for s in summaries.values():
            s.seconds = time.perf_counter() - start
        store.finish_run(run_id, status, written)
    return list(summaries.values())
