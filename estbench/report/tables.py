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


def _label(groups, g) -> str:
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


def a9_rows(groups) -> tuple[list[str], list[list]]:
    """The paper's Table A9 columns, cost and exclusions; ``threads`` when a row mixes
    scores computed with different thread counts."""
    mixed = _mixed(groups)
    cols = ["estimator"] + [c for c, _ in TABLE_A9] + ["points", "excluded", "s/arch"] + ["threads"] * mixed
    rows = []
    for g in groups:
        rows.append(
            [_label(groups, g)]
            + [g.values[k] for _, k in TABLE_A9]
            + [int(g.values["n"]), g.n_failed + g.n_nonfinite, g.seconds_per_arch]
            + [threads_text(g.threads)] * mixed
        )
    return cols, rows


def criteria_rows(groups, ks: tuple[float, ...] = DEFAULT_KS) -> tuple[list[str], list[list]]:
    """Long criteria rows: one per group, every criterion as a column (the machine
    formats' columns; ``threads``: the thread counts of the runs behind the group)."""
    base = [
        "estimator",
        "config_hash",
        "epoch",
        "points",
        "failed",
        "nonfinite",
        "s/arch",
        "lc",
        "kd",
        "spearman",
        "mean",
    ]
    per_k = [f"{c}@{format_k(k)}" for c in ("p_top", "p_bottom", "br", "wr") for k in ks]
    rows = []
    for g in groups:
        v = g.values
        rows.append(
            [g.estimator, g.config_hash, g.epoch, int(v["n"]), g.n_failed, g.n_nonfinite, g.seconds_per_arch]
            + [v[c] for c in ("lc", "kd", "spearman", "mean")]
            + [v[c] for c in per_k]
            + [threads_text(g.threads)]
        )
    return base + per_k + ["threads"], rows


def criteria_brief_rows(groups, ks: tuple[float, ...] = (0.05,)) -> tuple[list[str], list[list]]:
    """The readable criteria table: one column naming the row (estimator, config and
    epoch only where needed), points, excluded, s/arch, KD, SpearmanR and the four set
    criteria at each K of ``ks``; ``threads`` when a row mixes thread counts."""
    mixed = _mixed(groups)
    per_k = [f"{c}@{format_k(k)}" for k in ks for c in ("p_top", "p_bottom", "br", "wr")]
    cols = ["estimator", "points", "excluded", "s/arch", "kd", "spearman"] + per_k + ["threads"] * mixed
    rows = []
    for g in groups:
        v = g.values
        rows.append(
            [_label(groups, g), int(v["n"]), g.n_failed + g.n_nonfinite, g.seconds_per_arch, v["kd"], v["spearman"]]
            + [v[c] for c in per_k]
            + [threads_text(g.threads)] * mixed
        )
    return cols, rows
