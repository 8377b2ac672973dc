"""`estbench report`: the paper's Table A9 layout, registered as an analysis."""

from __future__ import annotations

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import (
    protocol_title,
)


@analysis("report")
def report(
    st,
    space,
    truth,
    protocol,
    post_deiso,
    estimator,
    epoch,
    seed,
) -> Rows:
    """The paper's Table A9 layout: KD / SpearmanR / P@top5% / P@bottom5% / BR@5% per estimator.

    With points, excluded (failed + non-finite) and s/arch, and threads when a row mixes
    scores of runs with different thread counts. No matching scores: one line, exit 2."""
    from estbench.analysis.evaluate import evaluate
    from estbench.cli.analyses.criteria import no_rows
    from estbench.report.tables import a9_rows

    groups = evaluate(st, space, truth, protocol, list(estimator or []), epoch, seed, (0.05,), post_deiso)
    if not groups:
        raise no_rows(st, space, truth, list(estimator or []), list(epoch or []), list(seed or []))
    cols, rows = a9_rows(groups)
    return Rows(cols, rows, title=f"Table A9 layout: {space}, truth {truth} ({protocol_title(protocol, post_deiso)})")
