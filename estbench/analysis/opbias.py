"""Op-level bias (paper Sec. 5.1 "Op-level bias", A.2.2, Fig. A11-A13, B.2): how an
estimator judges the effect of one decision change (an edit-distance-1 mutation, e.g.
one edge's ``skip_connect`` replaced by ``nor_conv_3x3``) compared with the truth.

Pairs. The space's ``mutation_pairs`` gives every ordered edit-distance-1 pair of
architectures with its kind (``"from->to"`` in cell spaces). Under the ``iso``
protocol a node is an architecture: every ordered pair is one pair (NB201: 6 edges x
5^5 settings of the other edges = 18,750 pairs per ordered kind ``a->b``). Under the
``deiso`` protocols a node is an isomorphism class (one point of ``load_points``:
class truth = mean over the members with truth, class score = the representative's,
or the mean of the scored members with ``post_deiso``): classes A and B are connected
by kind K when some member of A mutates into some member of B by kind K; each
distinct (A, B, K) counts once however many member pairs realise it, and A == B is
dropped (a mutation inside one class changes nothing that is measured). A pair is
kept for an estimator when both of its ends are points of that estimator (both have
truth and a finite score).

Changes. For a pair (a -> b), ``d_truth = y[b] - y[a]`` and ``d_score = s[b] - s[a]``
with both oriented so that higher is better (``PointSet.y`` / ``.s``: a loss or an
error enters negated, so a loss decrease is an increase). ``truth_up`` is the share
of pairs with ``d_truth > 0``, ``score_up`` the share with ``d_score > 0``; a pair
with equal values (a change of exactly 0) counts as not increasing. ``diff =
score_up - truth_up``: positive means the estimator believes in the mutation more
often than the truth bears out (it overestimates what the mutation does), negative
that it underestimates it.

Complexity groups (Fig. A12). With ``group`` (one complexity group per point, e.g.
``complexity_groups`` of the points' params), only pairs whose two ends lie in the
same group are kept and every statistic is per (group, kind).

Everything here is numpy over arrays of pair indices: the pairs of a space are built
once (``class_pairs``), mapped onto each point set's indices (``point_pairs``) and
grouped by kind with ``bincount``; no Python loop runs over pairs. No torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUMMARY_COLUMNS = (
    "n", "truth_up", "score_up", "diff", "mean_d_truth", "median_d_truth", "mean_d_score", "median_d_score",
)  # fmt: skip


@dataclass
class ClassPairs:
    """Distinct ordered mutation pairs between nodes (architectures or classes)."""

    src: np.ndarray  # node index of the pair's start (int64)
    dst: np.ndarray  # node index of its end
    kind: np.ndarray  # index into ``kinds``
    kinds: list[str]  # kind names, sorted
    node_of_arch: np.ndarray  # node index of every architecture (position in the arch list)
    n_nodes: int

    def __len__(self) -> int:
        return len(self.src)


def class_pairs(src, dst, kinds, classes) -> ClassPairs:
    """Turn architecture-level pairs (positions ``src[i] -> dst[i]`` in an arch list,
    kind name ``kinds[i]``) into node-level pairs. ``classes``: the class key of every
    arch of the list (any sortable values; all distinct = every arch its own node, the
    iso protocol). Each distinct (class of src, class of dst, kind) is kept once and
    pairs inside one class are dropped; pairs come out sorted by (kind, src, dst), so
    the pairs of one kind are contiguous."""
    src = np.asarray(src, dtype=np.int64).reshape(-1)
    dst = np.asarray(dst, dtype=np.int64).reshape(-1)
    kinds = list(kinds)
    names = sorted(dict.fromkeys(kinds))  # a dict, not np.unique: 10x faster on 375,000 strings
    at = {k: i for i, k in enumerate(names)}
    kind = np.fromiter(map(at.__getitem__, kinds), dtype=np.int64, count=len(kinds))
    _, node = np.unique(np.asarray(classes), return_inverse=True)
    node = node.astype(np.int64).reshape(-1)
    n_nodes = int(node.max(initial=-1) + 1)
    a, b = node[src], node[dst]
    keep = a != b
    key = np.unique((kind[keep] * n_nodes + a[keep]) * n_nodes + b[keep])
    return ClassPairs(
        src=key // n_nodes % n_nodes,
        dst=key % n_nodes,
        kind=key // n_nodes // n_nodes,
        kinds=[str(x) for x in names],
        node_of_arch=node,
        n_nodes=n_nodes,
    )


def point_pairs(pairs: ClassPairs, rep_positions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs whose two ends are points of a point set, as point indices:
    ``rep_positions[i]`` is the position (in the arch list) of point i's representative.
    Returns (src, dst, kind) with src/dst indexing the point set's arrays."""
    point_of_node = np.full(pairs.n_nodes, -1, dtype=np.int64)
    rep_positions = np.asarray(rep_positions, dtype=np.int64)
    point_of_node[pairs.node_of_arch[rep_positions]] = np.arange(len(rep_positions), dtype=np.int64)
    pa, pb = point_of_node[pairs.src], point_of_node[pairs.dst]
    keep = (pa >= 0) & (pb >= 0)
    return pa[keep], pb[keep], pairs.kind[keep]


