"""The point sets every analysis starts from, and the per-point facts the bias analyses
add to them (complexity, architecture strings, class sizes).

A point set is one estimator group (estimator, config, epoch) against one truth
metric: per point (one architecture, or one isomorphism class under ``deiso``) its
representative arch id (the smallest scored one), the class truth (mean over the
class's members with truth), the score (the representative's; the mean over the scored
members with ``post_deiso``) and the 1-based ordinal ranks of both, ties broken by the
representative's id. SQL builds them (``store/sql/points.sql``); nothing here imports
torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from estbench.errors import BadInput
from estbench.store.store import Store

PROTOCOLS = ("iso", "deiso", "deiso-computational")
COMPLEXITY = ("params", "flops")


@dataclass
class PointSet:
    estimator: str
    config_hash: str
    epoch: int
    rep: np.ndarray  # representative arch id of each point (int64)
    members: np.ndarray  # scored members per point
    truth: np.ndarray  # as stored (class mean)
    score: np.ndarray  # as stored
    truth_rank: np.ndarray  # 1 = best
    score_rank: np.ndarray  # 1 = best
    higher_is_better: bool
    truth_higher_is_better: bool
    label: str | None = None
    config: str | None = None

    def __len__(self) -> int:
        return len(self.rep)

    @property
    def y(self) -> np.ndarray:
        """Truth oriented so that higher is better."""
        return self.truth if self.truth_higher_is_better else -self.truth

    @property
    def s(self) -> np.ndarray:
        """Score oriented so that higher is better (a loss enters negated)."""
        return self.score if self.higher_is_better else -self.score

    def subset(self, mask: np.ndarray) -> PointSet:
        """The points where ``mask`` holds, with ranks recomputed among them."""
        from estbench.analysis.criteria import ordinal_ranks

        pick = {f: getattr(self, f)[mask] for f in ("rep", "members", "truth", "score")}
        yr = ordinal_ranks(pick["truth"], self.truth_higher_is_better, pick["rep"])
        sr = ordinal_ranks(pick["score"], self.higher_is_better, pick["rep"])
        return PointSet(
            self.estimator, self.config_hash, self.epoch, truth_rank=yr, score_rank=sr,
            higher_is_better=self.higher_is_better, truth_higher_is_better=self.truth_higher_is_better,
            label=self.label, config=self.config, **pick,
        )  # fmt: skip


def known_names(kind: str, names: list[str]):
    """A registry of plain names, for its did-you-mean errors."""
    from estbench.registry import Registry

    reg = Registry(kind)
    for n in names:
        reg.register(n, n)
    return reg


def check_inputs(store: Store, space: str, metric: str, protocol: str, estimators: list[str]) -> list[str]:
    """Validate names against the store; return the estimators to evaluate."""
    if protocol not in PROTOCOLS:
        raise BadInput(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    known_names("space in this store", store.spaces()).entry(space)
    metrics = store.metric_names(space)
    if not metrics:
        raise BadInput(f"no truth loaded for {space}; run `estbench truth load --space {space}`")
    known_names(f"truth metric for {space}", metrics).entry(metric)
    scored = store.scored_estimators(space)
    if not scored:
        raise BadInput(f"no scores for {space} in the store; run `estbench score --space {space} ...`")
    names = known_names(f"estimator scored for {space}", scored)
    for e in estimators:
        names.entry(e)
    return estimators or scored


def resolve_truth(store: Store, space: str, truth: str | None) -> str:
    """The truth metric an analysis uses: ``truth`` when given; else the first of the
    space's ``default_truth`` the store has, else its only measured metric. A surrogate
    metric is never picked without being named (it is a prediction, not a measurement)."""
    if truth:
        return truth
    metrics = store.metric_names(space)
    if not metrics:
        raise BadInput(f"no truth loaded for {space}; run `estbench truth load --space {space}`")
    from estbench.spaces import SearchSpace, find_space

    for name in (find_space(space) or SearchSpace).default_truth:
        if name in metrics:
            return name
    measured = [m for m in metrics if not store.metric_is_surrogate(space, m)]
    if len(measured) == 1:
        return measured[0]
    what = "measured metrics" if measured else "metrics (all surrogate predictions)"
    raise BadInput(f"{space}: choose --truth among the {what} loaded: {', '.join(measured or metrics)}")


def load_points(
    store: Store,
    space: str,
    metric: str,
    protocol: str = "deiso",
    estimators: list[str] | None = None,
    epochs: list[int] | None = None,
    seeds: list[int] | None = None,
    post_deiso: bool = False,
) -> list[PointSet]:
    """The point set of every (estimator, config, epoch) group against ``metric``, in
    (estimator, config, epoch) order; validates the names first (BadInput)."""
    with store.session():
        _, rows, stats = query_points(store, space, metric, protocol, estimators, epochs, seeds, post_deiso)
    return split_points(rows, stats)


def query_points(store, space, metric, protocol, estimators, epochs, seeds, post_deiso, sql: str = "points"):
    """(estimator names, the rows of ``sql`` (``points.sql``, or a variant with the same
    parameters such as ``batch_points`` / ``seed_points``), the group statistics), after
    the name checks; call inside ``store.session()`` to use one connection."""
    from estbench.store.sql import load_sql

    names = check_inputs(store, space, metric, protocol, list(estimators or []))
    params = {
        "space": space, "metric": metric, "protocol": protocol, "post_deiso": bool(post_deiso),
        "estimators": names, "epochs": [int(e) for e in epochs or []], "seeds": [int(s) for s in seeds or []],
    }  # fmt: skip
    if sql == "points":
        rows = store.criteria_points(params)
    else:
        rows = store._numpy(load_sql(sql), params, f"building {sql.replace('_', ' ')}")
    stats = store.group_stats({k: params[k] for k in ("space", "estimators", "epochs", "seeds")})
    return names, rows, stats


def split_points(rows: dict[str, np.ndarray], stats: dict | None = None) -> list[PointSet]:
    """Cut the rows of ``points.sql`` into one PointSet per group."""
    out: list[PointSet] = []
    if not len(rows["estimator"]):
        return out
    est, cfg, ep = (np.asarray(rows[c]) for c in ("estimator", "config_hash", "epoch"))
    # rows come ordered by group: a group starts where any part of the key changes
    starts = np.flatnonzero((est[1:] != est[:-1]) | (cfg[1:] != cfg[:-1]) | (ep[1:] != ep[:-1])) + 1
    bounds = [0, *starts.tolist(), len(est)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sl = slice(lo, hi)
        key = (str(est[lo]), str(cfg[lo]), int(ep[lo]))
        label, config = (stats or {}).get(key, (None,) * 5)[3:5]
        out.append(
            PointSet(
                *key,
                rep=rows["rep"][sl].astype(np.int64),
                members=rows["members"][sl].astype(np.int64),
                truth=rows["truth"][sl].astype(float),
                score=rows["score"][sl].astype(float),
                truth_rank=rows["truth_rank"][sl].astype(np.int64),
                score_rank=rows["score_rank"][sl].astype(np.int64),
                higher_is_better=bool(rows["higher_is_better"][lo]),
                truth_higher_is_better=bool(rows["truth_higher_is_better"][lo]),
                label=label,
                config=config,
            )
        )
    return out


def group_names(sets: list) -> list[str]:
    """Readable names of groups (estimator, with config / epoch only where needed)."""
    from estbench.report.tables import group_label

    return [group_label(sets, g) for g in sets]


def arch_values(store: Store, space: str, estimator: str, arch_ids: np.ndarray, epoch: int = 0) -> np.ndarray:
    """``estimator``'s value at each of ``arch_ids`` (NaN where it has none). Needs one
    config of it in the store (the structural estimators have one per shape); with
    several, the one that scored most archs is used."""
    data = store.arch_values(space, estimator, epoch)
    if not len(data["arch_id"]):
        raise BadInput(
            f"no {estimator} scores for {space} in the store; run `estbench score --space {space} -e {estimator}` "
            "(structural estimators take seconds)"
        )
    hashes, counts = np.unique(data["config_hash"], return_counts=True)
    pick = data["config_hash"] == hashes[np.argmax(counts)]
    ids, vals = data["arch_id"][pick].astype(np.int64), data["value"][pick].astype(float)
    out = np.full(len(arch_ids), np.nan)
    at = np.searchsorted(ids, arch_ids)
    at = np.minimum(at, len(ids) - 1)
    hit = ids[at] == arch_ids
    out[hit] = vals[at[hit]]
    return out


def complexity_of(store: Store, space: str, by: str, arch_ids: np.ndarray) -> np.ndarray:
    """params or flops of each architecture, from the stored structural scores."""
    if by not in COMPLEXITY:
        raise BadInput(f"--by {by!r}: expected one of {', '.join(COMPLEXITY)}")
    values = arch_values(store, space, by, np.asarray(arch_ids, dtype=np.int64))
    missing = int(np.isnan(values).sum())
    if missing:
        raise BadInput(
            f"{missing} of {len(values)} points have no {by} score; run `estbench score --space {space} -e {by}`"
        )
    return values


def complexity_groups(values: np.ndarray, n_groups: int) -> np.ndarray:
    """Group index (0 = smallest) of each value: the point's fraction of strictly
    smaller values, cut into ``n_groups`` equal ranges, so tied values share a group
    (NB201 has 28 distinct parameter counts) and groups are as equal as ties allow."""
    if n_groups < 1:
        raise BadInput(f"--groups {n_groups}: must be at least 1")
    v = np.asarray(values, dtype=float)
    below = np.searchsorted(np.sort(v), v, side="left")
    return np.minimum((below * n_groups) // max(len(v), 1), n_groups - 1).astype(np.int64)
