"""`estbench bias agreement`: the rank-correlation matrix between estimators and truth
metrics (paper Fig. 4, A21, A22; Table A10). Library code: ``estbench/analysis/agreement.py``."""

from __future__ import annotations

from typing import List

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import (
    BIAS_HELP,
    protocol_title,
)


def _cell(v: float, width: int) -> str:
    """A matrix cell for people: two decimals, right-aligned under its column's name
    (the renderer prints floats with three; a matrix reads better with two)."""
    return f"{v:>{max(5, width)}.2f}"


@analysis("agreement", group="bias", group_help=BIAS_HELP)
def bias_agreement(
    st,
    space,
    protocol,
    post_deiso,
    estimator,
    epoch,
    seed,
    truth: List[str] | None = typer.Option(
        None,
        "--truth",
        "-t",
        help="Truth metric (repeatable) [default: every metric of the space named *-test, or all if none is; "
        "see `estbench truth list`].",
    ),
    spearman: bool = typer.Option(False, "--spearman", help="Spearman's rho instead of Kendall's tau-b."),
    long: bool = typer.Option(
        False, "--long", help="One row per pair of columns (a, b, kd or spearman, n) instead of the matrix."
    ),
) -> Rows:
    """Agreement (paper Fig. 4, A21, A22; Table A10): how alike do estimators and truth
    metrics rank the architectures?

    A symmetric matrix whose rows and columns are the selected truth metrics (first)
    and the selected estimator groups (estimator, with its config and epoch where
    several are shown: two input settings of one measure appear as e.g.
    `jacob_cov [input=noise-uniform]`). A cell is Kendall's tau-b (--spearman:
    Spearman's rho) between the two columns: near 1, they order the points the same
    way; near 0, unrelated; negative, reversed. Truth-vs-truth cells say how alike the
    datasets rank architectures (Fig. A22), estimator-vs-truth cells are the criteria's
    KD (the estimator's ranking quality), estimator-vs-estimator cells show which
    estimators are redundant (params ~ flops, a snip / grad_norm / fisher cluster in
    Fig. 4). Method: the points are the protocol's (deiso: one per isomorphism class);
    a truth column holds the class truth (mean over its members), an estimator column
    the class score (the representative's, the mean with --post-deiso), both oriented so
    that higher is better (a loss is negated), so a good estimator correlates
    positively with the truth. Each cell uses the points both columns have (pairwise
    complete: an estimator scored on a sample is compared on that sample); NaN with
    fewer than two common points or a constant column. The table shows the matrix with
    two decimals; csv and json add one n:NAME column per column, the number of common
    points of each cell; --long gives one row per pair (a, b, value, n) in every format.
    An unknown truth metric or estimator, or no scores: one line, exit code 2."""
    import numpy as np

    from estbench.analysis.agreement import agreement
    from estbench.cli.analyses.criteria import no_rows

    res = agreement(
        st, space, list(truth or []), protocol, list(estimator or []), epoch, seed, post_deiso,
        "spearman" if spearman else "kendall",
    )  # fmt: skip
    if "estimator" not in res.kinds:
        raise no_rows(st, space, ", ".join(res.metrics), list(estimator or []), list(epoch or []), list(seed or []))
    what = "Spearman's rho" if spearman else "Kendall's tau-b"
    value = "spearman" if spearman else "kd"
    off = res.n[~np.eye(len(res.names), dtype=bool)] if len(res.names) > 1 else res.n.ravel()
    title = (
        f"{space} ({protocol_title(protocol, post_deiso)}): {what} between truth metrics and estimators, "
        f"oriented higher = better, over the points both have (n {off.min()}-{off.max()} per cell)"
    )
    names = res.names
    if long:
        rows = [
            [names[i], names[j], float(res.corr[i, j]), int(res.n[i, j])]
            for i in range(len(names))
            for j in range(i + 1, len(names))
        ]
        return Rows(["a", "b", value, "n"], rows, title=title)
    full = [[a, *map(float, res.corr[i]), *map(int, res.n[i])] for i, a in enumerate(names)]
    brief = [[a, *(_cell(v, len(b)) for v, b in zip(res.corr[i], names))] for i, a in enumerate(names)]
    return Rows(
        ["name", *names, *[f"n:{x}" for x in names]],
        full,
        title=title,
        brief=Rows(["name", *names], brief, title=title + "; csv / json: n per cell"),
    )