def _keys(src, dst, kind, n_kinds: int, group=None):
    """Segment key of every pair ((group, kind) or kind) and which pairs are kept."""
    kind = np.asarray(kind, dtype=np.int64)
    if group is None:
        return kind, np.ones(len(kind), dtype=bool), 1
    group = np.asarray(group, dtype=np.int64)
    ga, gb = group[src], group[dst]
    same = ga == gb
    n_groups = int(group.max(initial=-1) + 1) if len(group) else 1
    return ga * n_kinds + kind, same, max(n_groups, 1)


def _segment_median(key: np.ndarray, v: np.ndarray, n_keys: int) -> np.ndarray:
    """Median of ``v`` per key: one stable sort by key (none when the keys come sorted,
    as the pairs of ``class_pairs`` do by kind), then ``np.median`` per key segment
    (a loop over the segments, at most groups x kinds, never over pairs)."""
    if len(key) > 1 and not np.all(key[1:] >= key[:-1]):
        order = np.argsort(key, kind="stable")
        key, v = key[order], v[order]
    counts = np.bincount(key, minlength=n_keys)
    ends = np.cumsum(counts)
    out = np.full(n_keys, np.nan)
    for k in np.flatnonzero(counts):
        out[k] = np.median(v[ends[k] - counts[k] : ends[k]])
    return out


def changes(src, dst, y, s) -> tuple[np.ndarray, np.ndarray]:
    """(d_truth, d_score) of every pair: value at its end minus value at its start, of
    the oriented truth ``y`` and score ``s`` (higher is better)."""
    y, s = np.asarray(y, dtype=float), np.asarray(s, dtype=float)
    return y[dst] - y[src], s[dst] - s[src]


