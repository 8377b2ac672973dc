"""Scoring runs: one request, one resumable loop (``loop``) for every kind of estimator.

``score(store, request)`` resolves the space and the architectures, then runs the
structural, zero-shot and one-shot jobs through :func:`loop.run_job` and recomputes the
derived estimators (vote, vote_borda) from the store."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

from estbench.data.lookup import DataDir
from estbench.errors import BadInput
from estbench.runs.loop import Progress, ScoreSummary, run_job
from estbench.runs.oneshot import OneShotEval
from estbench.runs.zeroshot import ZeroShotConfig, check_shape
from estbench.store import Store
from estbench.threads import torch_threads

__all__ = ["ScoreRequest", "ScoreSummary", "OneShotEval", "ZeroShotConfig", "score"]


@dataclass(frozen=True)
class ScoreRequest:
    """Everything `estbench score` can ask for. Shape fields left None take the space's
    defaults; ``vote_experts`` None takes the space's default experts (for vote and
    vote_borda alike)."""

    space: str
    estimators: tuple[str, ...] = ()
    one_shot_runs: tuple[str, ...] = ()
    archs: str = "all"
    seeds: tuple[int, ...] = (20,)
    epochs: tuple[int, ...] = ()
    shape: dict = field(default_factory=dict)  # c, n, num_classes for structural estimators
    zero_shot: ZeroShotConfig = ZeroShotConfig()
    one_shot: OneShotEval = OneShotEval()
    structural_chunk: int = 5000  # ~0.1 ms an arch: a kill loses < 1 s; fewer, larger writes
    vote_experts: tuple[str, ...] | None = None
    data_dir: str | None = None
    threads: int | None = None  # torch CPU threads, set by the caller (estbench.threads); None: torch's own
    gradsim_pairs: int | None = None  # P: the one-shot runs get gradient similarity (runs.gradsim), not os_acc/loss
    executor: object = None  # runs.executors: where zero-shot and one-shot archs are computed (None: here)


def score(
    store: Store, request: ScoreRequest, progress: Progress | None = None, warn: Callable[[str], None] | None = None
) -> list[ScoreSummary]:
    """Score the request's architectures with its estimators; cache every value. ``warn``
    gets one line when a run adds rows to a config written with other thread counts
    (default: ``warnings.warn``)."""
    from estbench.estimators import ESTIMATORS
    from estbench.runs.aggregate import AGGREGATES, score_aggregates
    from estbench.runs.oneshot import OneShotJob
    from estbench.runs.selection import ensure_archs, select_archs
    from estbench.runs.structural import StructuralJob
    from estbench.runs.vote import score_vote
    from estbench.runs.zeroshot import ZeroShotJob
    from estbench.spaces import get_space

    space = get_space(request.space)
    _check_gradsim(request)
    metas = {n: ESTIMATORS.meta(n) for n in request.estimators}
    if not metas and not request.one_shot_runs:
        raise BadInput(
            "nothing to score: pass --estimator NAME, --zse NAME or --ose RUN (see `estbench list estimators`)"
        )
    for n in [n for n in metas if n in AGGREGATES]:  # a rank aggregate scores its experts with it
        metas.update({e: ESTIMATORS.meta(e) for e in AGGREGATES[n].experts if e not in metas})
    structural = [n for n, m in metas.items() if m["kind"] == "structural"]
    derived = [n for n, m in metas.items() if m.get("derived")]
    zero_shot = [n for n, m in metas.items() if m["kind"] == "zeroshot" and n not in derived]
    aggregates = [n for n in derived if n in AGGREGATES]
    derived = [n for n in derived if n not in aggregates]
    oneshot = [n for n, m in metas.items() if m["kind"] == "oneshot"]
    if oneshot:
        raise BadInput(f"{', '.join(oneshot)} are scored from a trained supernet: pass --ose RUN instead")
    experts = list(request.vote_experts) if request.vote_experts is not None else list(space.vote_experts)
    for e in experts if derived else []:
        ESTIMATORS.entry(e)
    request.zero_shot.validate()
    check_shape(request.shape)
    if request.structural_chunk < 1 or request.one_shot.chunk_size < 1:
        raise BadInput("--chunk-size must be >= 1 (architectures per write)")
    data = DataDir(request.data_dir)
    ensure_archs(store, space, data)
    ids = select_archs(store, space, request.archs)
    summaries: list[ScoreSummary] = []
    threads = request.threads if request.threads is not None else torch_threads()
    warn = warn or (lambda text: warnings.warn(text, stacklevel=3))
    if structural:  # exact counts: the thread count cannot change them, no warning
        job = StructuralJob(store, space, structural, request.shape, request.structural_chunk)
        summaries += run_job(store, space.name, job, ids, progress, threads)
    if zero_shot:
        job = ZeroShotJob(store, space, zero_shot, list(request.seeds), request.zero_shot, data)
        summaries += run_job(store, space.name, job, ids, progress, threads, warn, request.executor)
    for run in request.one_shot_runs:
        if request.gradsim_pairs is not None:
            summaries += _score_gradsim(store, space, run, request, data, progress, threads)
            continue
        job = OneShotJob(store, space, run, list(request.epochs), request.one_shot, data)
        summaries += run_job(store, space.name, job, ids, progress, threads, warn, request.executor)
    if derived:
        summaries += score_vote(store, space.name, experts, _vote_filter(request.zero_shot, space), derived)
    if aggregates:
        summaries += score_aggregates(store, space.name, aggregates, _vote_filter(request.zero_shot, space))
    return summaries


def _check_gradsim(request: ScoreRequest) -> None:
    from estbench.runs.gradsim import check_options

    ev = request.one_shot
    check_options(request.gradsim_pairs, request.one_shot_runs, request.seeds, request.archs, ev.bn, ev.ensemble)


def _score_gradsim(store, space, run, request: ScoreRequest, data, progress, threads) -> list[ScoreSummary]:
    """Gradient similarity of ``run``: one config per --seed (each seed draws its pairs)."""
    from estbench.runs.gradsim import GradsimConfig, score_gradsim

    ev = request.one_shot
    cfgs = [
        GradsimConfig(request.gradsim_pairs, ev.batch_size, seed, ev.data_seed, ev.device) for seed in request.seeds
    ]
    return score_gradsim(store, space, run, list(request.epochs), cfgs, data, progress, threads)


def _vote_filter(cfg: ZeroShotConfig, space) -> dict:
    """The settings a vote family's expert configs must have: the request's."""
    from dataclasses import asdict

    want = {
        k: v for k, v in asdict(cfg).items() if k not in ("device", "chunk_size", "data_seed", "n_batches", "input")
    }
    want.update({k: v for k, v in vars(space.shape(**cfg.shape())).items()})
    want["input"] = (cfg.input, cfg.data_seed)
    return want
