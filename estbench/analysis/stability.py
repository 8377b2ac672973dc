"""Ranking stability of one-shot estimators (paper Sec. 5.3, Fig. 7) and the effect of
multi-supernet averaging and temporal ensembles (Sec. 6.1, Fig. 8).

Relative criteria (Fig. 7) judge one set of scores against another taken as the truth:
on the points both have (matched by class: the smallest arch id of the point's class
among all archs, which also breaks rank ties), relative KD = Kendall's tau-b of the two
scores, relative P@topK / P@bottomK = the overlap of their top / bottom
max(1, floor(K*n)) points over that size (ordinal ranks of the oriented scores, 1 =
best). Both sides are scores of the same estimator, so both are oriented alike.

- consecutive checkpoints (``epoch_stability``): per (estimator, config) scored at
  epochs e1 < e2 < ...: the scores at e_i against those at e_{i+1};
- seeds (``seed_stability``): at one epoch, every pair of seeds (supernets trained with
  different seeds share a config and differ in the seed column), then the true criteria
  of every single seed and of the seed average (multi-supernet averaging);
- temporal ensembles (``ensemble_families``): the configs of one estimator that differ
  only in their ``ensemble`` setting (``score --ose RUN --ensemble K``), at one epoch.

The points are those of ``criteria`` (``points.sql``; ``seed_points.sql`` per seed):
--protocol, --post-deiso, scores averaged over batches and then over the selected
seeds. True criteria are criteria's (ties broken by the representative's arch id).
Numpy/scipy; no torch."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np

from estbench.analysis.batches import runs_of
from estbench.analysis.criteria import compute_criteria, criteria_from_arrays, format_k
from estbench.analysis.points import PointSet, query_points, split_points
from estbench.store.store import Store


def relative_names(ks: tuple[float, ...]) -> list[str]:
    """kd, p_top@K, p_bottom@K for every K: the criteria shared by relative and true rows."""
    return ["kd"] + [f"{c}@{format_k(k)}" for k in ks for c in ("p_top", "p_bottom")]


def ensemble_names(ks: tuple[float, ...]) -> list[str]:
    """The true criteria of the ensemble view: kd, spearman, p_top@K, p_bottom@K, br@K."""
    return ["kd", "spearman"] + [f"{c}@{format_k(k)}" for k in ks for c in ("p_top", "p_bottom", "br")]


def class_ids(store: Store, space: str, protocol: str) -> np.ndarray:
    """Per arch id: the smallest arch id of its class under ``protocol`` (-1 for ids the
    space lacks)."""
    facts = store.arch_facts(space, protocol)
    ids = facts["arch_id"].astype(np.int64)
    _, inverse = np.unique(facts["grp"].astype(str), return_inverse=True)
    smallest = np.full(inverse.max() + 1 if len(ids) else 0, np.iinfo(np.int64).max)
    np.minimum.at(smallest, inverse, ids)
    out = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int64)
    out[ids] = smallest[inverse]
    return out


def relative(a_cls, a_s, b_cls, b_s, ks: tuple[float, ...]) -> tuple[int, dict[str, float]]:
    """(common points, relative criteria) of oriented scores ``a_s`` against ``b_s`` taken
    as truth, on the classes both have."""
    common, ia, ib = np.intersect1d(a_cls, b_cls, assume_unique=True, return_indices=True)
    names = relative_names(ks)
    if not len(common):
        return 0, {k: float("nan") for k in names}
    vals = criteria_from_arrays(b_s[ib], a_s[ia], True, common, True, ks)
    return len(common), {k: vals[k] for k in names}


def true_criteria(p: PointSet, names: list[str], ks: tuple[float, ...]) -> dict[str, float]:
    vals = compute_criteria(p.y, p.score, p.truth_rank, p.score_rank, p.higher_is_better, ks)
    return {k: vals[k] for k in names}


@dataclass
class Transition:
    """Relative criteria of one (estimator, config) from epoch_from to epoch_to."""

    estimator: str
    config_hash: str
    epoch_from: int
    epoch_to: int
    n: int
    values: dict[str, float]


def epoch_stability(
    sets: list[PointSet], cls: np.ndarray, ks: tuple[float, ...]
) -> tuple[list[Transition], list[tuple[str, str]]]:
    """Transitions between consecutive epochs of every (estimator, config) with >= 2
    epochs (``sets`` in (estimator, config, epoch) order, as ``load_points`` gives them),
    and the (estimator, config) pairs left out for having one epoch."""
    out, single = [], []
    for key, group in itertools.groupby(sets, key=lambda p: (p.estimator, p.config_hash)):
        group = sorted(group, key=lambda p: p.epoch)
        if len(group) < 2:
            single.append(key)
        for a, b in zip(group[:-1], group[1:]):
            n, vals = relative(cls[a.rep], a.s, cls[b.rep], b.s, ks)
            out.append(Transition(*key, a.epoch, b.epoch, n, vals))
    return out, single


def load_seed_points(
    store: Store,
    space: str,
    metric: str,
    protocol: str = "deiso",
    estimators: list[str] | None = None,
    epochs: list[int] | None = None,
    seeds: list[int] | None = None,
    post_deiso: bool = False,
) -> dict[tuple[str, str, int], dict[int, tuple[PointSet, np.ndarray]]]:
    """(estimator, config, epoch) -> seed -> (its point set, each point's class id), from
    one query (``seed_points.sql``); validates the names first (BadInput)."""
    with store.session():
        _, rows, stats = query_points(
            store, space, metric, protocol, estimators, epochs, seeds, post_deiso, "seed_points"
        )
    out: dict[tuple[str, str, int], dict[int, tuple[PointSet, np.ndarray]]] = {}
    for lo, hi in runs_of(rows, ("estimator", "config_hash", "epoch", "seed")):
        part = {c: v[lo:hi] for c, v in rows.items()}
        p = split_points(part, stats)[0]
        out.setdefault((p.estimator, p.config_hash, p.epoch), {})[int(rows["seed"][lo])] = (
            p,
            part["cls"].astype(np.int64),
        )
    return out


@dataclass
class SeedRow:
    """One row of the seed view: ``scores`` (a seed, or the mean over ``seeds``) against
    ``against`` (another seed, or the truth metric)."""

    estimator: str
    config_hash: str
    epoch: int
    scores: str
    against: str
    n: int
    values: dict[str, float]


def seed_stability(
    per_seed: dict[tuple[str, str, int], dict[int, tuple[PointSet, np.ndarray]]],
    mean_sets: list[PointSet],
    metric: str,
    ks: tuple[float, ...],
) -> tuple[list[SeedRow], list[tuple[str, str, int]]]:
    """Per group with >= 2 seeds: every seed pair (relative criteria), every seed and the
    seed mean (``mean_sets``, criteria's points) against the truth; and the groups left
    out for having one seed."""
    names = relative_names(ks)
    means = {(p.estimator, p.config_hash, p.epoch): p for p in mean_sets}
    out, single = [], []
    for key in sorted(per_seed):
        seeds = per_seed[key]
        if len(seeds) < 2:
            single.append(key)
            continue
        order = sorted(seeds)
        for a, b in itertools.combinations(order, 2):
            (pa, ca), (pb, cb) = seeds[a], seeds[b]
            n, vals = relative(ca, pa.s, cb, pb.s, ks)
            out.append(SeedRow(*key, f"seed {a}", f"seed {b}", n, vals))
        for s in order:
            p = seeds[s][0]
            out.append(SeedRow(*key, f"seed {s}", metric, len(p), true_criteria(p, names, ks)))
        if key in means:
            p = means[key]
            tag = f"mean of seeds {','.join(map(str, order))}"
            out.append(SeedRow(*key, tag, metric, len(p), true_criteria(p, names, ks)))
    return out, single


@dataclass
class EnsembleRow:
    """The true criteria of one ensemble setting of a config family at one epoch."""

    estimator: str
    config_hash: str
    epoch: int
    ensemble: int
    family: int  # 1, 2, ...: the config family (configs equal but for their ensemble) among those shown
    n: int
    values: dict[str, float]


def ensemble_setting(config: str | None) -> tuple[str, int] | None:
    """(the config without its ensemble setting, as sorted JSON; the setting), or None
    for a config without one (not a one-shot config)."""
    try:
        settings = json.loads(config) if config else None
    except (TypeError, ValueError):
        return None
    if not isinstance(settings, dict) or not isinstance(settings.get("ensemble"), int):
        return None
    k = settings.pop("ensemble")
    return json.dumps(settings, sort_keys=True), k


def ensemble_families(sets: list[PointSet], ks: tuple[float, ...]) -> list[EnsembleRow]:
    """Per family of configs of one estimator that differ only in their ensemble setting,
    at every epoch where >= 2 settings were scored: each setting's true criteria (kd,
    spearman, p_top, p_bottom, br at each K), in (estimator, family, epoch, ensemble)
    order."""
    names = ensemble_names(ks)
    families: dict[tuple[str, str], dict[int, list[tuple[int, PointSet]]]] = {}
    for p in sets:
        setting = ensemble_setting(p.config)
        if setting is not None:
            families.setdefault((p.estimator, setting[0]), {}).setdefault(p.epoch, []).append((setting[1], p))
    out: list[EnsembleRow] = []
    shown = 0
    for _, epochs in sorted(families.items(), key=lambda kv: kv[0]):
        rows = []
        for epoch in sorted(epochs):
            members = sorted(epochs[epoch], key=lambda kp: kp[0])
            if len({k for k, _ in members}) >= 2:
                rows += [(epoch, k, p) for k, p in members]
        if rows:
            shown += 1
            out += [EnsembleRow(p.estimator, p.config_hash, e, k, shown, len(p), true_criteria(p, names, ks))
                    for e, k, p in rows]  # fmt: skip
    return out
