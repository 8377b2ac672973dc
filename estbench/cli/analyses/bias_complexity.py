"""`estbench bias complexity`: complexity-level bias (paper Sec. 5.1, Fig. 5, A7, A29).
Library code: ``estbench/analysis/complexity.py``."""

from __future__ import annotations

from typing import Any

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import (
    BIAS_HELP,
    ByOpt,
    GroupsOpt,
    protocol_title,
)


def _check(by: str = "flops", groups: int = 5, **_: Any) -> None:
    from estbench.analysis.points import COMPLEXITY
    from estbench.errors import BadInput

    if by not in COMPLEXITY:
        raise BadInput(f"--by {by!r}: expected one of {', '.join(COMPLEXITY)}")
    if groups < 1:
        raise BadInput(f"--groups {groups}: must be at least 1")


def _num(v: float) -> str:
    return f"{v:.4g}"


@analysis("complexity", group="bias", group_help=BIAS_HELP, check=_check)
def bias_complexity(
    st,
    space,
    truth,
    protocol,
    post_deiso,
    estimator,
    epoch,
    seed,
    by: str = ByOpt,
    groups: int = GroupsOpt,
) -> Rows:
    """Complexity-level bias (paper Sec. 5.1, Fig. 5, A7, A29): which complexity levels
    an estimator over- or underestimates, and how well it orders architectures of
    similar size.

    Each estimator's points (per config and epoch) are cut into --groups complexity
    groups by --by (flops or params, from the stored structural scores; quantiles over
    that estimator's points, group 0 = the smallest, tied values share a group so a
    group can be empty). Per group: n points, the complexity range (c_min, c_max), kd
    = Kendall's tau-b of truth vs estimate among the group's points only (the
    intra-group KD; NaN with fewer than 2 points or a constant side), and mean_rd =
    the mean ranking difference (r_i - n_i) / M, where r_i / n_i are the point's true
    / estimated ranks among ALL M points of the estimator (1 = best), so mean_rd lies
    in [-1, 1]: positive = the group is overestimated (ranked better than it truly
    is), negative = underestimated. csv and json also give mean_true_rank and
    mean_est_rank (means of r_i / M and n_i / M; mean_rd is their difference) and the
    means of the stored truth and score; the table pivots to one row per estimator
    (kd_gI, rd_gI per group I). The points follow --protocol (deiso: one per
    isomorphism class, class-mean truth, the representative's score or the mean with
    --post-deiso). Errors (one line, exit code 2): no scores, no stored --by scores,
    an estimator with fewer points than --groups, or no group with two points."""
    import numpy as np

    from estbench.analysis.complexity import COLUMNS, complexity_bias
    from estbench.analysis.points import complexity_groups, complexity_of, group_names, load_points
    from estbench.cli.analyses.criteria import no_rows
    from estbench.errors import BadInput

    sets = load_points(st, space, truth, protocol, list(estimator or []), epoch, seed, post_deiso)
    if not sets:
        raise no_rows(st, space, truth, list(estimator or []), list(epoch or []), list(seed or []))
    reps = np.unique(np.concatenate([p.rep for p in sets]))
    values = complexity_of(st, space, by, reps)
    names = group_names(sets)
    stat_cols = [c for c in COLUMNS if c not in ("group", "c_min", "c_max")]
    cols = ["estimator", "config_hash", "epoch", "group", "points", f"{by}_min", f"{by}_max"] + stat_cols
    out: list[list] = []
    brief: list[list] = []
    ranges = []
    for name, ps in zip(names, sets):
        m = len(ps)
        if m < groups:
            raise BadInput(f"{name}: {m} points for --groups {groups}; use fewer groups or more scored archs")
        c = values[np.searchsorted(reps, ps.rep)]
        g = complexity_groups(c, groups)
        d = complexity_bias(ps.y, ps.s, ps.truth_rank, ps.score_rank, g, groups, c, ps.truth, ps.score)
        if d["n"].max() < 2:
            raise BadInput(
                f"{name}: no complexity group has two points ({m} points, --groups {groups}); use fewer groups"
            )
        ranges.append((d["c_min"], d["c_max"]))
        for i in range(groups):
            out.append(
                [ps.estimator, ps.config_hash, ps.epoch, i, m, d["c_min"][i], d["c_max"][i]]
                + [d[k][i].item() for k in stat_cols]
            )
        brief.append([name, m] + d["kd"].tolist() + d["mean_rd"].tolist())
    shared = all(np.array_equal(r[0], ranges[0][0], equal_nan=True) for r in ranges) and all(
        np.array_equal(r[1], ranges[0][1], equal_nan=True) for r in ranges
    )
    if shared:
        lo, hi = ranges[0]
        span = ", ".join(
            f"g{i} {_num(a)}..{_num(b)}" if np.isfinite(a) else f"g{i} empty" for i, (a, b) in enumerate(zip(lo, hi))
        )
        note = f"{by} ranges: {span}"
    else:
        note = f"{by} ranges differ between estimators (csv/json: {by}_min, {by}_max)"
    title = (
        f"{space} vs {truth} ({protocol_title(protocol, post_deiso)}): complexity-level bias, {groups} {by} groups "
        f"over each estimator's points (g0 = smallest; {note}); kd = Kendall tau-b within the group, "
        "rd = mean (true rank - estimated rank) / M over the group, ranks among all M points, > 0 = overestimated"
    )
    brief_cols = ["estimator", "points"] + [f"kd_g{i}" for i in range(groups)] + [f"rd_g{i}" for i in range(groups)]
    return Rows(cols, out, title=title, brief=Rows(brief_cols, brief, title=title))
