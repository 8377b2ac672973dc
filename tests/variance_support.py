"""A synthetic store for the variance tests, and the direct implementations they compare
against: the toy space with truth (tests/bias_support.make_store), and os_acc /
os_loss-like per-batch scores of known arrays at several epochs, two seeds, several
batches, three ensemble settings, a failed batch and an arch with fewer batches.

os_acc's batch values are multiples of 1/8 (an accuracy on 8 images), so the 1-batch
scores tie in levels; os_loss is continuous and lower-is-better. Everything a test
needs to recompute an analysis with numpy is in ``VarSyn``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from bias_support import make_store

from estbench.config import config_hash
from estbench.estimators import ESTIMATORS
from estbench.store import ScoreKey, ScoreRow, Store

METRIC = "cifar10-test"
SEEDS = (20, 2020)
# (ensemble setting, epochs, batches) of every config of each estimator
CONFIGS = ((1, (5, 10, 15), 4), (3, (10, 15), 3), (5, (15,), 2))
FAILED = ("os_loss", 1, 15, 2020, 4, 1)  # (estimator, ensemble, epoch, seed, arch, batch): status 'failed'
SHORT = ("os_acc", 1, 5, 20, 7, 2)  # (estimator, ensemble, epoch, seed, arch, batches): scored with fewer


@dataclass
class VarSyn:
    path: str
    arch_strs: list[str]
    iso_keys: list[str]
    truth: np.ndarray
    hashes: dict[tuple[str, int], str] = field(default_factory=dict)  # (estimator, ensemble) -> config hash
    # (estimator, ensemble, epoch, seed) -> (archs, batches) values; NaN = no 'ok' row
    values: dict[tuple[str, int, int, int], np.ndarray] = field(default_factory=dict)
    # the same keys -> (archs,) number of stored batch rows
    rows: dict[tuple[str, int, int, int], np.ndarray] = field(default_factory=dict)

    def groups(self, estimator: str) -> list[tuple[int, int]]:
        """(ensemble, epoch) of every group of ``estimator``."""
        return sorted({(k[1], k[2]) for k in self.values if k[0] == estimator})

    def seeds(self, estimator: str, ensemble: int, epoch: int) -> list[int]:
        return sorted(k[3] for k in self.values if k[:3] == (estimator, ensemble, epoch))


def make_variance_store(path: str, seed: int = 0) -> VarSyn:
    base = make_store(path, "toy", {}, metrics=(METRIC,), seed=seed)
    rng = np.random.default_rng(seed + 1)
    truth = base.truth[METRIC]
    n = len(truth)
    q = (truth - truth.mean()) / truth.std()
    syn = VarSyn(path, base.arch_strs, base.iso_keys, truth)
    st = Store(path)
    rows = []
    with st.session():
        for est in ("os_acc", "os_loss"):
            meta = ESTIMATORS.meta(est)
            st.put_estimator(est, meta["kind"], meta["higher_is_better"], meta["description"])
            for ens, epochs, n_batches in CONFIGS:
                settings = {"space": "toy", "train": {"sampler": "uniform", "c": 4}, "batch_size": 8, "bn": "train",
                            "recal_batches": 0, "ensemble": ens, "data": "synthetic"}  # fmt: skip
                chash = config_hash({"estimator": est, **settings})
                st.put_config(chash, est, settings, "syn" + (f" ens{ens}" if ens > 1 else ""))
                syn.hashes[(est, ens)] = chash
                for epoch in epochs:
                    for sd in SEEDS:
                        if ens > 1 and sd != SEEDS[0] and epoch != 15:
                            continue  # ensembles: the second seed at the last epoch only
                        signal = q * (epoch / 15) + rng.normal(0, 0.8, size=n)
                        noise = rng.normal(0, 1.0, size=(n, n_batches))
                        if est == "os_acc":
                            v = np.round(8 / (1 + np.exp(-(signal[:, None] + noise)))) / 8
                        else:
                            v = np.exp(-0.5 * (signal[:, None] + noise))
                        count = np.full(n, n_batches)
                        key = (est, ens, epoch, sd)
                        if SHORT[:4] == key:
                            count[SHORT[4]] = SHORT[5]
                            v[SHORT[4], SHORT[5] :] = np.nan
                        sk = ScoreKey("toy", est, chash, epoch, sd, n_batches)
                        for a in range(n):
                            for b in range(count[a]):
                                failed = FAILED == (*key, a, b)
                                if failed:
                                    v[a, b] = np.nan
                                rows.append(ScoreRow.of(sk, a, b, None if failed else float(v[a, b]), 0.0, None,
                                                        "boom" if failed else None))  # fmt: skip
                        syn.values[key], syn.rows[key] = v, count
        st.upsert_scores(rows)
    return syn


# ---- the direct implementation ------------------------------------------------------


def tau_b(x, y) -> float:
    """Kendall's tau-b by counting all pairs."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 2:
        return float("nan")
    conc = disc = tie_x = tie_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            tie_x += dx == 0
            tie_y += dy == 0
            if dx * dy > 0:
                conc += 1
            elif dx * dy < 0:
                disc += 1
    pairs = n * (n - 1) // 2
    den = math.sqrt((pairs - tie_x) * (pairs - tie_y))
    return (conc - disc) / den if den else float("nan")


