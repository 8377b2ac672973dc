"""`estbench variance epochs`: estimator quality against training epoch (paper Table A11).
Library code: ``estbench/analysis/epochs.py``."""

from __future__ import annotations

from typing import Any

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import VARIANCE_HELP, protocol_title


def _k(k: str) -> float:
    from estbench.cli.analyses.criteria import _parse_ks

    return _parse_ks([k])[0]


def _check(k: str = "5%", **_: Any) -> None:
    _k(k)


@analysis("epochs", group="variance", group_help=VARIANCE_HELP, check=_check)
def variance_epochs(
    st,
    space,
    truth,
    protocol,
    post_deiso,
    estimator,
    epoch,
    seed,
    k: str = typer.Option("5%", "--k", help="Proportion K of P@topK, like 5% or 0.05 [default: 5%]."),
) -> Rows:
    """Estimator quality against training epoch (paper Table A11): KD and P@topK at
    every scored epoch, one row per estimator (and config), epoch 0 first.

    Each cell is the criterion of that epoch's rows, exactly as `criteria` computes
    it (same --protocol points, scores averaged over batches and the selected seeds):
    KD = Kendall's tau-b of truth vs score (oriented: a loss enters negated), P@topK =
    the share of the top-K by score (k = max(1, floor(K M)) of the M points) that are
    among the top-K by truth. One-shot scores (os_acc, os_loss) have their checkpoint
    epochs; zero-shot measures scored with --weights supernet:RUN@EPOCH have the
    epochs they were scored at (epoch 0 = the run's initialisation), and zero-shot
    rows of fresh or supernet-init weights sit at epoch 0. An empty cell: not scored
    at that epoch. A rising KD says the estimator improves as the supernet trains
    (Sec. 4.2: ZSEs on trained weights do not). csv and json add the points of each
    cell (points@epE) and name the columns kd@epE and p_top@K@epE. Reads the store
    only. No matching scores: one line, exit code 2."""
    from estbench.analysis.criteria import format_k
    from estbench.analysis.epochs import criteria_by_epoch
    from estbench.cli.analyses.criteria import no_rows

    kk = _k(k)
    tag = format_k(kk)
    epochs, rows = criteria_by_epoch(st, space, truth, protocol, list(estimator or []), epoch, seed, kk, post_deiso)
    if not rows:
        raise no_rows(st, space, truth, list(estimator or []), list(epoch or []), list(seed or []))
    title = f"{space} vs {truth} ({protocol_title(protocol, post_deiso)}): KD and P@top{tag} per training epoch"
    cols = ["estimator", "config_hash", "name"]
    brief_cols = ["estimator"]
    for e in epochs:
        cols += [f"points@ep{e}", f"kd@ep{e}", f"p_top@{tag}@ep{e}"]
        brief_cols += [f"KD ep{e}", f"P@top{tag} ep{e}"]
    full, brief = [], []
    for r in rows:
        cells = [r.cells.get(e) for e in epochs]
        full.append(
            [r.estimator, r.config_hash, r.name]
            + [v for c in cells for v in ((None, None, None) if c is None else (c["points"], c["kd"], c["p_top"]))]
        )
        brief.append([r.name] + [v for c in cells for v in ((None, None) if c is None else (c["kd"], c["p_top"]))])
    return Rows(cols, full, title=title, brief=Rows(brief_cols, brief, title=title))
