"""Ranking criteria of the paper (Sec. 3), on arrays.

With M points, true values y and scores s, r_i / n_i are the 1-based ordinal ranks of
y_i / s_i (1 = best). Ties are broken deterministically by a tie-break key (the
smallest arch id of the point), so set-based criteria never depend on sort
stability. For a proportion K, the top set holds the k = max(1, floor(K*M)) best
points (n_i <= k), the bottom set the k worst (n_i > M - k).

- ``lc``: Pearson linear correlation of (y, s)
- ``kd``: Kendall's tau-b (ties in y or s counted as neither concordant nor discordant)
- ``spearman``: Spearman's rho (average ranks for ties)
- ``p_top@K``: |{i: r_i <= k and n_i <= k}| / k
- ``p_bottom@K``: |{i: r_i > M-k and n_i > M-k}| / k
- ``br@K``: min{r_i : n_i <= k} / M (best true ranking among the top-k by score; lower is better)
- ``wr@K``: max{r_i : n_i <= k} / M (worst true ranking among the top-k by score; lower is better)
- ``mean``: the mean estimate (mean of s)

Correlations are computed on sign-corrected scores, so a lower-is-better estimator
(e.g. a loss) correlates positively when it ranks well.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

DEFAULT_KS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5)


def ordinal_ranks(values: np.ndarray, higher_is_better: bool = True, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """1-based ranks, 1 = best; ties broken by ascending ``tiebreak`` (default: position)."""
    v = np.asarray(values, dtype=float)
    key = -v if higher_is_better else v
    tb = np.arange(len(v)) if tiebreak is None else np.asarray(tiebreak)
    order = np.lexsort((tb, key))
    ranks = np.empty(len(v), dtype=np.int64)
    ranks[order] = np.arange(1, len(v) + 1)
    return ranks


def top_count(k: float, m: int) -> int:
    return max(1, int(np.floor(k * m + 1e-9)))


def format_k(k: float) -> str:
    """0.05 -> '5%', 0.001 -> '0.1%'."""
    return f"{k * 100:g}%"


def _corr(fn, y: np.ndarray, s: np.ndarray) -> float:
    if len(y) < 2 or np.all(y == y[0]) or np.all(s == s[0]):
        return float("nan")
    return float(fn(y, s)[0])


def compute_criteria(
    y: np.ndarray,
    s: np.ndarray,
    y_rank: np.ndarray,
    s_rank: np.ndarray,
    higher_is_better: bool = True,
    ks: tuple[float, ...] = DEFAULT_KS,
) -> dict[str, float]:
    """All criteria for one point set; ``y_rank``/``s_rank`` are 1-based ordinal ranks."""
    y = np.asarray(y, dtype=float)
    s = np.asarray(s, dtype=float)
    m = len(y)
    signed = s if higher_is_better else -s
    out: dict[str, float] = {
        "n": float(m),
        "lc": _corr(stats.pearsonr, y, signed),
        "kd": _corr(stats.kendalltau, y, signed),
        "spearman": _corr(stats.spearmanr, y, signed),
        "mean": float(np.mean(s)) if m else float("nan"),
    }
    for k in ks:
        c = top_count(k, m)
        top_true, top_est = y_rank <= c, s_rank <= c
        bot_true, bot_est = y_rank > m - c, s_rank > m - c
        tag = format_k(k)
        out[f"p_top@{tag}"] = float(np.sum(top_true & top_est)) / c
        out[f"p_bottom@{tag}"] = float(np.sum(bot_true & bot_est)) / c
        out[f"br@{tag}"] = float(y_rank[top_est].min()) / m
        out[f"wr@{tag}"] = float(y_rank[top_est].max()) / m
    return out


def criteria_from_arrays(
    y: np.ndarray,
    s: np.ndarray,
    higher_is_better: bool = True,
    tiebreak: np.ndarray | None = None,
    truth_higher_is_better: bool = True,
    ks: tuple[float, ...] = DEFAULT_KS,
) -> dict[str, float]:
    """Criteria of scores ``s`` against truth ``y`` (both 1-D, same length, finite)."""
    y = np.asarray(y, dtype=float)
    s = np.asarray(s, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError("y and s must be 1-D arrays of the same length")
    yr = ordinal_ranks(y, truth_higher_is_better, tiebreak)
    sr = ordinal_ranks(s, higher_is_better, tiebreak)
    if not truth_higher_is_better:
        y = -y
    return compute_criteria(y, s, yr, sr, higher_is_better, ks)
