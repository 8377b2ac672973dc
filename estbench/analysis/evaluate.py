"""Criteria over the store: SQL builds the point sets (joins, deiso grouping, ranks),
numpy/scipy compute the criteria per estimator group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from estbench.analysis.criteria import DEFAULT_KS, compute_criteria
from estbench.errors import BadInput
from estbench.store.sql import load_sql
from estbench.store.store import Store

PROTOCOLS = ("iso", "deiso", "deiso-computational")


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


def check_inputs(store: Store, space: str, metric: str, protocol: str, estimators: list[str]) -> list[str]:
    """Validate names against the store; return the estimators to evaluate."""
    from estbench.registry import Registry

    if protocol not in PROTOCOLS:
        raise BadInput(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    _, rows = store.query("SELECT DISTINCT space FROM archs")
    spaces = Registry("space in this store")
    for (s,) in rows:
        spaces.register(s, s)
    spaces.entry(space)
    _, rows = store.query("SELECT metric FROM metrics WHERE space = ?", [space])
    metrics = Registry(f"truth metric for {space}")
    for (m,) in rows:
        metrics.register(m, m)
    if not rows:
        raise BadInput(f"no truth loaded for {space}; run `estbench truth load --space {space}`")
    metrics.entry(metric)
    _, rows = store.query("SELECT DISTINCT estimator FROM scores WHERE space = ? ORDER BY 1", [space])
    scored = Registry(f"estimator scored for {space}")
    for (e,) in rows:
        scored.register(e, e)
    if not rows:
        raise BadInput(f"no scores for {space} in the store; run `estbench score --space {space} ...`")
    for e in estimators:
        scored.entry(e)
    return estimators or scored.names()


def evaluate(
    store: Store,
    space: str,
    metric: str,
    protocol: str = "deiso",
    estimators: list[str] | None = None,
    epochs: list[int] | None = None,
    seeds: list[int] | None = None,
    ks: tuple[float, ...] = DEFAULT_KS,
) -> list[GroupCriteria]:
    """Criteria of every (estimator, config, epoch) group against ``metric``."""
    names = check_inputs(store, space, metric, protocol, list(estimators or []))
    params = {
        "space": space, "metric": metric, "protocol": protocol, "estimators": names,
        "epochs": [int(e) for e in epochs or []], "seeds": [int(s) for s in seeds or []],
    }  # fmt: skip
    cur = store.con.execute(load_sql("points"), params)
    cols = [d[0] for d in cur.description]
    data = cur.fetchnumpy() if hasattr(cur, "fetchnumpy") else None
    rows = {c: np.asarray(data[c]) for c in cols}
    excl_params = {k: params[k] for k in ("space", "estimators", "epochs", "seeds")}
    stats = {(r[0], r[1], r[2]): r[3:] for r in store.con.execute(load_sql("group_stats"), excl_params).fetchall()}
    out: list[GroupCriteria] = []
    if not len(rows["estimator"]):
        return out
    keys = list(zip(rows["estimator"], rows["config_hash"], rows["epoch"]))
    bounds = [0] + [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sl = slice(lo, hi)
        y = rows["truth"][sl].astype(float)
        if not bool(rows["truth_higher_is_better"][lo]):
            y = -y
        vals = compute_criteria(
            y, rows["score"][sl].astype(float), rows["truth_rank"][sl], rows["score_rank"][sl],
            bool(rows["higher_is_better"][lo]), ks,
        )  # fmt: skip
        key = (str(keys[lo][0]), str(keys[lo][1]), int(keys[lo][2]))
        failed, nonfinite, seconds, label, config = stats.get(key, (0, 0, None, None, None))
        seconds = float("nan") if seconds is None else seconds
        out.append(GroupCriteria(*key, vals, int(failed), int(nonfinite), seconds, label, config))
    return out
