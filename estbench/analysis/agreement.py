"""Agreement between estimators and truth metrics (paper Fig. 4, A21, A22; Table A10):
a rank-correlation matrix whose columns are estimator groups and truth metrics.

A column is a vector over the points of the protocol (architectures, or isomorphism
classes under ``deiso``): for a truth metric the class truth (mean over the class's
members with a value, exactly as the criteria compute it), for an estimator group
(estimator, config, epoch) the class score of ``load_points`` (the representative's,
or the mean over the scored members with ``post_deiso``). Both are oriented so that
higher is better (a loss enters negated), so an estimator that ranks well correlates
positively with the truth. A cell is Kendall's tau-b (or Spearman's rho) over the
points both columns have (pairwise complete), with that number of points; fewer than
two common points, or a constant column over them, give NaN. The estimator-vs-truth
cell is the criteria's KD of that estimator on that metric over the same points.
Nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from estbench.analysis.points import PROTOCOLS, PointSet, group_names, known_names, load_points
from estbench.errors import BadInput
from estbench.store.sql import load_sql
from estbench.store.store import Store

METHODS = ("kendall", "spearman")


@dataclass
class Agreement:
    names: list[str]  # column names: truth metrics first, then estimator groups
    kinds: list[str]  # "truth" or "estimator", per column
    corr: np.ndarray  # (K, K) correlation, NaN where undefined
    n: np.ndarray  # (K, K) common points of each pair (the diagonal: the column's points)
    method: str
    columns: np.ndarray  # (K, P) oriented values over the P points, NaN where a column has none
    metrics: list[str]  # the truth metrics, in column order
    loads: int = 1  # how many point loads it took (one, unless metrics cover different classes)
    groups: list = field(default_factory=list)  # the PointSet of each estimator column, in column order


def default_metrics(metrics: list[str]) -> list[str]:
    """The metrics an agreement shows by default: those named ``*-test``, else all."""
    test = [m for m in metrics if m.endswith("-test")]
    return test or list(metrics)


def correlation(a: np.ndarray, b: np.ndarray, method: str = "kendall") -> float:
    """Kendall's tau-b or Spearman's rho of two finite vectors; NaN with fewer than two
    points or a constant vector."""
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    fn = stats.kendalltau if method == "kendall" else stats.spearmanr
    return float(fn(a, b)[0])


def pairwise(columns: np.ndarray, method: str = "kendall") -> tuple[np.ndarray, np.ndarray]:
    """(correlation, common points) of every pair of rows of ``columns`` (K x P, NaN =
    missing), each over the points both rows have."""
    if method not in METHODS:
        raise BadInput(f"unknown correlation {method!r} (known: {', '.join(METHODS)})")
    k = columns.shape[0]
    finite = np.isfinite(columns)
    corr, n = np.full((k, k), np.nan), np.zeros((k, k), dtype=np.int64)
    for i in range(k):
        for j in range(i, k):
            both = finite[i] & finite[j]
            n[i, j] = n[j, i] = int(both.sum())
            corr[i, j] = corr[j, i] = correlation(columns[i, both], columns[j, both], method)
    return corr, n


def _class_index(store: Store, space: str, protocol: str, truth: dict[str, np.ndarray]):
    """The sorted class keys of all truth rows, and a function mapping arch ids (a point
    set's representatives) to positions among them."""
    classes = np.unique(truth["grp"].astype(str))
    facts = store.arch_facts(space, protocol)
    arch_ids = facts["arch_id"].astype(np.int64)
    arch_cls = np.searchsorted(classes, facts["grp"].astype(str))

    def of(reps: np.ndarray) -> np.ndarray:
        return arch_cls[np.searchsorted(arch_ids, reps)]

    return classes, of


def _merge(loads: list[list[PointSet]], of) -> list[tuple[PointSet, np.ndarray, np.ndarray]]:
    """One (group, class positions, oriented scores) per estimator group over several loads
    (a group's class score does not depend on the metric, only which classes it has)."""
    merged: dict[tuple, tuple[PointSet, list, list]] = {}
    for sets in loads:
        for ps in sets:
            key = (ps.estimator, ps.config_hash, ps.epoch)
            g = merged.setdefault(key, (ps, [], []))
            g[1].append(of(ps.rep))
            g[2].append(ps.s)
    out = []
    for key in sorted(merged):
        ps, cls, s = merged[key]
        cls_all, s_all = np.concatenate(cls), np.concatenate(s)
        cls_u, first = np.unique(cls_all, return_index=True)
        out.append((ps, cls_u, s_all[first]))
    return out


def agreement(
    store: Store,
    space: str,
    metrics: list[str] | None = None,
    protocol: str = "deiso",
    estimators: list[str] | None = None,
    epochs: list[int] | None = None,
    seeds: list[int] | None = None,
    post_deiso: bool = False,
    method: str = "kendall",
) -> Agreement:
    """The agreement matrix of ``metrics`` (default: ``default_metrics``) and every
    selected estimator group; validates the names first (BadInput)."""
    if method not in METHODS:
        raise BadInput(f"unknown correlation {method!r} (known: {', '.join(METHODS)})")
    if protocol not in PROTOCOLS:
        raise BadInput(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    with store.session():
        known_names("space in this store", store.spaces()).entry(space)
        available = store.metric_names(space)
        if not available:
            raise BadInput(f"no truth loaded for {space}; run `estbench truth load --space {space}`")
        reg = known_names(f"truth metric for {space}", available)
        for m in metrics or []:
            reg.entry(m)
        chosen = list(dict.fromkeys(metrics or [])) or default_metrics(available)
        params = {"space": space, "protocol": protocol, "metrics": chosen}
        truth = store._numpy(load_sql("class_truth"), params, "reading class truths")
        classes, of = _class_index(store, space, protocol, truth)
        per_metric = {m: truth["metric"] == m for m in chosen}
        covered = {m: np.unique(np.searchsorted(classes, truth["grp"][w].astype(str))) for m, w in per_metric.items()}
        # one load under the metric with the most classes; another only for a metric
        # with classes that one lacks (a point needs a truth value of the loaded metric)
        order = sorted(chosen, key=lambda m: (-len(covered[m]), chosen.index(m)))
        loads, have = [], np.zeros(len(classes), dtype=bool)
        for m in order:
            if loads and have[covered[m]].all():
                continue
            sets = load_points(store, space, m, protocol, list(estimators or []), epochs, seeds, post_deiso)
            loads.append(sets)
            have[covered[m]] = True
    groups = _merge(loads, of)
    names_e = group_names([g[0] for g in groups])
    k_t, p = len(chosen), len(classes)
    columns = np.full((k_t + len(groups), p), np.nan)
    for i, m in enumerate(chosen):
        w = per_metric[m]
        y = truth["truth"][w].astype(float)
        hib = bool(truth["higher_is_better"][w][0]) if w.any() else True
        columns[i, np.searchsorted(classes, truth["grp"][w].astype(str))] = y if hib else -y
    for j, (_, cls, s) in enumerate(groups):
        columns[k_t + j, cls] = s
    names_t = [f"truth:{m}" if m in names_e else m for m in chosen]
    corr, n = pairwise(columns, method)
    return Agreement(
        names=names_t + names_e,
        kinds=["truth"] * k_t + ["estimator"] * len(groups),
        corr=corr,
        n=n,
        method=method,
        columns=columns,
        metrics=chosen,
        loads=len(loads),
        groups=[g[0] for g in groups],
    )