def average_ranks(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return np.array([(v < x).sum() + ((v == x).sum() + 1) / 2 for x in v])


def spearman(x, y) -> float:
    rx, ry = average_ranks(x), average_ranks(y)
    if np.all(rx == rx[0]) or np.all(ry == ry[0]):
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def ordinal(values, tie) -> np.ndarray:
    """1-based ranks, highest value first, ties by ascending ``tie``."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], tie[i]))
    r = np.empty(len(values), dtype=int)
    for pos, i in enumerate(order):
        r[i] = pos + 1
    return r


def set_criteria(y, s, tie, k: float = 0.05) -> dict[str, float]:
    """p_top, p_bottom, br at K of oriented truth ``y`` and score ``s``."""
    m = len(y)
    c = max(1, int(math.floor(k * m + 1e-9)))
    yr, sr = ordinal(y, tie), ordinal(s, tie)
    tag = f"{k * 100:g}%"
    return {
        f"p_top@{tag}": sum(1 for i in range(m) if yr[i] <= c and sr[i] <= c) / c,
        f"p_bottom@{tag}": sum(1 for i in range(m) if yr[i] > m - c and sr[i] > m - c) / c,
        f"br@{tag}": min(yr[i] for i in range(m) if sr[i] <= c) / m,
    }


def hib(estimator: str) -> bool:
    return ESTIMATORS.meta(estimator)["higher_is_better"]


def arch_scores(syn: VarSyn, est: str, ens: int, epoch: int, seeds, b: int | None) -> np.ndarray:
    """Per arch: with ``b``, the mean over seeds of the mean of the first b batches
    (seeds whose first b batches are all ok); without, criteria's score: the mean over
    seeds of the mean over ok batches. NaN where no seed has one."""
    n = len(syn.truth)
    out = np.full(n, np.nan)
    for a in range(n):
        per_seed = []
        for sd in seeds:
            key = (est, ens, epoch, sd)
            if key not in syn.values:
                continue
            v = syn.values[key][a, : syn.rows[key][a]]
            if b is None:
                ok = v[~np.isnan(v)]
                if len(ok):
                    per_seed.append(ok.mean())
            elif len(v) >= b and not np.isnan(v[:b]).any():
                per_seed.append(v[:b].mean())
        if per_seed:
            out[a] = np.mean(per_seed)
    return out


def points(syn: VarSyn, score: np.ndarray, protocol: str = "deiso", post_deiso: bool = False):
    """(cls, rep, truth, score) per point with a score, by class id: the class truth is
    the mean over all members, the score the smallest scored member's (or the mean)."""
    keys = syn.iso_keys if protocol == "deiso" else [str(i) for i in range(len(score))]
    out = []
    for k in dict.fromkeys(keys):
        members = [i for i, key in enumerate(keys) if key == k]
        scored = [i for i in members if not np.isnan(score[i])]
        if scored:
            s = float(np.mean(score[scored])) if post_deiso else float(score[min(scored)])
            out.append((min(members), min(scored), float(np.mean(syn.truth[members])), s))
    out.sort()
    return [np.array(c) for c in zip(*out)]


def criteria_direct(truth, score, rep, higher: bool, k: float = 0.05) -> dict[str, float]:
    s = score if higher else -score
    return {"kd": tau_b(truth, s), "spearman": spearman(truth, s), **set_criteria(truth, s, rep, k)}


def close(a, b, tol: float = 1e-9) -> bool:
    if isinstance(b, float) and math.isnan(b):  # json and csv carry NaN as null
        return a is None or (isinstance(a, float) and math.isnan(a))
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= tol
