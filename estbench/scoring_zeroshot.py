"""Zero-shot scoring runs: for every (seed, architecture, batch) one engine call scores
all requested measures; every per-batch value is stored with its status and the wall
time of the pass it needed.

Cache key: the config hash of each measure covers only the settings that change its
value (``SPECS[...]['settings']``); the batch index and the seed are key columns, so a
later run with more batches or seeds extends the cache instead of recomputing it.
Data-free measures (synflow) are computed for batch 0 only."""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass

from estbench.config import config_hash
from estbench.data.lookup import DataDir
from estbench.errors import BadInput
from estbench.estimators import ESTIMATORS
from estbench.scoring import Progress, ScoreSummary
from estbench.spaces.base import SearchSpace
from estbench.store.store import Store

INPUTS = ("cifar10", "noise-uniform", "noise-gaussian")
DTYPES = ("float32", "float64")
DATA_FREE_PASSES = ("synflow", "synflow_bn")
# fresh: a standalone network per architecture, built from the seed (zero-cost-nas);
# supernet-init: the architecture as a candidate of ONE randomly initialised supernet per
# seed (the paper's aw_nas code: only edges on input-output paths run, cell BN without
# affine; dropout is off so that values are deterministic).
WEIGHTS = ("fresh", "supernet-init")


@dataclass(frozen=True)
class ZeroShotConfig:
    """Settings of a zero-shot run (paper defaults: batch 128, 5 batches, CIFAR-10 train)."""

    batch_size: int = 128
    n_batches: int = 5
    input: str = "cifar10"
    init: str = "fresh"  # fresh: a seeded standalone network per arch; supernet-init: see below
    dtype: str = "float32"
    device: str = "cpu"
    data_seed: int = 0  # which training images form the batches
    tf32: bool = False
    c: int | None = None
    n: int | None = None
    num_classes: int | None = None
    chunk_size: int = 20

    def validate(self) -> None:
        if self.input not in INPUTS:
            raise BadInput(f"unknown --input {self.input!r} (known: {', '.join(INPUTS)})")
        if self.dtype not in DTYPES:
            raise BadInput(f"unknown --dtype {self.dtype!r} (known: {', '.join(DTYPES)})")
        if self.batch_size < 2 or self.n_batches < 1:
            raise BadInput("--batch-size must be >= 2 (jacob_cov and relu_logdet compare images) and --batches >= 1")
        if self.init not in WEIGHTS:
            raise BadInput(f"unknown --weights {self.init!r} (known: {', '.join(WEIGHTS)})")


def check_device(device: str) -> None:
    import torch

    if device == "cpu":
        return
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BadInput(f"--device {device}: no CUDA device is available (torch.cuda.is_available() is False)")
        return
    raise BadInput(f"unknown --device {device!r} (cpu, cuda, cuda:N)")


def load_batches(cfg: ZeroShotConfig, space: SearchSpace, data: DataDir):
    """(batches, input description recorded in the config hash)."""
    from estbench.data import cifar10

    shape = space.shape(c=cfg.c, n=cfg.n, num_classes=cfg.num_classes)
    if cfg.input == "cifar10":
        images = cifar10.load_cifar10(data, "train")
        batches = cifar10.fixed_batches(images, cfg.batch_size, cfg.n_batches, seed=cfg.data_seed)
        if shape.resolution != 32:
            import torch.nn.functional as F

            batches = [
                (F.interpolate(x, size=shape.resolution, mode="bilinear", align_corners=False), y % shape.num_classes)
                for x, y in batches
            ]
        return batches, f"cifar10-train[{images.kind}]@{cfg.data_seed}"
    res = (3, shape.resolution, shape.resolution)
    batches = cifar10.noise_batches(
        cfg.input, cfg.batch_size, cfg.n_batches, seed=cfg.data_seed, shape=res, num_classes=shape.num_classes
    )
    return batches, f"{cfg.input}@{cfg.data_seed}"


def make_builder(space: SearchSpace, arch, cfg: ZeroShotConfig, supernets: dict):
    """``build(bn)`` for the engine. For supernet-init the supernet of a seed is built
    once (the engine seeds torch before each build; the first build per seed creates
    it) and each build returns a candidate view of it."""
    shape = dict(c=cfg.c, n=cfg.n, num_classes=cfg.num_classes)
    if cfg.init == "fresh":
        return lambda bn: space.build(arch, bn=bn, **shape)

    def build(bn: bool):
        import torch

        from estbench.estimators.oneshot.supernet import CellSupernet
        from estbench.estimators.zeroshot.candidate import SupernetCandidate

        key = torch.initial_seed()
        if key not in supernets:
            s = space.shape(**shape)
            supernets.clear()  # one seed at a time: keep memory flat
            supernets[key] = CellSupernet(space.cell, s.c, s.n, s.num_classes, bn_affine=False, dropout=0.0)
        return SupernetCandidate(supernets[key], arch, bn)

    return build


def _resolved(cfg: ZeroShotConfig, space: SearchSpace, input_desc: str) -> dict:
    shape = space.shape(c=cfg.c, n=cfg.n, num_classes=cfg.num_classes)
    return {**asdict(cfg), **vars(shape), "input": input_desc}


