"""`estbench bias pareto`: estimate-vs-complexity Pareto fronts, multi-level, and the
truth gap between the best architecture of a complexity group and the best one the
estimator's fronts find there (paper A.2.1, Fig. A8-A10). Library code:
``estbench/analysis/pareto.py``."""

from __future__ import annotations

from typing import Any

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import (
    BIAS_HELP,
    GroupsOpt,
    protocol_title,
)

SHOWS = ("gap", "fronts")


def _check(show: str = "gap", by: str = "params", groups: int = 5, levels: int = 5, **_: Any) -> None:
    from estbench.analysis.points import COMPLEXITY
    from estbench.errors import BadInput

    if show not in SHOWS:
        raise BadInput(f"--show {show!r}: expected one of {', '.join(SHOWS)}")
    if by not in COMPLEXITY:
        raise BadInput(f"--by {by!r}: expected one of {', '.join(COMPLEXITY)}")
    if groups < 1:
        raise BadInput(f"--groups {groups}: must be at least 1")
    if levels < 1:
        raise BadInput(f"--levels {levels}: must be at least 1")


@analysis("pareto", group="bias", group_help=BIAS_HELP, check=_check)
def bias_pareto(
    st,
    space,
    truth,
    protocol,
    post_deiso,
    estimator,
    epoch,
    seed,
    by: str = typer.Option("params", "--by", help="Complexity axis: params or flops (stored scores)."),
    inverse: bool = typer.Option(
        False,
        "--inverse",
        help="The paper's inverse param front: a larger complexity counts as better (default: smaller).",
    ),
    levels: int = typer.Option(5, "--levels", help="Pareto levels: gap for L = 1..LEVELS; fronts up to it."),
    groups: int = GroupsOpt,
    show: str = typer.Option(
        "gap",
        "--show",
        help="gap (per complexity group and number of levels: GT best minus the estimator's Pareto best, Fig. "
        "A10) or fronts (every point on the first --levels levels of the estimator's and of the true front).",
    ),
) -> Rows:
    """Pareto fronts (paper A.2.1, Fig. A8-A10): does the estimator's trade-off between
    estimate and complexity find the architectures that are truly best for their size?

    Per estimator group, the points (the protocol's; deiso: one per isomorphism class,
    class-mean truth) are placed by estimate (oriented so that higher is better) and
    complexity (--by params or flops of the point's representative; lower is better,
    or higher with --inverse). A point dominates another when it is no worse in both
    and strictly better in one; two points equal in both share a level. Level 1 of the
    front is the non-dominated points, level k the non-dominated ones once levels
    1..k-1 are removed (non-dominated sorting, one O(n log n) sort-and-running-maximum
    pass per level). The true front is the same with the truth in place of the
    estimate. --show gap (default, Fig. A10): per complexity group (--groups quantiles
    of the complexity over the estimator's points; 0 = smallest) and L = 1..--levels:
    gt_best, the best truth among the group's points; pareto_best, the best truth among
    the group's points that lie on estimator front levels <= L; gap = the difference
    (>= 0; 0: the fronts reach the group's best architecture; NaN: none of the first L
    levels enters the group); n_group and n_front count the group's points and those on
    the levels; lo / hi give the group's complexity range. The fronts are computed over
    all the estimator's points and then restricted to the group, as in the paper (more
    levels let more of a group's points in, so the gap can only shrink with L). --show
    fronts lists every point on levels <= --levels of the estimator front (front =
    estimate) and of the true front (front = truth): level, representative arch id and
    string, complexity, the stored score and truth (draw Fig. A8/A9 from these). Truth
    and scores are printed as stored; the gap is in the truth's units, oriented (a
    lower-is-better truth: how much higher the found best is). An estimator without
    scores, a truth metric missing, or no params/flops scores: one line, exit code 2."""
    import numpy as np

    from estbench.analysis.pareto import GAP_COLUMNS, front_levels, pareto_gap
    from estbench.analysis.points import complexity_groups, complexity_of, group_names, load_points
    from estbench.cli.analyses.criteria import no_rows

    sets = load_points(st, space, truth, protocol, list(estimator or []), epoch, seed, post_deiso)
    if not sets:
        raise no_rows(st, space, truth, list(estimator or []), list(epoch or []), list(seed or []))
    reps = np.unique(np.concatenate([p.rep for p in sets]))
    values = complexity_of(st, space, by, reps)
    num = int if np.all(values == np.round(values)) else float  # params are counts: print them as such
    strs = None
    if show == "fronts":
        facts = st.arch_facts(space, protocol)
        strs = (facts["arch_id"].astype(np.int64), facts["arch_str"])
    out: list[list] = []
    for name, ps in zip(group_names(sets), sets):
        c = values[np.searchsorted(reps, ps.rep)]
        cost = -c if inverse else c
        est_level = front_levels(ps.s, cost, levels)
        if show == "gap":
            d = pareto_gap(ps.y, est_level, c, complexity_groups(c, groups), levels)
            sign = 1.0 if ps.truth_higher_is_better else -1.0
            d["gt_best"], d["pareto_best"] = sign * d["gt_best"], sign * d["pareto_best"]
            d["lo"], d["hi"] = d["lo"].astype(num), d["hi"].astype(num)
            out += [[name, *r] for r in zip(*(d[k].tolist() for k in GAP_COLUMNS))]
            continue
        for front, lv in (("estimate", est_level), ("truth", front_levels(ps.y, cost, levels))):
            on = np.flatnonzero(lv > 0)
            on = on[np.lexsort((ps.rep[on], cost[on], lv[on]))]
            arch_str = strs[1][np.searchsorted(strs[0], ps.rep[on])]
            out += [
                [name, front, int(lv[i]), int(ps.rep[i]), str(a), num(c[i]), float(ps.score[i]), float(ps.truth[i])]
                for i, a in zip(on, arch_str)
            ]
    direction = f"higher {by} better (inverse front)" if inverse else f"lower {by} better"
    head = (
        f"{space} vs {truth} ({protocol_title(protocol, post_deiso)}): Pareto fronts of estimate vs {by}, {direction}"
    )
    if show == "gap":
        title = (
            f"{head}; per {by} group of {groups}: GT best - best truth on estimator front levels <= L "
            "(fronts over all points, then restricted to the group)"
        )
        return Rows(["estimator", *GAP_COLUMNS], out, title=title)
    cols = ["estimator", "front", "level", "arch_id", "arch_str", by, "score", "truth"]
    return Rows(cols, out, title=f"{head}; levels 1..{levels} of the estimator (estimate) and true (truth) fronts")
