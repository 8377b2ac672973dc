"""`estbench bias op`: op-level bias from edit-distance-1 mutation pairs (paper Sec. 5.1,
A.2.2, Fig. A11-A13, B.2). Library code: ``estbench/analysis/opbias.py``."""

from __future__ import annotations

from typing import Any

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import (
    BIAS_HELP,
    GroupsOpt,
    protocol_title,
)

SHOWS = ("summary", "pairs", "hist")


def _check(
    show: str = "summary",
    bins: int = 20,
    by: str | None = None,
    groups: int = 5,
    group: int | None = None,
    **_: Any,
) -> None:
    from estbench.analysis.points import COMPLEXITY
    from estbench.errors import BadInput

    if show not in SHOWS:
        raise BadInput(f"--show {show!r}: expected one of {', '.join(SHOWS)}")
    if bins < 1:
        raise BadInput(f"--bins {bins}: must be at least 1")
    if by is not None and by not in COMPLEXITY:
        raise BadInput(f"--by {by!r}: expected one of {', '.join(COMPLEXITY)}")
    if groups < 1:
        raise BadInput(f"--groups {groups}: must be at least 1")
    if group is not None:
        if by is None:
            raise BadInput("--group needs --by params or --by flops (the complexity groups it picks from)")
        if not 0 <= group < groups:
            raise BadInput(f"--group {group}: expected 0 .. {groups - 1} (0 = smallest of --groups {groups})")


