"""Criteria over the store: SQL builds the point sets (joins, deiso grouping, ranks),
numpy/scipy compute the criteria per estimator group."""

from __future__ import annotations

from dataclasses import dataclass

from estbench.analysis.criteria import DEFAULT_KS, compute_criteria
from estbench.analysis.points import PointSet, query_points, split_points
from estbench.store.store import Store


@dataclass
class GroupCriteria:
    estimator: str
    config_hash: str
    epoch: int
    values: dict[str, float]
    n_failed: int = 0
    n_nonfinite: int = 0
    seconds_per_arch: float = float("nan")
    label: str | None = None
    config: str | None = None  # the config's JSON
    threads: tuple = ()  # thread counts of the runs that wrote its scores (None: unrecorded), sorted
    points: PointSet | None = None  # the point set the values were computed on
    ci: dict[str, tuple[float, float]] | None = None  # bootstrap interval per criterion (criteria --ci)


def evaluate(
    store: Store,
    space: str,
    metric: str,
    protocol: str = "deiso",
    estimators: list[str] | None = None,
    epochs: list[int] | None = None,
    seeds: list[int] | None = None,
    ks: tuple[float, ...] = DEFAULT_KS,
    post_deiso: bool = False,
) -> list[GroupCriteria]:
    """Criteria of every (estimator, config, epoch) group against ``metric``; a class's
    score is its representative's, or the mean of its scored members with ``post_deiso``."""
    with store.session():  # one connection for the checks and the queries
        names, rows, stats = query_points(store, space, metric, protocol, estimators, epochs, seeds, post_deiso)
        threads = store.score_threads(space, names)
    out: list[GroupCriteria] = []
    for p in split_points(rows, stats):
        vals = compute_criteria(p.y, p.score, p.truth_rank, p.score_rank, p.higher_is_better, ks)
        key = (p.estimator, p.config_hash, p.epoch)
        failed, nonfinite, seconds, label, config = stats.get(key, (0, 0, None, None, None))
        seconds = float("nan") if seconds is None else seconds
        ts = tuple(sorted(threads.get(key, ()), key=lambda t: (t is None, t or 0)))
        out.append(GroupCriteria(*key, vals, int(failed), int(nonfinite), seconds, label, config, ts, p))
    return out
