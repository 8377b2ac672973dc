"""Validation data size (paper Sec. 4.1, Fig. 3, A3): how an estimator's criteria change
with the number of validation batches its score averages, and why (intra-level KD).

Every stored batch of a score is kept (``scores.batch``), so the b-batch score of an
architecture is the mean of its first b batches (batch order = the ``batch`` column),
b = 1..B, where B is the most batches any architecture of the group has. An (arch,
seed) enters at b only if its first b batches are all ``ok``. Everything else follows
the points of ``criteria`` (``points.sql``): the b-batch scores are averaged over the
selected seeds, then formed into points by ``protocol`` (deiso: class-mean truth, the
representative's score, or the mean over scored members with ``post_deiso``). One SQL
query (``store/sql/batch_points.sql``) builds the point sets of every b at once; at b =
B they are criteria's wherever every arch has all B batches ok.

Levels (Fig. 3 right, A3): one-shot accuracy on one batch of 128 images takes at most
129 values, so many points tie under the 1-batch score. A level is a set of points with
the same 1-batch score; within each level of two or more points, the intra-level KD is
Kendall's tau-b of truth vs the B-batch score among the level's points: whether more
data orders the architectures that one batch cannot tell apart (negative: worse than a
tie, the paper's under-trained supernet). Levels are formed over the points that have
both a 1-batch and a B-batch score (matched by class). Numpy/scipy; no torch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from estbench.analysis.complexity import kendall_b
from estbench.analysis.criteria import compute_criteria, format_k
from estbench.analysis.points import PointSet, query_points, split_points
from estbench.store.store import Store


@dataclass
class BatchGroup:
    """One estimator group (estimator, config, epoch) with B >= 2 batches: its point set
    at every b that has points (``points[b]``) and each point's class id (``cls[b]``, the
    smallest arch id of its class, the same across b)."""

    estimator: str
    config_hash: str
    epoch: int
    n_batches: int
    points: dict[int, PointSet] = field(default_factory=dict)
    cls: dict[int, np.ndarray] = field(default_factory=dict)
    label: str | None = None
    config: str | None = None


@dataclass
class Levels:
    """The 1-batch levels of one group: every level's 1-batch score (``level``, best
    first), its number of points (``size``) and intra-level KD under the B-batch score
    (``kd``, NaN for a single point or a constant side)."""

    level: np.ndarray
    size: np.ndarray
    kd: np.ndarray
    points: int  # points with both a 1-batch and a B-batch score
    batches: int  # B: the group's largest b with points

    @property
    def multi(self) -> np.ndarray:
        return self.size >= 2

    def summary(self) -> dict[str, float]:
        """levels, multi_levels (with > 1 point), kd_levels (finite KD), positive /
        negative (KD > 0 / < 0) and mean_kd (over finite KDs; NaN if none)."""
        kd = self.kd[self.multi]
        fin = kd[np.isfinite(kd)]
        return {
            "levels": len(self.level),
            "multi_levels": int(self.multi.sum()),
            "kd_levels": len(fin),
            "positive": int((fin > 0).sum()),
            "negative": int((fin < 0).sum()),
            "mean_kd": float(fin.mean()) if len(fin) else float("nan"),
        }


def load_batch_points(
    store: Store,
    space: str,
    metric: str,
    protocol: str = "deiso",
    estimators: list[str] | None = None,
    epochs: list[int] | None = None,
    seeds: list[int] | None = None,
    post_deiso: bool = False,
) -> list[BatchGroup]:
    """The b-batch point sets of every group with B >= 2, in (estimator, config, epoch)
    order; validates the names first (BadInput)."""
    with store.session():
        _, rows, stats = query_points(
            store, space, metric, protocol, estimators, epochs, seeds, post_deiso, "batch_points"
        )
    out: list[BatchGroup] = []
    b = rows["b"].astype(np.int64)
    for lo, hi in runs_of(rows, ("estimator", "config_hash", "epoch", "b")):
        key = (str(rows["estimator"][lo]), str(rows["config_hash"][lo]), int(rows["epoch"][lo]))
        if not out or (out[-1].estimator, out[-1].config_hash, out[-1].epoch) != key:
            label, config = stats.get(key, (None,) * 5)[3:5]
            out.append(BatchGroup(*key, int(rows["n_batches"][lo]), label=label, config=config))
        part = {c: v[lo:hi] for c, v in rows.items()}
        out[-1].points[int(b[lo])] = split_points(part, stats)[0]
        out[-1].cls[int(b[lo])] = part["cls"].astype(np.int64)
    return out


def runs_of(rows: dict[str, np.ndarray], columns: tuple[str, ...]) -> list[tuple[int, int]]:
    """(lo, hi) of every run of equal ``columns`` in rows sorted by them."""
    n = len(rows[columns[0]])
    if not n:
        return []
    change = np.zeros(n - 1, dtype=bool)
    for c in columns:
        change |= rows[c][1:] != rows[c][:-1]
    cuts = [0, *(np.flatnonzero(change) + 1).tolist(), n]
    return list(zip(cuts[:-1], cuts[1:]))


def batch_criteria(group: BatchGroup, ks: tuple[float, ...]) -> list[dict[str, float]]:
    """Per b (ascending): b, points, distinct (distinct score values) and every criterion
    of ``compute_criteria`` of the b-batch points."""
    out = []
    for b in sorted(group.points):
        p = group.points[b]
        vals = compute_criteria(p.y, p.score, p.truth_rank, p.score_rank, p.higher_is_better, ks)
        out.append({"b": b, "points": len(p), "distinct": len(np.unique(p.score)), **vals})
    return out


def levels(group: BatchGroup) -> Levels:
    """The 1-batch levels of ``group`` and their intra-level KDs under the B-batch score
    (B = the group's largest b with points)."""
    first, last = min(group.points), max(group.points)
    p1, pb = group.points[first], group.points[last]
    _, i1, ib = np.intersect1d(group.cls[first], group.cls[last], assume_unique=True, return_indices=True)
    one, y, s = p1.s[i1], pb.y[ib], pb.s[ib]
    vals, inverse, sizes = np.unique(one, return_inverse=True, return_counts=True)
    order = np.arange(len(vals))[::-1]  # oriented 1-batch score, best first
    kd = np.full(len(vals), np.nan)
    for j in np.flatnonzero(sizes >= 2):
        at = inverse == j
        kd[j] = kendall_b(y[at], s[at])
    level = vals if p1.higher_is_better else -vals  # back to the stored score
    return Levels(level[order], sizes[order], kd[order], len(one), last)


def criteria_columns(ks: tuple[float, ...]) -> list[str]:
    """The criteria of ``variance batches``, in column order."""
    return ["kd", "spearman"] + [f"{c}@{format_k(k)}" for k in ks for c in ("p_top", "p_bottom", "br")]
