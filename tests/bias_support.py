"""A synthetic store for the analysis tests: real archs of a space, truth and scores drawn
from known arrays, so a test can recompute every analysis directly with numpy from the
same arrays (``Synthetic``) and compare."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from estbench.runs.loop import record_config
from estbench.runs.selection import ensure_archs
from estbench.spaces import get_space
from estbench.store import ScoreKey, ScoreRow, Store
from estbench.truth.model import MetricInfo, TruthTable


@dataclass
class Synthetic:
    path: str
    space: str
    arch_strs: list[str]
    iso_keys: list[str]
    truth: dict[str, np.ndarray]  # metric -> per-arch value (NaN: none)
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # estimator -> per-arch value (NaN: not scored)
    params: np.ndarray | None = None
    flops: np.ndarray | None = None


def make_store(
    path: str,
    space: str = "toy",
    estimators: dict[str, tuple[str, float]] | None = None,
    metrics: tuple[str, ...] = ("cifar10-test", "cifar100-test"),
    seed: int = 0,
    representatives_only: tuple[str, ...] = (),
    seeds: tuple[int, ...] = (20,),
) -> Synthetic:
    """A store of ``space`` with every arch, truth ``metrics`` (noisy functions of the
    structure), structural params and flops on every arch, and one zero-shot-like
    estimator per entry of ``estimators``: name -> (registered estimator to borrow the
    orientation from, noise level), e.g. {"synflow": ("synflow", 0.5)}; names listed in
    ``representatives_only`` are scored on the smallest arch id of each iso class only.
    Scores of several ``seeds`` differ by small noise."""
    rng = np.random.default_rng(seed)
    sp = get_space(space)
    st = Store(path)
    with st.session():
        ensure_archs(st, sp, None)
        strs = st.arch_strings(space)
        facts = st.arch_facts(space, "deiso")
        iso = [str(k) for k in facts["grp"]]
        n = len(strs)
        params = np.array([sp.structural(sp.parse(s), "params") for s in strs], dtype=float)
        flops = np.array([sp.structural(sp.parse(s), "flops") for s in strs], dtype=float)
        # class-consistent base quality, so isomorphic archs have related truths
        keys = {k: i for i, k in enumerate(dict.fromkeys(iso))}
        cls_q = rng.normal(size=len(keys))
        base = np.array([cls_q[keys[k]] for k in iso]) + 0.5 * (params - params.mean()) / (params.std() + 1e-9)
        table = TruthTable(list(range(n)), strs)
        truth = {}
        for m in metrics:
            v = 60 + 5 * base + rng.normal(0, 0.5, size=n)
            truth[m] = v
            table.add(MetricInfo(m, 200, True, "synthetic"), [float(x) for x in v])
        st.put_truth(space, table)
        syn = Synthetic(path, space, strs, iso, truth, params=params, flops=flops)
        for name, values in (("params", params), ("flops", flops)):
            chash = record_config(st, name, {"space": space, "synthetic": True})
            key = ScoreKey(space, name, chash, 0, 0)
            st.upsert_scores([ScoreRow.of(key, i, 0, float(values[i]), 0.0, None) for i in range(n)])
        reps = np.zeros(n, dtype=bool)
        seen: set[str] = set()
        for i, k in enumerate(iso):
            if k not in seen:
                seen.add(k)
                reps[i] = True
        from estbench.config import config_hash
        from estbench.estimators import ESTIMATORS

        for name, (borrow, noise) in (estimators or {}).items():
            # the store's estimators row, with the borrowed estimator's orientation; the
            # process-wide registry is left alone (a registered fake would join `--zse all`)
            meta = ESTIMATORS.meta(borrow)
            hib = meta["higher_is_better"]
            st.put_estimator(name, meta["kind"], hib, f"synthetic, oriented like {borrow}")
            true_dir = base + rng.normal(0, noise, size=n)
            values = true_dir if hib else -true_dir
            mask = reps if name in representatives_only else np.ones(n, dtype=bool)
            syn.scores[name] = np.where(mask, values, np.nan)
            settings = {"space": space, "synthetic": True}
            chash = config_hash({"estimator": name, **settings})
            st.put_config(chash, name, settings)
            rows = []
            for sd in seeds:
                jitter = rng.normal(0, 1e-3, size=n) if len(seeds) > 1 else np.zeros(n)
                key = ScoreKey(space, name, chash, 0, sd)
                rows += [ScoreRow.of(key, i, 0, float(values[i] + jitter[i]), 0.0, None) for i in np.flatnonzero(mask)]
            st.upsert_scores(rows)
    return syn
