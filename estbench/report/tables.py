"""Report tables built from criteria results."""

from __future__ import annotations

import json

from estbench.analysis.criteria import DEFAULT_KS, format_k

# The paper's Table A9 columns: KD / SpearmanR / P@top 5% / P@bottom 5% / BR@5%
TABLE_A9 = (
    ("KD", "kd"),
    ("SpearmanR", "spearman"),
    ("P@top5%", "p_top@5%"),
    ("P@bottom5%", "p_bottom@5%"),
    ("BR@5%", "br@5%"),
)


def group_label(groups, g) -> str:
    """Estimator name, with config and epoch only when they are needed to tell rows apart.
    A config is named by its label (a one-shot run), else by the settings that differ
    between the configs shown for that estimator (``plain [init=supernet-init]``), else
    by its hash."""
    same_name = [x for x in groups if x.estimator == g.estimator]
    label = g.estimator
    if len({x.config_hash for x in same_name}) > 1:
        label += f" [{g.label or _differing_settings(same_name, g) or g.config_hash[:6]}]"
    if len({x.epoch for x in same_name}) > 1 or g.epoch:
        label += f" @ep{g.epoch}"
    return label


def _differing_settings(same_name, g, max_len: int = 40) -> str | None:
    """'key=value,...' for the config keys whose values differ among ``same_name``."""
    try:
        configs = {x.config_hash: json.loads(x.config) for x in same_name}
    except (TypeError, ValueError):
        return None
    keys = sorted({k for c in configs.values() for k in c})
    differing = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs.values()}) > 1]
    mine = configs[g.config_hash]
    text = ",".join(f"{k}={_short(mine.get(k))}" for k in differing)
    return text if differing and len(text) <= max_len else None