@analysis("op", group="bias", group_help=BIAS_HELP, check=_check)
def bias_op(
    st,
    space,
    truth,
    protocol,
    post_deiso,
    estimator,
    epoch,
    seed,
    show: str = typer.Option(
        "summary",
        "--show",
        help="summary (one row per estimator and mutation kind), pairs (every pair: estimator, kind, from/to "
        "arch id, d_truth, d_score) or hist (binned d_truth and d_score per kind).",
    ),
    bins: int = typer.Option(20, "--bins", help="--show hist: bins per kind (common edges for d_truth and d_score)."),
    by: str | None = typer.Option(
        None,
        "--by",
        help="Also split by complexity group (params or flops, stored scores) and keep only the pairs whose two "
        "ends lie in the same group [default: no groups].",
    ),
    groups: int = GroupsOpt,
    group: int | None = typer.Option(
        None, "--group", help="With --by: only this complexity group (0 = smallest; 4 of 5 = the largest)."
    ),
) -> Rows:
    """Op-level bias (paper Sec. 5.1, A.2.2, Fig. A11-A13): does the estimator judge one
    operation change the way the truth does?

    For every mutation kind (a decision change, "from->to": one edge's op replaced by
    another) and estimator, over the pairs of points that differ by that one mutation:
    n pairs; truth_up, the share of pairs whose truth increases (d_truth > 0);
    score_up, the share whose estimate increases (d_score > 0); diff = score_up -
    truth_up (positive: the estimator overestimates what the mutation does, i.e.
    credits it more often than the truth does; negative: underestimates it); the mean
    and median of d_truth and d_score. d = value at the pair's end minus value at its
    start, truth and score both oriented so that higher is better (a loss decrease
    counts as an increase). A pair with equal values (change exactly 0) counts as not
    increasing.

    Pairs: every ordered edit-distance-1 pair of the space's architectures (the space's
    mutations). With --protocol iso each architecture is a point and every ordered pair
    counts (NB201: 6 x 5^5 = 18,750 pairs per kind a->b). With deiso (the default) the
    points are isomorphism classes (class truth = mean over its members, class score =
    its representative's, or the mean with --post-deiso): class A -> class B is a pair
    of kind K when some member of A mutates into some member of B by K; each distinct
    (A, B, K) counts once and A == B is dropped (an isomorphic mutation changes
    nothing); the two representatives themselves may differ in more than one op. A pair counts for an estimator when both ends are its points (truth and a
    finite score), so an estimator scored on a sample has fewer pairs. --by params|flops
    puts each point in a complexity group (--groups quantiles over the estimator's
    points, as in the other bias analyses), keeps only pairs within one group and adds
    the group column (Fig. A12; "the largest complexity group" = --group 4 of 5).
    --show pairs lists every pair (points named by their representative arch ids), so
    any histogram can be drawn; --show hist gives --bins equal bins per kind over the
    range of both changes together (columns bin_lo, bin_hi, n_truth, n_score; the last
    bin includes its upper edge); for a score on another scale than the truth (a
    zero-shot measure) the truth bars then crowd into few bins, so draw from --show
    pairs instead. csv and json add config_hash and epoch. No scores, or no pair with
    both ends scored: one line, exit code 2."""
    import numpy as np

    from estbench.analysis import opbias
    from estbench.analysis.points import complexity_groups, complexity_of, group_names, load_points
    from estbench.cli.analyses.criteria import no_rows
    from estbench.errors import BadInput

    sets = load_points(st, space, truth, protocol, list(estimator or []), epoch, seed, post_deiso)
    if not sets:
        raise no_rows(st, space, truth, list(estimator or []), list(epoch or []), list(seed or []))
    pairs, arch_ids = opbias.space_pairs(st, space, protocol)
    n_kinds = len(pairs.kinds)
    values = None
    if by is not None:
        reps = np.unique(np.concatenate([p.rep for p in sets]))
        values = (reps, complexity_of(st, space, by, reps))
    names = group_names(sets)
    kinds = np.asarray(pairs.kinds, dtype=object)
    grouped = by is not None
    lead = ["estimator"] + (["group"] if grouped else []) + ["kind"]
    out: list[list] = []  # full rows: estimator, config_hash, epoch, then as the brief ones
    counted = []
    for name, ps in zip(names, sets):
        src, dst, kind = opbias.point_pairs(pairs, opbias.rep_positions(arch_ids, ps.rep))
        grp = None
        if values is not None:
            grp = complexity_groups(values[1][np.searchsorted(values[0], ps.rep)], groups)
        counted.append(len(src))
        if show == "summary":
            d = opbias.summarize(src, dst, kind, ps.y, ps.s, n_kinds, grp)
            cols = list(opbias.SUMMARY_COLUMNS)
        elif show == "pairs":
            d = opbias.pair_table(src, dst, kind, ps.y, ps.s, n_kinds, grp)
            d["from_arch"], d["to_arch"] = ps.rep[d.pop("src")], ps.rep[d.pop("dst")]
            cols = ["from_arch", "to_arch", "d_truth", "d_score"]
        else:
            d = opbias.histogram(src, dst, kind, ps.y, ps.s, n_kinds, bins, grp)
            cols = ["bin", "bin_lo", "bin_hi", "n_truth", "n_score"]
        keep = d["group"] == group if group is not None else slice(None)
        body = [kinds[d["kind"][keep]].tolist()] + [d[c][keep].tolist() for c in cols]
        if grouped:
            body.insert(0, d["group"][keep].tolist())
        out += [[name, ps.config_hash, ps.epoch, *r] for r in zip(*body)]
    if not out:
        if group is not None:
            where, hint = f" within complexity group {group} of {groups}", "try another --group or fewer --groups"
        elif grouped:
            where, hint = f" within one of {groups} complexity groups", "try fewer --groups"
        else:
            where, hint = "", "an estimator scored on a sample has few neighbours among its points; try more archs"
        raise BadInput(
            f"no mutation pairs with both ends scored{where} for {space} vs {truth} "
            f"({', '.join(f'{n}: {c} pairs before grouping' for n, c in zip(names, counted))}); {hint}"
        )
    how = f", pairs within one {by} group of {groups}" + (f", group {group} only" if group is not None else "")
    title = (
        f"{space} vs {truth} ({protocol_title(protocol, post_deiso)}): op-level bias, mutation pairs "
        f"{'per architecture' if protocol == 'iso' else 'between classes'}{how if grouped else ''}; "
        "d = end - start, higher is better"
    )
    full = ["estimator", "config_hash", "epoch"] + lead[1:] + cols
    # the readable rows leave config_hash and epoch to the estimator label; --show pairs
    # (millions of rows on NB201) keeps one copy of its rows
    brief = None if show == "pairs" else Rows(lead + cols, [[r[0], *r[3:]] for r in out], title=title)
    return Rows(full, out, title=title, brief=brief)
