"""Uncertainty of the criteria: percentile bootstrap intervals (resampling points) and a
paired comparison of two estimators (bootstrap and permutation tests).

Resample semantics. A resample of a point set of M points draws M points with
replacement (M uniform draws of a point index). A point drawn c times enters the
resample as c separate points with tied truth and score. Ranks of the resample are
ordinal, 1 = best, ties broken by the original ordinal rank (itself broken by the
point's representative id), so the copies of one point take consecutive ranks, and the
j-th copy has the j-th of those ranks in both the truth and the score order. The top /
bottom set holds k = max(1, floor(K*M)) points, as in ``criteria``. Kendall's tau-b and
Spearman's rho (average ranks) treat the copies as ties, as they treat any tie. A
resample where the truth or the score is constant has no correlation (NaN, as in
``compute_criteria``); such resamples are left out of the percentiles.

Nothing is materialised: a resample is a row of a count matrix C (B x M, C[b, i] = how
often point i was drawn), and every criterion is computed from C with numpy on whole
(resamples x points) arrays: resampled ranks are cumulative counts in the original
rank order, Pearson and Spearman are count-weighted, the set criteria count the copies
whose consecutive ranks fall inside the sets. Kendall's tau-b counts discordant pairs
with scipy's own Fenwick-tree routine (what ``kendalltau`` runs after its sorts; a
numpy merge sort where scipy lacks it) on the resample laid out in truth order, a
``np.repeat`` of a fixed order, no sort; the tie terms come from C.

The draws depend only on (seed, M): groups with the same number of points get the same
resamples, so intervals of estimators on the same points are paired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from estbench.analysis.criteria import DEFAULT_KS, format_k, ordinal_ranks, top_count
from estbench.errors import BadInput

MIN_POINTS = 10  # fewer points: no interval (a resample of 9 points is mostly ties)
MIN_RESAMPLES = 10
CORRELATIONS = ("lc", "kd", "spearman")
SET_CRITERIA = ("p_top", "p_bottom", "br", "wr")
_CHUNK = 1 << 19  # elements of one (resamples x points) block

try:  # scipy's discordant-pair counter (what kendalltau calls after sorting)
    from scipy.stats._stats import _kendall_dis
except ImportError:  # pragma: no cover - a scipy without it: the same count by a numpy merge sort
    _kendall_dis = None


def criterion_names(ks: tuple[float, ...] = DEFAULT_KS) -> list[str]:
    """Every criterion ``compute_criteria`` returns (but ``n``), in its order."""
    return ["lc", "kd", "spearman", "mean"] + [f"{c}@{format_k(k)}" for k in ks for c in SET_CRITERIA]


def check_level(ci: float, resamples: int, seed: int) -> None:
    """Validate --ci (percent, in (0, 100)), --resamples and --ci-seed (BadInput)."""
    if not 0 < ci < 100:
        raise BadInput(f"--ci {ci:g}: a confidence level in percent, strictly between 0 and 100 (e.g. 95)")
    if resamples < MIN_RESAMPLES:
        raise BadInput(f"--resamples {resamples}: at least {MIN_RESAMPLES}")
    if seed < 0:
        raise BadInput(f"--ci-seed {seed}: must be >= 0")


# --- resamples ------------------------------------------------------------------------


def resample_indices(m: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, m) point indices, m draws with replacement per resample; a function of
    (seed, m) only."""
    rng = np.random.default_rng([int(seed), int(m)])
    return rng.integers(0, m, size=(int(resamples), int(m)))