def _short(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def threads_text(threads: tuple) -> str:
    """The thread counts of a group's runs: "1", "1,2" (mixed), "?" (not recorded)."""
    return ",".join("?" if t is None else str(t) for t in threads)


def _mixed(groups) -> bool:
    return any(len(g.threads) > 1 for g in groups)


def a9_rows(groups, intervals: str | None = None) -> tuple[list[str], list[list]]:
    """The paper's Table A9 columns, cost and exclusions; ``threads`` when a row mixes
    scores computed with different thread counts. With bootstrap intervals (``g.ci``),
    ``intervals="text"`` makes each criterion cell ``value [lo, hi]`` (for people) and
    ``intervals="columns"`` follows each criterion by ``<name>_lo`` and ``<name>_hi``."""
    mixed = _mixed(groups)
    crit = [c for c, _ in TABLE_A9]
    if intervals == "columns":
        crit = [x for c in crit for x in (c, f"{c}_lo", f"{c}_hi")]
    cols = ["estimator"] + crit + ["points", "excluded", "s/arch"] + ["threads"] * mixed
    rows = []
    for g in groups:
        ci = (g.ci or {}) if intervals else {}
        if intervals == "columns":
            values = [v for _, k in TABLE_A9 for v in (g.values[k], *ci.get(k, (None, None)))]
        else:
            values = [interval_text(g.values[k], ci.get(k)) for _, k in TABLE_A9]
        rows.append(
            [group_label(groups, g)]
            + values
            + [int(g.values["n"]), g.n_failed + g.n_nonfinite, g.seconds_per_arch]
            + [threads_text(g.threads)] * mixed
        )
    return cols, rows


def interval_text(value: float, ci: tuple[float, float] | None, digits: int = 3) -> str | float:
    """``0.603 [0.594, 0.612]``: a value with its interval, rounded like the tables; the
    bare value when there is no interval."""
    if ci is None:
        return value
    return f"{_num(value, digits)} [{_num(ci[0], digits)}, {_num(ci[1], digits)}]"


def _num(v: float, digits: int) -> str:
    return "nan" if v != v else f"{v:.{digits}f}"


def _has_ci(groups) -> bool:
    return any(getattr(g, "ci", None) for g in groups)


def _with_ci(columns: list[str], values, g, ci: bool) -> tuple[list[str], list]:
    """Each criterion followed by its ``_lo`` and ``_hi`` columns when ``ci``."""
    if not ci:
        return columns, list(values)
    cols, vals = [], []
    for c, v in zip(columns, values):
        lo, hi = (g.ci or {}).get(c, (None, None)) if g is not None else (None, None)
        cols += [c, f"{c}_lo", f"{c}_hi"]
        vals += [v, lo, hi]
    return cols, vals


def criteria_rows(groups, ks: tuple[float, ...] = DEFAULT_KS) -> tuple[list[str], list[list]]:
    """Long criteria rows: one per group, every criterion as a column (the machine
    formats' columns; ``threads``: the thread counts of the runs behind the group); with
    bootstrap intervals (``g.ci``), each criterion is followed by ``<criterion>_lo`` and
    ``<criterion>_hi``."""
    base = ["estimator", "config_hash", "epoch", "points", "failed", "nonfinite", "s/arch"]
    crits = ["lc", "kd", "spearman", "mean"] + [
        f"{c}@{format_k(k)}" for c in ("p_top", "p_bottom", "br", "wr") for k in ks
    ]
    ci = _has_ci(groups)
    crit_cols = _with_ci(crits, crits, None, ci)[0]
    rows = []
    for g in groups:
        v = g.values
        rows.append(
            [g.estimator, g.config_hash, g.epoch, int(v["n"]), g.n_failed, g.n_nonfinite, g.seconds_per_arch]
            + _with_ci(crits, [v[c] for c in crits], g, ci)[1]
            + [threads_text(g.threads)]
        )
    return base + crit_cols + ["threads"], rows


def criteria_brief_rows(groups, ks: tuple[float, ...] = (0.05,)) -> tuple[list[str], list[list]]:
    """The readable criteria table: one column naming the row (estimator, config and
    epoch only where needed), points, excluded, s/arch, KD, SpearmanR and the four set
    criteria at each K of ``ks``; ``threads`` when a row mixes thread counts. With
    bootstrap intervals (``g.ci``) the criteria cells read ``value [lo, hi]``."""
    mixed = _mixed(groups)
    per_k = [f"{c}@{format_k(k)}" for k in ks for c in ("p_top", "p_bottom", "br", "wr")]
    cols = ["estimator", "points", "excluded", "s/arch", "kd", "spearman"] + per_k + ["threads"] * mixed
    rows = []
    for g in groups:
        v = g.values
        ci = getattr(g, "ci", None) or None
        rows.append(
            [group_label(groups, g), int(v["n"]), g.n_failed + g.n_nonfinite, g.seconds_per_arch]
            + [interval_text(v[c], ci[c] if ci else None) for c in ["kd", "spearman"] + per_k]
            + [threads_text(g.threads)] * mixed
        )
    return cols, rows


def protocol_title(protocol: str, post_deiso: bool) -> str:
    """How the points were formed, for output headers."""
    if protocol == "iso":
        return "iso: every architecture a point"
    score = "mean score of its scored members (post-deiso)" if post_deiso else "representative's score"
    return f"{protocol}: one point per class, class-mean truth, {score}"


def truth_title(store, space: str, truth: str) -> str:
    """``truth NAME`` for output headers, saying so when the metric is a surrogate's
    prediction rather than a measurement."""
    if store.metric_is_surrogate(space, truth):
        return f"truth {truth} (SURROGATE predictions, not measured accuracies)"
    return f"truth {truth}"


def oneshot_first(groups, space: str) -> tuple[list, str | None]:
    """``groups`` with the space's OS score (``SearchSpace.default_oneshot``: os_acc, or
    os_loss on NB301 as in the paper's Table A9) before the other one-shot estimator,
    everything else in place; and a title note naming it when one-shot rows exist."""
    from estbench.runs.oneshot import OS_ESTIMATORS
    from estbench.spaces import find_space

    found = find_space(space)
    if found is None:
        return list(groups), None
    default = found.default_oneshot
    slots = [i for i, g in enumerate(groups) if g.estimator in OS_ESTIMATORS]
    if not slots:
        return list(groups), None
    ordered = sorted((groups[i] for i in slots), key=lambda g: g.estimator != default)
    out = list(groups)
    for i, g in zip(slots, ordered):
        out[i] = g
    return out, f"OS score: {default} (the paper's for {space})"