def _kept_changes(src, dst, kind, y, s, n_kinds: int, group=None):
    """(key, d_truth, d_score) of the kept pairs, the number of keys, the pairs per key
    and the keys that have pairs: what summaries and histograms both start from."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    key, keep, n_groups = _keys(src, dst, kind, n_kinds, group)
    key = key[keep]
    dt, ds = changes(src[keep], dst[keep], y, s)
    n_keys = n_groups * n_kinds
    n = np.bincount(key, minlength=n_keys)
    return key, dt, ds, n_keys, n, np.flatnonzero(n)


def summarize(src, dst, kind, y, s, n_kinds: int, group=None) -> dict[str, np.ndarray]:
    """Per kind (or per (group, kind) with ``group``, keeping same-group pairs only),
    over the pairs that occur: group (-1 without groups), kind (index), n, truth_up,
    score_up, diff, mean/median of d_truth and d_score. Rows with no pair are left out;
    rows are sorted by (group, kind)."""
    key, dt, ds, n_keys, n, has = _kept_changes(src, dst, kind, y, s, n_kinds, group)
    cnt = n[has].astype(float)

    def share(mask):
        return np.bincount(key, weights=mask.astype(float), minlength=n_keys)[has] / cnt

    def mean(v):
        return np.bincount(key, weights=v, minlength=n_keys)[has] / cnt

    truth_up, score_up = share(dt > 0), share(ds > 0)
    return {
        "group": has // n_kinds if group is not None else np.full(len(has), -1, dtype=np.int64),
        "kind": has % n_kinds,
        "n": n[has],
        "truth_up": truth_up,
        "score_up": score_up,
        "diff": score_up - truth_up,
        "mean_d_truth": mean(dt),
        "median_d_truth": _segment_median(key, dt, n_keys)[has],
        "mean_d_score": mean(ds),
        "median_d_score": _segment_median(key, ds, n_keys)[has],
    }


def pair_table(src, dst, kind, y, s, n_kinds: int, group=None) -> dict[str, np.ndarray]:
    """Every kept pair (same-group pairs only with ``group``), sorted by (group, kind,
    src, dst): group (-1 without groups), kind, src, dst (point indices), d_truth, d_score."""
    src, dst, kind = (np.asarray(x, dtype=np.int64) for x in (src, dst, kind))
    key, keep, _ = _keys(src, dst, kind, n_kinds, group)
    src, dst, kind, key = src[keep], dst[keep], kind[keep], key[keep]
    order = np.lexsort((dst, src, key))
    src, dst, kind, key = src[order], dst[order], kind[order], key[order]
    dt, ds = changes(src, dst, y, s)
    grp = key // n_kinds if group is not None else np.full(len(key), -1, dtype=np.int64)
    return {"group": grp, "kind": kind, "src": src, "dst": dst, "d_truth": dt, "d_score": ds}


def histogram(src, dst, kind, y, s, n_kinds: int, bins: int = 20, group=None) -> dict[str, np.ndarray]:
    """Binned counts of d_truth and d_score per kind (per (group, kind) with ``group``):
    ``bins`` equal bins over [min, max] of that kind's d_truth and d_score together
    (common edges, so the two histograms can be overlaid as in Fig. A11/A13; a kind whose
    changes are all one value v gets the range [v - 0.5, v + 0.5]). The last bin
    includes its upper edge. Columns: group, kind, bin (0-based), bin_lo, bin_hi,
    n_truth, n_score; every bin of every kind that has pairs is listed."""
    key, dt, ds, n_keys, n, has = _kept_changes(src, dst, kind, y, s, n_kinds, group)
    if len(key) > 1 and not np.all(key[1:] >= key[:-1]):
        order = np.argsort(key, kind="stable")
        key, dt, ds = key[order], dt[order], ds[order]
    starts = (np.cumsum(n) - n)[has]
    lo = np.full(n_keys, np.inf)
    hi = np.full(n_keys, -np.inf)
    if len(has):
        lo[has] = np.minimum.reduceat(np.minimum(dt, ds), starts)
        hi[has] = np.maximum.reduceat(np.maximum(dt, ds), starts)
    flat = hi == lo
    lo, hi = np.where(flat, lo - 0.5, lo), np.where(flat, hi + 0.5, hi)
    width = np.where(np.isfinite(hi - lo) & (hi > lo), hi - lo, 1.0)

    def counts(v):
        b = np.floor((v - lo[key]) / width[key] * bins).astype(np.int64)
        b = np.clip(b, 0, bins - 1)
        return np.bincount(key * bins + b, minlength=n_keys * bins).reshape(n_keys, bins)[has]

    ct, cs = counts(dt), counts(ds)
    edges = lo[has, None] + width[has, None] * np.arange(bins + 1)[None, :] / bins
    edges[:, -1] = hi[has]
    rep = np.repeat(has, bins)
    return {
        "group": rep // n_kinds if group is not None else np.full(len(rep), -1, dtype=np.int64),
        "kind": rep % n_kinds,
        "bin": np.tile(np.arange(bins), len(has)),
        "bin_lo": edges[:, :-1].reshape(-1),
        "bin_hi": edges[:, 1:].reshape(-1),
        "n_truth": ct.reshape(-1),
        "n_score": cs.reshape(-1),
    }


def space_pairs(store, space: str, protocol: str) -> tuple[ClassPairs, np.ndarray]:
    """The node-level mutation pairs of ``space`` under ``protocol`` (nodes: archs for
    ``iso``, the protocol's classes otherwise), built once from the store's
    architectures, and the arch ids in arch-list order (position -> arch id)."""
    from estbench.errors import BadInput
    from estbench.spaces import get_space

    facts = store.arch_facts(space, protocol)
    ids = facts["arch_id"].astype(np.int64)
    strs = [str(x) for x in facts["arch_str"]]
    try:
        src, dst, kinds = get_space(space).mutation_pairs(strs)
    except NotImplementedError:
        raise BadInput(f"space {space} defines no mutations; op-level bias needs edit-distance-1 pairs") from None
    classes = ids if protocol == "iso" else np.asarray([str(g) for g in facts["grp"]])
    return class_pairs(src, dst, kinds, classes), ids


def rep_positions(arch_ids: np.ndarray, reps: np.ndarray) -> np.ndarray:
    """Positions in the arch list (sorted ``arch_ids``) of representative arch ids."""
    at = np.searchsorted(arch_ids, reps)
    if len(reps) and (at.max() >= len(arch_ids) or not np.array_equal(arch_ids[at], reps)):
        raise ValueError("a representative arch id is missing from the arch list")
    return at
