"""Rank aggregates of stored scores: the newer proxies that their authors define as a
combination of ranks over the scored population (like ``vote``, computed from the store
alone, no network, no torch; see :data:`AGGREGATES`):

- ``az_nas`` (AZ-NAS, Lee & Ham, CVPR 2024, ``tss_general.ipynb``): sum of
  log(rank / N) of FLOPs (higher is better there), expressivity, progressivity and
  trainability; ranks ascending with ties averaged (``scipy.stats.rankdata``).
- ``vkdnw_agg`` (Tybl & Neumann, CVPR 2025, ``paper_preparation.ipynb``): the same sum
  over FLOPs, AZ-NAS expressivity and trainability, jacob_cov and ``vkdnw_single``
  (whose ranks are the paper's dense ranks of (aleph, entropy) when no two archs tie).
- ``tenas`` (TE-NAS, Chen et al., ICLR 2021, ``prune_tenas.py``): minus the sum of the
  dense ranks of the NTK condition number (ascending: 0 = best) and of the number of
  linear regions (descending), so that higher is better. The reference ranks the
  *changes* when an op is pruned from a supernet; ranking whole architectures by the
  two values is what its rank sum becomes for a population of standalone networks.

An arch enters a seed's population when every expert has a row for it (a structural
expert's one row serves every seed); an expert value that is non-finite or failed
(NULL mean) ranks lowest, as the references map nan to -inf. N cancels in the ordering
(log(r/N) shifts every arch by the same constant) but is kept so the values are those of
the references. The expert configs are matched as vote's families are
(:func:`estbench.runs.vote.vote_families`): one config per expert whose shared
settings agree, restricted to the request's settings."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from estbench.errors import BadInput
from estbench.runs.loop import ScoreSummary
from estbench.store import Store


@dataclass(frozen=True)
class Aggregate:
    experts: tuple[str, ...]
    rule: str  # log_rank_sum | dense_rank_sum
    description: str


AGGREGATES: dict[str, Aggregate] = {
    "az_nas": Aggregate(
        ("flops", "az_expressivity", "az_progressivity", "az_trainability"),
        "log_rank_sum",
        "AZ-NAS: sum of log(rank/N) of flops, az_expressivity, az_progressivity, az_trainability",
    ),
    "vkdnw_agg": Aggregate(
        ("flops", "az_expressivity", "az_trainability", "jacob_cov", "vkdnw_single"),
        "log_rank_sum",
        "VKDNW_agg: sum of log(rank/N) of flops, az_expressivity, az_trainability, jacob_cov, vkdnw_single",
    ),
    "tenas": Aggregate(
        ("ntk_cond", "linear_regions"),
        "dense_rank_sum",
        "TE-NAS: minus the sum of the dense ranks of ntk_cond (ascending) and linear_regions (descending)",
    ),
}


def aggregate_scores(values: np.ndarray, rule: str) -> np.ndarray:
    """The aggregate of a population: ``values`` (archs x experts), every column
    oriented so that higher is better, nan = lowest. log_rank_sum: sum over experts of
    log(rank / N), ranks ascending from 1 with ties averaged; dense_rank_sum: minus the
    sum of each expert's dense rank from the best (0 = the best value)."""
    from scipy.stats import rankdata

    values = np.asarray(values, dtype=np.float64)
    n, k = values.shape
    if n == 0:
        return np.zeros(0)
    filled = np.where(np.isnan(values), -np.inf, values)
    if rule == "log_rank_sum":
        return np.sum([np.log(rankdata(filled[:, e]) / n) for e in range(k)], axis=0)
    if rule == "dense_rank_sum":
        return -np.sum([rankdata(-filled[:, e], method="dense") - 1 for e in range(k)], axis=0)
    raise ValueError(f"unknown aggregate rule {rule!r}")


def population(
    rows: list[tuple[str, str, int, int, float | None]], experts: list[str]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """seed -> (arch_ids, archs x experts values in ``experts`` order) from
    ``Store.aggregate_values`` rows; structural experts' values serve every seed."""
    fixed: dict[str, dict[int, float]] = {}
    seeded: dict[str, dict[int, dict[int, float]]] = {}
    for est, kind, seed, arch, value in rows:
        v = np.nan if value is None else float(value)
        if kind == "structural":
            fixed.setdefault(est, {})[arch] = v
        else:
            seeded.setdefault(est, {}).setdefault(seed, {})[arch] = v
    seeds = sorted(set.intersection(*(set(s) for s in seeded.values()))) if seeded else [0]
    out = {}
    for seed in seeds:
        columns = [fixed[e] if e in fixed else seeded.get(e, {}).get(seed, {}) for e in experts]
        archs = sorted(set.intersection(*(set(c) for c in columns)))
        if archs:
            out[seed] = (np.asarray(archs), np.array([[c[a] for c in columns] for a in archs], dtype=np.float64))
    return out


def score_aggregates(store: Store, space: str, names: list[str], want: dict) -> list[ScoreSummary]:
    """(Re)compute the aggregates ``names`` for every matching family of expert configs;
    each replaces that family's previous rows (it depends on the whole population)."""
    from estbench.runs.vote import vote_families, write_derived
    from estbench.runs.zeroshot import trained_weights

    if isinstance(want.get("init"), str) and trained_weights(want["init"]) is not None:
        raise BadInput(f"{', '.join(names)}: rank aggregates read their experts at epoch 0: not on trained weights")
    summaries = []
    for name in names:
        agg = AGGREGATES[name]
        experts = list(agg.experts)
        for family in vote_families(store, space, experts, want, name):
            start = time.perf_counter()
            listed = [f"{e}:{family[e]}" for e in experts]
            pops = population(store.aggregate_values(space, listed), experts)
            if not pops:
                raise BadInput(
                    f"{name} needs scores of all its experts ({', '.join(experts)}) for the same archs; "
                    f"score them first with `estbench score --space {space} --zse ...`"
                )
            settings = {"space": space, "experts": sorted(listed), "rule": agg.rule}
            values = [
                (a, seed, v)
                for seed, (archs, columns) in pops.items()
                for a, v in zip(archs, aggregate_scores(columns, agg.rule))
            ]
            summaries.append(write_derived(store, space, name, settings, values, start))
    return summaries