def plan(store: Store, space: SearchSpace, names: list[str], cfg: ZeroShotConfig, input_desc: str) -> tuple[dict, dict]:
    """(config hash, batches needed) per measure; records estimators and configs."""
    resolved = _resolved(cfg, space, input_desc)
    hashes, n_needed = {}, {}
    for name in names:
        meta = ESTIMATORS.meta(name)
        settings = {"space": space.name, **{k: resolved[k] for k in meta["settings"] if k != "n_batches"}}
        if cfg.device != "cpu":
            settings["tf32"] = cfg.tf32
        hashes[name] = config_hash({"estimator": name, **settings})
        n_needed[name] = 1 if meta["needs"] in DATA_FREE_PASSES else cfg.n_batches
        store.put_estimator(name, meta["kind"], meta["higher_is_better"], meta.get("description", ""))
        store.put_config(hashes[name], name, settings)
    return hashes, n_needed


def score_vote(
    store: Store, space: SearchSpace, experts: list[str], cfg: ZeroShotConfig, data: DataDir
) -> ScoreSummary:
    """(Re)compute ``vote`` from the stored scores of ``experts`` under this config."""
    from estbench.analysis.vote import compute_vote

    start = time.perf_counter()
    _, input_desc = load_batches(cfg, space, data)
    hashes, _ = plan(store, space, experts, cfg, input_desc)
    meta = ESTIMATORS.meta("vote")
    store.put_estimator("vote", meta["kind"], meta["higher_is_better"], meta.get("description", ""))
    chash, n = compute_vote(store, space.name, hashes)
    return ScoreSummary("vote", chash, n, 0, n, 0, 0, time.perf_counter() - start)


def score_zero_shot(
    store: Store,
    space: SearchSpace,
    names: list[str],
    arch_ids: list[int],
    seeds: list[int],
    cfg: ZeroShotConfig,
    data: DataDir,
    progress: Progress | None = None,
) -> list[ScoreSummary]:
    import torch

    from estbench.estimators.zeroshot import engine

    cfg.validate()
    check_device(cfg.device)
    batches, input_desc = load_batches(cfg, space, data)
    metas = {n: ESTIMATORS.meta(n) for n in names}
    hashes, n_needed = plan(store, space, names, cfg, input_desc)
    summaries = {n: ScoreSummary(n, hashes[n], len(arch_ids) * len(seeds), 0, 0, 0, 0, 0.0) for n in names}
    strs = store.arch_strings(space.name)
    dtype = getattr(torch, cfg.dtype)
    torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
    torch.backends.cudnn.allow_tf32 = cfg.tf32
    if cfg.device.startswith("cuda"):  # same seed, same device -> same values (see engine)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    resolved = _resolved(cfg, space, input_desc)
    run_id = store.start_run("score", space.name, ",".join(names), {**resolved, "seeds": seeds, "estimators": hashes})
    status, written, start = "interrupted", 0, time.perf_counter()
    supernets: dict = {}
    label = "zero-shot " + (names[0] if len(names) == 1 else f"({len(names)} measures)")
    try:
        for seed in seeds:
            done = {n: store.done_arch_ids(space.name, n, hashes[n], 0, seed, n_needed[n]) for n in names}
            todo = [(a, [n for n in names if a not in done[n]]) for a in arch_ids]
            for n in names:
                summaries[n].cached += sum(a in done[n] for a in arch_ids)
            todo = [(a, ms) for a, ms in todo if ms]
            if progress:
                progress(f"{label} seed {seed}", len(arch_ids) - len(todo), len(arch_ids))
            for lo in range(0, len(todo), cfg.chunk_size):
                rows = []
                for aid, wanted in todo[lo : lo + cfg.chunk_size]:
                    build = make_builder(space, space.parse(strs[aid]), cfg, supernets)

                    for b, (x, y) in enumerate(batches):
                        ms = [m for m in wanted if b < n_needed[m]]
                        if not ms:
                            continue
                        values, timings, errors = engine.run_measures(
                            build, x, y, ms, seed=seed, device=cfg.device, dtype=dtype
                        )
                        for m in ms:
                            rows.append(
                                _row(
                                    space.name,
                                    aid,
                                    m,
                                    hashes[m],
                                    seed,
                                    b,
                                    values,
                                    timings,
                                    errors,
                                    run_id,
                                    metas[m]["needs"],
                                )
                            )
                            s = summaries[m]
                            s.failed += rows[-1][8] == "failed"
                            s.nonfinite += rows[-1][8] == "nonfinite"
                    for m in wanted:
                        summaries[m].computed += 1
                store.upsert_scores(rows)
                written += len(rows)
                if progress:
                    progress(f"{label} seed {seed}", min(cfg.chunk_size, len(todo) - lo), len(arch_ids))
        status = "done"
    finally:
        elapsed = time.perf_counter() - start
        for s in summaries.values():
            s.seconds = elapsed
        store.finish_run(run_id, status, written)
    return list(summaries.values())


def _row(space, aid, m, chash, seed, b, values, timings, errors, run_id, needs) -> tuple:
    """One score row; elapsed = build + shared forward + the measure's own pass."""
    shared = 0.0 if needs == "synflow" else timings.get("build", 0.0) + timings.get("forward", 0.0)
    elapsed = shared + timings.get(needs, 0.0)
    if m in errors:
        return (space, aid, m, chash, 0, seed, b, None, "failed", errors[m], elapsed, run_id)
    v = float(values[m])
    status = "ok" if math.isfinite(v) else "nonfinite"
    detail = None if status == "ok" else repr(v)
    return (space, aid, m, chash, 0, seed, b, v if status == "ok" else _nonfinite(v), status, detail, elapsed, run_id)


def _nonfinite(v: float) -> float | None:
    """inf / -inf are kept (DuckDB stores them); NaN becomes NULL with status nonfinite."""
    return None if math.isnan(v) else v
