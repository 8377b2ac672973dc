"""Complexity-level bias (paper Sec. 5.1 "Complexity-level Bias", Fig. 5, A7, A29): which
complexity levels an estimator over- or underestimates, and how well it orders the
architectures within one level.

With M points (one estimator group against one truth metric), r_i / n_i are the
1-based ordinal true / estimated ranks of point i among ALL M points (1 = best; the
ranks of ``PointSet``), and the ranking difference is RD_i = r_i - n_i: positive when
the estimator ranks the point better than the truth does (overestimated), negative
when it ranks it worse (underestimated). The points are cut into complexity groups
(``points.complexity_groups`` of their params or FLOPs: quantiles, 0 = smallest, tied
values share a group). Per group, over its points:

- ``n``: points in the group; ``c_min`` / ``c_max``: its complexity range;
- ``kd``: Kendall's tau-b of truth vs score among the group's points only (the
  intra-group KD of Fig. 5; NaN with fewer than 2 points or a constant truth or score);
- ``mean_rd``: the mean of RD_i / M, in [-1, 1] (the ranks stay those among all M
  points: the group's position in the whole ranking, not a re-ranking inside it);
- ``mean_true_rank`` / ``mean_est_rank``: the means of r_i / M and n_i / M (so
  ``mean_rd = mean_true_rank - mean_est_rank``);
- ``mean_truth`` / ``mean_score``: the means of the values as stored.

An empty group (possible when ties make a quantile boundary jump over it) has n = 0
and NaN elsewhere. Everything is numpy/scipy over arrays; no torch."""

from __future__ import annotations

import numpy as np
from scipy import stats

COLUMNS = (
    "group", "n", "c_min", "c_max", "kd", "mean_rd", "mean_true_rank", "mean_est_rank", "mean_truth", "mean_score",
)  # fmt: skip


def kendall_b(y: np.ndarray, s: np.ndarray) -> float:
    """Kendall's tau-b of (y, s); NaN with fewer than 2 values or a constant side."""
    y, s = np.asarray(y, dtype=float), np.asarray(s, dtype=float)
    if len(y) < 2 or np.all(y == y[0]) or np.all(s == s[0]):
        return float("nan")
    return float(stats.kendalltau(y, s)[0])


def complexity_bias(
    y,
    s,
    y_rank,
    s_rank,
    groups,
    n_groups: int | None = None,
    complexity=None,
    truth=None,
    score=None,
) -> dict[str, np.ndarray]:
    """Per complexity group 0 .. n_groups-1 (default: max(groups) + 1), the columns of
    ``COLUMNS``. ``y`` / ``s``: truth and score oriented so that higher is better;
    ``y_rank`` / ``s_rank``: their 1-based ranks among all M points; ``groups``: the
    group index of every point; ``complexity``: the value the groups were cut from
    (for c_min / c_max; NaN without it); ``truth`` / ``score``: the stored values
    whose means are reported (default ``y`` / ``s``)."""
    y, s = np.asarray(y, dtype=float), np.asarray(s, dtype=float)
    yr, sr = np.asarray(y_rank, dtype=float), np.asarray(s_rank, dtype=float)
    g = np.asarray(groups, dtype=np.int64)
    m = len(y)
    if not (len(s) == len(yr) == len(sr) == len(g) == m):
        raise ValueError("y, s, y_rank, s_rank and groups must have one value per point")
    if m and g.min() < 0:
        raise ValueError("group indices must be >= 0")
    n_groups = int(g.max(initial=-1) + 1) if n_groups is None else int(n_groups)
    if m and g.max() >= n_groups:
        raise ValueError(f"a group index is >= n_groups ({n_groups})")
    truth = y if truth is None else np.asarray(truth, dtype=float)
    score = s if score is None else np.asarray(score, dtype=float)

    n = np.bincount(g, minlength=n_groups)
    has = n > 0
    denom = np.where(has, n, 1).astype(float)

    def mean(v):
        return np.where(has, np.bincount(g, weights=v, minlength=n_groups) / denom, np.nan)

    c_min, c_max = np.full(n_groups, np.inf), np.full(n_groups, -np.inf)
    if complexity is not None and m:
        c = np.asarray(complexity, dtype=float)
        np.minimum.at(c_min, g, c)
        np.maximum.at(c_max, g, c)
    else:
        c_min[:], c_max[:] = np.nan, np.nan
    c_min[~has], c_max[~has] = np.nan, np.nan
    scale = float(max(m, 1))
    order = np.argsort(g, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(n)])
    kd = np.array([kendall_b(y[order[a:b]], s[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])])
    return {
        "group": np.arange(n_groups, dtype=np.int64),
        "n": n.astype(np.int64),
        "c_min": c_min,
        "c_max": c_max,
        "kd": kd,
        "mean_rd": mean((yr - sr) / scale),
        "mean_true_rank": mean(yr / scale),
        "mean_est_rank": mean(sr / scale),
        "mean_truth": mean(truth),
        "mean_score": mean(score),
    }