def counts_of(indices: np.ndarray, m: int) -> np.ndarray:
    """The count matrix of resample indices: C[b, i] = how often row b drew point i."""
    out = np.empty(indices.shape[:1] + (m,), dtype=np.int32)
    step = max(1, _CHUNK // max(m, 1))
    for lo in range(0, len(out), step):
        part = indices[lo : lo + step]
        flat = (part + (np.arange(len(part)) * m)[:, None]).ravel()
        out[lo : lo + len(part)] = np.bincount(flat, minlength=len(part) * m).reshape(len(part), m)
    return out


def resample_counts(m: int, resamples: int, seed: int) -> np.ndarray:
    return counts_of(resample_indices(m, resamples, seed), m)


def swap_masks(m: int, permutations: int, seed: int) -> np.ndarray:
    """(permutations, m) booleans, each True with probability 1/2; a function of (seed, m)."""
    rng = np.random.default_rng([int(seed), int(m), 1])
    return rng.random((int(permutations), int(m))) < 0.5


def percentile_interval(values: np.ndarray, ci: float) -> tuple[float, float]:
    """The (100-ci)/2 and (100+ci)/2 percentiles (numpy's linear interpolation) of the
    resampled values that are not NaN; NaN when none is."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(100 - ci) / 200, (100 + ci) / 200])
    return float(lo), float(hi)


# --- criteria of many resamples at once ---------------------------------------------------


def _groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """For values in sorted order: (start of each run of equal values, run index of each
    position); None when no two values are equal."""
    new = np.r_[True, values[1:] != values[:-1]]
    if new.all():
        return None
    return np.flatnonzero(new), np.cumsum(new) - 1


@dataclass
class _Prepared:
    """What one point set's resamples share: its orders and tie structure."""

    m: int
    ot: np.ndarray  # point indices in truth order (best first)
    os: np.ndarray  # point indices in score order (best first)
    s_at_t: np.ndarray  # position in score order of each truth-order position
    t_at_s: np.ndarray  # position in truth order of each score-order position
    y_groups: tuple | None  # ties of the truth, in truth order
    s_groups: tuple | None  # ties of the score, in score order
    joint: tuple | None  # (order, starts) of points tied in both, in truth order
    yd_t: np.ndarray  # dense rank of the truth (1 = best), truth order
    sd_t: np.ndarray  # dense rank of the score (1 = best), truth order
    lin: np.ndarray  # (m, 6): centred scaled y and signed s, their squares and product, score; truth order


def _dense(sorted_desc: np.ndarray) -> np.ndarray:
    return np.cumsum(np.r_[True, sorted_desc[1:] != sorted_desc[:-1]]).astype(np.intp)


def prepare(y, s, score, truth_rank, score_rank) -> _Prepared:
    """``y``/``s``: truth and score oriented so that higher is better; ``score`` as stored
    (for ``mean``); ranks: the 1-based ordinal ranks of the point set."""
    y, s, score = (np.asarray(a, dtype=float) for a in (y, s, score))
    m = len(y)
    ot = np.argsort(np.asarray(truth_rank), kind="stable")
    os_ = np.argsort(np.asarray(score_rank), kind="stable")
    pos_s = np.empty(m, dtype=np.intp)
    pos_s[os_] = np.arange(m)
    pos_t = np.empty(m, dtype=np.intp)
    pos_t[ot] = np.arange(m)
    y_t, s_s = y[ot], s[os_]
    if np.any(np.diff(y_t) > 0) or np.any(np.diff(s_s) > 0):
        raise ValueError("ranks disagree with the values they rank")
    yd_t = _dense(y_t)
    sd = np.empty(m, dtype=np.intp)
    sd[os_] = _dense(s_s)
    sd_t = sd[ot]
    joint = None
    if _groups(y_t) is not None and _groups(s_s) is not None:
        key = yd_t.astype(np.int64) * (m + 1) + sd_t
        order = np.argsort(key, kind="stable")
        g = _groups(key[order])
        if g is not None:
            joint = (order, g[0])
    yc = y_t - y.mean()
    sc = s[ot] - s.mean()
    yc, sc = (v / (np.abs(v).max() or 1.0) for v in (yc, sc))  # Pearson is scale-free; no overflow in squares
    lin = np.stack([yc, sc, yc * yc, sc * sc, yc * sc, score[ot]], axis=1)
    return _Prepared(m, ot, os_, pos_s[ot], pos_t[os_], _groups(y_t), _groups(s_s), joint, yd_t, sd_t, lin)


def _group_counts(c: np.ndarray, groups: tuple | None) -> np.ndarray:
    return c if groups is None else np.add.reduceat(c, groups[0], axis=1)


def _avg_ranks(c: np.ndarray, excl: np.ndarray, groups: tuple | None) -> np.ndarray:
    """Average (1 = best) ranks of each point's copies in the resample, in the order of ``c``."""
    if groups is None:
        return excl + (c + 1) / 2.0
    ng = np.add.reduceat(c, groups[0], axis=1)
    g_excl = np.cumsum(ng, axis=1) - ng
    return (g_excl + (ng + 1) / 2.0)[:, groups[1]]


def _pairs(n: np.ndarray) -> np.ndarray:
    """Per row, the number of pairs within each run of ties: sum n(n-1)/2 (exact in float64)."""
    nf = n.astype(float)
    return (np.einsum("ij,ij->i", nf, nf) - nf.sum(axis=1)) / 2


def _discordant(x: np.ndarray, z: np.ndarray) -> int:
    """Pairs with x_i < x_j and z_i > z_j; ``x`` sorted ascending, both dense ranks >= 1."""
    if _kendall_dis is not None:
        return int(_kendall_dis(x, z))
    return _merge_discordant(np.asarray(x), np.asarray(z))


def _merge_discordant(x: np.ndarray, z: np.ndarray) -> int:
    """Discordant pairs: order by (x, z), count the inversions of z by a bottom-up merge sort."""
    order = np.lexsort((z, x))  # within tied x, ascending z: no inversion among them
    zz = z[order].astype(np.int64)
    dis = 0
    width = 1
    n = len(zz)
    while width < n:
        for lo in range(0, n - width, 2 * width):
            left, right = zz[lo : lo + width], zz[lo + width : lo + 2 * width]
            # for each right element, left elements strictly greater
            dis += int(np.sum(len(left) - np.searchsorted(left, right, side="right")))
            zz[lo : lo + 2 * width] = np.sort(np.r_[left, right], kind="stable")
        width *= 2
    return dis


def _tau_b(tot, xtie, ytie, ntie, dis) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (tot - xtie - ytie + ntie - 2 * dis) / np.sqrt(tot - xtie) / np.sqrt(tot - ytie)
    return np.clip(tau, -1.0, 1.0)


def _chunk_criteria(p: _Prepared, c: np.ndarray, ks: tuple[float, ...], out: dict, rows: slice) -> None:
    m, nrow = p.m, len(c)
    ct = c[:, p.ot]  # counts in truth order
    cs = c[:, p.os]  # counts in score order
    inc_t = np.cumsum(ct, axis=1, dtype=np.int32)
    inc_s = np.cumsum(cs, axis=1, dtype=np.int32)
    tex = inc_t - ct  # copies ranked above the point's copies, truth order
    sex = inc_s - cs  # the same in score order

    # linear criteria: count-weighted sums
    ctf = ct.astype(float)
    sums = ctf @ p.lin
    sy, ss, syy, sss, sys_ = (sums[:, i] for i in range(5))
    ny, ns = _group_counts(ct, p.y_groups), _group_counts(cs, p.s_groups)
    flat = (ny.max(axis=1) == m) | (ns.max(axis=1) == m)  # constant truth or score
    with np.errstate(invalid="ignore", divide="ignore"):
        lc = (sys_ - sy * ss / m) / np.sqrt((syy - sy * sy / m) * (sss - ss * ss / m))
    out["mean"][rows] = sums[:, 5] / m

    # Spearman: count-weighted Pearson of the average ranks (centred)
    ry = _avg_ranks(ct, tex, p.y_groups) - (m + 1) / 2.0
    rs = _avg_ranks(cs, sex, p.s_groups) - (m + 1) / 2.0
    cy = ctf * ry
    var_s = np.einsum("ij,ij->i", cs * rs, rs)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.einsum("ij,ij->i", cy, rs[:, p.s_at_t]) / np.sqrt(np.einsum("ij,ij->i", cy, ry) * var_s)

    # Kendall tau-b: discordant pairs on the resample laid out in truth order
    dis = np.empty(nrow, dtype=np.int64)
    for r in range(nrow):
        dis[r] = _discordant(np.repeat(p.yd_t, ct[r]), np.repeat(p.sd_t, ct[r]))
    xtie = _pairs(ny)
    ytie = xtie if p.y_groups is None and p.s_groups is None else _pairs(ns)
    if p.joint is None:
        ntie = _pairs(ct) if p.y_groups is not None or p.s_groups is not None else xtie
    else:
        ntie = _pairs(np.add.reduceat(ct[:, p.joint[0]], p.joint[1], axis=1))
    tau = _tau_b(m * (m - 1) // 2, xtie, ytie, ntie, dis)
    for name, v in (("lc", lc), ("kd", tau), ("spearman", rho)):
        out[name][rows] = np.where(flat, np.nan, np.clip(v, -1.0, 1.0))

    # set criteria: copy j (1..count) of a point has ranks tex + j and sex + j. Only a
    # prefix (top sets) or suffix (bottom sets) of the columns can contribute: the
    # columns are cut where every row is past the set.
    sizes = [top_count(k, m) for k in ks]
    if not sizes:
        return
    lo_t, hi_t = tex.min(axis=0), inc_t.max(axis=0)  # both nondecreasing along truth order
    lo_s = inc_s.min(axis=0)
    w = min(m, int(np.searchsorted(lo_s, max(sizes), side="left")) + 1)  # score-order window
    t_s = tex[:, p.t_at_s[:w]]
    has = cs[:, :w] > 0
    run_min = np.minimum.accumulate(np.where(has, t_s, m), axis=1).ravel()
    run_max = np.maximum.accumulate(np.where(has, t_s + cs[:, :w], 0), axis=1).ravel()
    off = np.arange(nrow) * (m + 1)
    inc_flat = (inc_s[:, :w] + off[:, None]).ravel()
    t_flat, sex_flat = t_s.ravel(), sex[:, :w].ravel()
    row_start = np.arange(nrow) * w
    for k, n in zip(ks, sizes):
        tag = format_k(k)
        j = int(np.searchsorted(lo_t, n, side="left"))  # columns with a copy ranked <= n in truth
        hi = np.maximum(tex[:, :j], sex[:, p.s_at_t[:j]])
        out[f"p_top@{tag}"][rows] = np.minimum(np.clip(n - hi, 0, None), ct[:, :j]).sum(axis=1) / n
        j = int(np.searchsorted(hi_t, m - n, side="right"))  # columns with a copy ranked > m - n
        lo = np.minimum(tex[:, j:], sex[:, p.s_at_t[j:]])
        low = ct[:, j:]
        out[f"p_bottom@{tag}"][rows] = (low - np.minimum(np.clip(m - n - lo, 0, None), low)).sum(axis=1) / n
        # the point holding score rank n: the first whose inclusive count reaches n
        at = np.searchsorted(inc_flat, n + off, side="left")
        out[f"br@{tag}"][rows] = (run_min[at] + 1) / m
        before = np.where(at > row_start, run_max[np.maximum(at - 1, 0)], 0)
        out[f"wr@{tag}"][rows] = np.maximum(before, t_flat[at] + n - sex_flat[at]) / m


def resampled_criteria(
    y, s, score, truth_rank, score_rank, counts: np.ndarray, ks: tuple[float, ...] = DEFAULT_KS
) -> dict[str, np.ndarray]:
    """Every criterion of every resample (rows of ``counts``), as ``compute_criteria``
    would give on the materialised resample (see the module docstring)."""
    p = prepare(y, s, score, truth_rank, score_rank)
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != p.m:
        raise ValueError("counts must be (resamples, points)")
    out = {name: np.empty(len(counts)) for name in criterion_names(ks)}
    step = max(1, _CHUNK // max(p.m, 1))
    for lo in range(0, len(counts), step):
        rows = slice(lo, min(lo + step, len(counts)))
        _chunk_criteria(p, counts[rows].astype(np.int32, copy=False), ks, out, rows)
    return out


def points_criteria(points, counts: np.ndarray, ks: tuple[float, ...] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """``resampled_criteria`` of a PointSet."""
    return resampled_criteria(points.y, points.s, points.score, points.truth_rank, points.score_rank, counts, ks)


class Resamples:
    """Count matrices per number of points, drawn once per (seed, M) and shared."""

    def __init__(self, resamples: int = 1000, seed: int = 0):
        self.resamples, self.seed = int(resamples), int(seed)
        self._cache: dict[int, np.ndarray] = {}

    def counts(self, m: int) -> np.ndarray:
        if m not in self._cache:
            self._cache[m] = resample_counts(m, self.resamples, self.seed)
        return self._cache[m]


def criteria_intervals(
    points, ks: tuple[float, ...] = DEFAULT_KS, ci: float = 95.0, draws: Resamples | None = None, name: str = ""
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of every criterion of a PointSet."""
    m = len(points)
    if m < MIN_POINTS:
        who = f"{name}: " if name else ""
        raise BadInput(f"--ci: {who}{m} points; a bootstrap interval needs at least {MIN_POINTS}")
    draws = draws or Resamples()
    vals = points_criteria(points, draws.counts(m), ks)
    return {k: percentile_interval(v, ci) for k, v in vals.items()}


# --- criteria of many score vectors (the permutation test) --------------------------------


def _run_pairs(sorted_keys: np.ndarray) -> np.ndarray:
    """Per row of row-sorted keys, the pairs of equal keys: sum over runs of L(L-1)/2."""
    r, n = sorted_keys.shape
    if n < 2:
        return np.zeros(r)
    pos = np.broadcast_to(np.arange(n), (r, n))
    new = np.ones((r, n), dtype=bool)
    new[:, 1:] = sorted_keys[:, 1:] != sorted_keys[:, :-1]
    start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
    return (pos - start).sum(axis=1).astype(float)  # each element pairs with the earlier ones of its run


def key_criteria(y, truth_rank, keys: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Criteria ``names`` (kd, spearman, p_top@K, p_bottom@K, br@K, wr@K) of each row of
    ``keys`` (R x M non-negative integers, higher is better, best below ~2M so the
    per-row histograms stay small) as the score of M points
    whose truth ``y`` (higher is better) and ``truth_rank`` are fixed; ties of a row are
    broken by point position, as ``ordinal_ranks`` does (points in representative
    order). Integer keys let every row be ranked by counting (histograms and a radix
    sort) instead of by comparison sorts."""
    y = np.asarray(y, dtype=float)
    q = np.asarray(keys, dtype=np.int64)
    if q.size and q.min() < 0:
        raise ValueError("keys must be non-negative integers")
    r, m = q.shape
    big = int(q.max()) + 1 if q.size else 1
    tr = np.asarray(truth_rank)
    out = {n: np.empty(r) for n in names if n.split("@")[0] in RANK_CRITERIA}
    ot = np.argsort(tr, kind="stable")
    y_t = y[ot]
    yd_t = _dense(y_t)
    y_groups = _groups(y_t)
    tied_t = np.flatnonzero(np.bincount(yd_t)[yd_t] > 1) if y_groups is not None else np.zeros(0, dtype=np.intp)
    xtie = float(_pairs(np.bincount(yd_t)[None, :])[0])
    ay = None
    if "spearman" in out:
        from scipy.stats import rankdata

        ay = rankdata(y) - (m + 1) / 2.0
    flat_y = bool(np.all(y == y[0]))
    sets = [(n, n.split("@")[0], top_count(float(n.split("@")[1][:-1]) / 100, m)) for n in out if "@" in n]
    kdtype = np.int16 if big <= np.iinfo(np.int16).max else np.int32
    step = max(1, (1 << 21) // max(big, m))
    for lo in range(0, r, step):
        rows = slice(lo, min(lo + step, r))
        qc = q[rows]
        nr = len(qc)
        base = (np.arange(nr) * big)[:, None]
        hist = np.bincount((qc + base).ravel(), minlength=nr * big).reshape(nr, big)
        flat = (hist.max(axis=1) == m) | flat_y
        if "spearman" in out:  # ascending average ranks from the histogram
            avg = (np.cumsum(hist, axis=1) - hist + (hist + 1) / 2.0).ravel()
            av = avg[qc + base] - (m + 1) / 2.0
            with np.errstate(invalid="ignore", divide="ignore"):
                rho = (av @ ay) / np.sqrt(np.einsum("ij,ij->i", av, av) * (ay @ ay))
            out["spearman"][rows] = np.where(flat, np.nan, np.clip(rho, -1.0, 1.0))
        if "kd" in out:
            z_t = (big - qc[:, ot]).astype(np.intp)  # >= 1, ascending = worse score, like yd_t
            dis = np.array([_discordant(yd_t, z_t[i]) for i in range(nr)], dtype=float)
            ytie = _pairs(hist)
            ntie = np.zeros(nr)
            if len(tied_t):
                joint = np.sort(yd_t[tied_t].astype(np.int64) * big + qc[:, ot[tied_t]], axis=1)
                ntie = _run_pairs(joint)
            out["kd"][rows] = np.where(flat, np.nan, _tau_b(m * (m - 1) // 2, xtie, ytie, ntie, dis))
        if sets:
            order = np.argsort((big - 1 - qc).astype(kdtype), axis=1, kind="stable")  # score order
            ranked = tr[order]  # truth rank of the points in score order
            for name, crit, n in sets:
                if crit == "p_top":
                    out[name][rows] = (ranked[:, :n] <= n).sum(axis=1) / n
                elif crit == "p_bottom":
                    out[name][rows] = (ranked[:, m - n :] > m - n).sum(axis=1) / n
                elif crit == "br":
                    out[name][rows] = ranked[:, :n].min(axis=1) / m
                else:
                    out[name][rows] = ranked[:, :n].max(axis=1) / m
    return out


# --- comparing two estimators ---------------------------------------------------------------

COMPARE_DEFAULT = ("kd", "spearman", "p_top@5%", "br@5%")
RANK_CRITERIA = ("kd", "spearman") + SET_CRITERIA
METHODS = ("bootstrap", "permutation", "both")


def parse_criterion(text: str) -> str:
    """A criterion name as ``criteria`` prints it (kd, spearman, lc, p_top@5%, br@0.05 ...),
    canonical (K as a percentage); BadInput otherwise."""
    t = text.strip().lower()
    known = "kd, spearman, lc, p_top@K, p_bottom@K, br@K, wr@K (K like 5% or 0.05)"
    if t == "mean":
        raise BadInput("--criterion mean: the mean estimate is on each estimator's own scale, not comparable")
    if t in CORRELATIONS:
        return t
    if "@" in t:
        crit, k = t.split("@", 1)
        if crit in SET_CRITERIA:
            try:
                v = float(k[:-1]) / 100 if k.endswith("%") else float(k)
            except ValueError:
                v = float("nan")
            if not 0 < v <= 1:
                raise BadInput(f"--criterion {text!r}: K must be a proportion in (0, 1] like 5% or 0.05")
            return f"{crit}@{format_k(v)}"
    raise BadInput(f"--criterion {text!r}: unknown (known: {known})")


def ks_of(names: list[str]) -> tuple[float, ...]:
    """The proportions K the canonical criterion ``names`` use."""
    return tuple(dict.fromkeys(float(n.split("@")[1][:-1]) / 100 for n in names if "@" in n))


def rank_keys(s: np.ndarray) -> np.ndarray:
    """Twice the average ascending rank of each oriented score: an integer, M * 2 * the
    normalised rank (average rank / M, 1 = the best, ties share their average)."""
    from scipy.stats import rankdata

    return np.rint(2 * rankdata(s)).astype(np.int64)


@dataclass
class Comparison:
    criterion: str
    a: float
    b: float
    difference: float
    lo: float | None = None
    hi: float | None = None
    p_bootstrap: float | None = None
    p_permutation: float | None = None


def compare_points(
    a,
    b,
    names: list[str],
    method: str = "both",
    resamples: int = 1000,
    ci: float = 95.0,
    seed: int = 0,
) -> list[Comparison]:
    """Paired comparison of PointSets ``a`` and ``b`` on the same points (same order, by
    representative as ``common_points`` gives them; same truth): for each criterion its values, the difference a - b, its percentile
    bootstrap interval and two-sided bootstrap p-value (both estimators on the same
    resamples), and a paired permutation p-value (per point, the two estimators'
    normalised ranks swapped with probability 1/2)."""
    from estbench.analysis.criteria import compute_criteria

    m = len(a)
    if len(b) != m or not np.array_equal(a.truth, b.truth):
        raise ValueError("a and b must hold the same points in the same order")
    ks = ks_of(names)
    va = compute_criteria(a.y, a.score, a.truth_rank, a.score_rank, a.higher_is_better, ks)
    vb = compute_criteria(b.y, b.score, b.truth_rank, b.score_rank, b.higher_is_better, ks)
    out = [Comparison(n, va[n], vb[n], va[n] - vb[n]) for n in names]
    if method in ("bootstrap", "both"):
        counts = resample_counts(m, resamples, seed)
        ra, rb = points_criteria(a, counts, ks), points_criteria(b, counts, ks)
        for c in out:
            d = ra[c.criterion] - rb[c.criterion]
            d = d[~np.isnan(d)]
            c.lo, c.hi = percentile_interval(d, ci)
            if len(d):
                c.p_bootstrap = min(1.0, 2 * (1 + min(int(np.sum(d <= 0)), int(np.sum(d >= 0)))) / (1 + len(d)))
            else:
                c.p_bootstrap = float("nan")
    if method in ("permutation", "both"):
        rank_names = [n for n in names if n.split("@")[0] in RANK_CRITERIA]
        if rank_names:
            ua, ub = rank_keys(a.s), rank_keys(b.s)
            levels = np.unique(np.r_[ua, ub])  # the values a swap can produce, densely numbered
            ua, ub = np.searchsorted(levels, ua), np.searchsorted(levels, ub)
            swap = swap_masks(m, resamples, seed)
            obs = key_criteria(a.y, a.truth_rank, np.stack([ua, ub]), rank_names)
            pa = key_criteria(a.y, a.truth_rank, np.where(swap, ub, ua), rank_names)
            pb = key_criteria(a.y, a.truth_rank, np.where(swap, ua, ub), rank_names)
            for c in out:
                if c.criterion not in rank_names:
                    continue
                d_obs = abs(obs[c.criterion][0] - obs[c.criterion][1])
                d = np.abs(pa[c.criterion] - pb[c.criterion])
                if np.isnan(d_obs):
                    c.p_permutation = float("nan")
                    continue
                d = d[~np.isnan(d)]
                hits = int(np.sum(d >= d_obs - 1e-12 * max(1.0, d_obs)))
                c.p_permutation = (1 + hits) / (1 + len(d))
    return out


def common_points(a, b, classes_a: np.ndarray, classes_b: np.ndarray):
    """``a`` and ``b`` restricted to the classes both hold (``classes_*``: the class key
    of each point), in the same order, each point's representative the smaller of the
    two, ranks recomputed among the common points (ties by that representative)."""
    from estbench.analysis.points import PointSet

    ka, kb = np.asarray(classes_a).astype(str), np.asarray(classes_b).astype(str)
    _, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    rep = np.minimum(a.rep[ia], b.rep[ib])
    order = np.argsort(rep, kind="stable")
    ia, ib, rep = ia[order], ib[order], rep[order]
    out = []
    for p, idx in ((a, ia), (b, ib)):
        truth, score = p.truth[idx], p.score[idx]
        out.append(
            PointSet(
                p.estimator, p.config_hash, p.epoch, rep=rep, members=p.members[idx], truth=truth, score=score,
                truth_rank=ordinal_ranks(truth, p.truth_higher_is_better, rep),
                score_rank=ordinal_ranks(score, p.higher_is_better, rep),
                higher_is_better=p.higher_is_better, truth_higher_is_better=p.truth_higher_is_better,
                label=p.label, config=p.config,
            )
        )  # fmt: skip
    return out[0], out[1]


def add_intervals(groups, ks: tuple[float, ...], ci: float, resamples: int, seed: int) -> None:
    """Set ``g.ci`` of every criteria group (``evaluate``) (a BadInput naming the first group with too few points)."""
    from estbench.errors import BadInput
    from estbench.report.tables import group_label

    for g in groups:
        if len(g.points) < MIN_POINTS:
            raise BadInput(
                f"--ci: {group_label(groups, g)} has {len(g.points)} points; a bootstrap interval needs at least "
                f"{MIN_POINTS}"
            )
    draws = Resamples(resamples, seed)
    for g in groups:
        g.ci = criteria_intervals(g.points, ks, ci, draws)
