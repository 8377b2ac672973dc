"""Pareto fronts of estimate vs complexity (paper A.2.1, Fig. A8-A10), on arrays.

Each point has a score (higher is better: an estimate or the truth, oriented) and a
cost (lower is better: params or FLOPs; negated for the paper's "inverse param front",
where a larger network is preferred). A point dominates another when it is no worse in
both and strictly better in one (score >= and cost <=, one of them strictly); two
points with equal score and equal cost do not dominate each other and share a level.
Level 1 is the non-dominated points, level k those non-dominated once levels 1..k-1
are removed (non-dominated sorting). Each level is found in O(n log n) by one sort by
cost (ties: higher score first) and a running maximum of the score. Nothing here
imports torch."""

from __future__ import annotations

import numpy as np


def non_dominated(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Mask of the points no other point dominates (higher score, lower cost better).

    A point q is dominated iff some p has cost_p < cost_q and score_p >= score_q, or
    cost_p == cost_q and score_p > score_q: sorted by cost, the first test is the
    running maximum of the scores of all strictly cheaper points, the second the best
    score of q's own cost."""
    s, c = np.asarray(score, dtype=float), np.asarray(cost, dtype=float)
    n = len(s)
    out = np.zeros(n, dtype=bool)
    if not n:
        return out
    order = np.lexsort((-s, c))
    ss, cs = s[order], c[order]
    start = np.ones(n, dtype=bool)
    start[1:] = cs[1:] != cs[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))  # first index of each cost tie
    run = np.maximum.accumulate(ss)
    cheaper = np.where(first > 0, run[np.maximum(first - 1, 0)], -np.inf)  # best score at a lower cost
    out[order] = (ss > cheaper) & (ss == ss[first])
    return out


def front_levels(score: np.ndarray, cost: np.ndarray, max_levels: int) -> np.ndarray:
    """Pareto level of each point (1 = non-dominated), 0 beyond ``max_levels``."""
    s, c = np.asarray(score, dtype=float), np.asarray(cost, dtype=float)
    level = np.zeros(len(s), dtype=np.int64)
    left = np.arange(len(s))
    for lv in range(1, max_levels + 1):
        if not len(left):
            break
        nd = non_dominated(s[left], c[left])
        level[left[nd]] = lv
        left = left[~nd]
    return level


GAP_COLUMNS = ("group", "lo", "hi", "levels", "n_group", "n_front", "gt_best", "pareto_best", "gap")


def pareto_gap(
    y: np.ndarray, level: np.ndarray, complexity: np.ndarray, groups: np.ndarray, max_levels: int
) -> dict[str, np.ndarray]:
    """Per complexity group g and number of levels L = 1..max_levels (paper Fig. A10):
    gt_best, the best oriented truth ``y`` in g; pareto_best, the best ``y`` among the
    points of g on estimator front levels <= L (``level``, computed over all points);
    gap = gt_best - pareto_best (>= 0; NaN when no such point lies in g); n_group and
    n_front, the points of g and those of them on levels <= L; lo / hi, the range of
    ``complexity`` in g."""
    y, level, c, groups = (np.asarray(a) for a in (y, level, complexity, groups))
    out: dict[str, list] = {k: [] for k in GAP_COLUMNS}
    for g in np.unique(groups):
        in_g = groups == g
        best = float(y[in_g].max())
        for lv in range(1, max_levels + 1):
            on = in_g & (level >= 1) & (level <= lv)
            pb = float(y[on].max()) if on.any() else float("nan")
            row = (int(g), float(c[in_g].min()), float(c[in_g].max()), lv, int(in_g.sum()), int(on.sum()), best, pb)
            for k, v in zip(GAP_COLUMNS, row + (best - pb,)):
                out[k].append(v)
    return {k: np.asarray(v) for k, v in out.items()}
