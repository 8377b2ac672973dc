"""`estbench variance gradsim`: gradient similarity between architecture pairs per
supernet layer (paper A.3.1, Fig. A15). Library code: ``estbench/analysis/gradsim.py``;
the rows come from ``estbench score --ose RUN --gradsim P``."""

from __future__ import annotations

from typing import Any, List

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import VARIANCE_HELP, epoch_option

SHOWS = ("summary", "trend")


def _check(show: str = "summary", **_: Any) -> None:
    from estbench.errors import BadInput

    if show not in SHOWS:
        raise BadInput(f"--show {show!r}: expected one of {', '.join(SHOWS)}")


def _load(st, space: str, run: list[str], epoch: list[int]) -> dict:
    """The stored rows, or one line saying what is missing."""
    from estbench.errors import BadInput

    have = st.gradsim_epochs(space)
    if not have:
        raise BadInput(
            f"no gradient-similarity rows for {space} in the store; compute them with "
            f"`estbench score --space {space} --ose RUN --gradsim P --epoch E`"
        )
    unknown = [r for r in run if r not in have]
    if unknown:
        raise BadInput(
            f"no gradient-similarity rows for run {unknown[0]!r} ({space}); runs with rows: {', '.join(have)}"
        )
    # a named run must have every --epoch; without --run, some run must have it
    for r in run:
        missing = [e for e in epoch if e not in have[r]]
        if missing:
            raise BadInput(
                f"run {r!r} has no gradient-similarity rows at epoch {', '.join(map(str, missing))}; "
                f"epochs with rows: {', '.join(map(str, have[r]))}"
            )
    nowhere = [e for e in epoch if not any(e in eps for eps in have.values())]
    if nowhere:
        known = ", ".join(f"{r} @ {', '.join(map(str, eps))}" for r, eps in have.items())
        raise BadInput(f"no gradient-similarity rows at epoch {', '.join(map(str, nowhere))}; rows: {known}")
    return st.gradsim_rows(space, runs=run or None, epochs=epoch or None)


@analysis("gradsim", group="variance", group_help=VARIANCE_HELP, check=_check)
def variance_gradsim(
    st,
    space,
    run: List[str] | None = typer.Option(
        None, "--run", help="One-shot run (repeatable); default: every run with gradsim rows."
    ),
    epoch: List[int] | None = epoch_option("Checkpoint epoch (repeatable); default: every epoch with rows."),
    show: str = typer.Option(
        "summary", "--show", help="summary (per epoch and layer) or trend (per layer, the mean at each epoch)."
    ),
) -> Rows:
    """Gradient similarity between architecture pairs per supernet layer (paper A.3.1,
    Fig. A15): how much training one architecture moves the shared weights the way
    another one needs.

    The rows come from `estbench score --ose RUN --gradsim P --epoch E`: P random pairs
    of the architectures the run's sampler trains, the same pairs at every checkpoint;
    for each pair and layer the cosine of the two architectures' CE-loss gradients on
    one fixed training batch (BN batch statistics), over the layer's parameters BOTH
    architectures use. Layers in network order: stem, per stage the reduction block
    S{s}R and the normal cells S{s}C{c} (the paper's names, cells numbered over the
    whole network), classifier (final BN and linear layer); "all" pools every
    (pair, layer) value of the epoch.

    --show summary: per run, config, checkpoint epoch and layer: pairs (pairs with a
    value), null (pairs without one: no parameter of the layer used by both, e.g.
    different ops on every edge of a cell, or a zero gradient, e.g. a degenerate
    architecture), mean, std (sample, ddof=1), the 10/50/90% quantiles (linear
    interpolation), min and max of the cosines. --show trend: per layer the mean at
    each epoch (columns ep<E>) and change = last minus first epoch's mean: the paper
    sees similarity rise with training and the middle cells least similar. Runs and
    configs (P, batch, seeds) are reported apart; csv and json add config_hash and the
    config's label. Errors (one line, exit code 2): no rows for the space, an unknown
    --run, an --epoch without rows, an unknown --show."""
    from estbench.analysis.gradsim import STAT_COLUMNS, summary, trend

    data = _load(st, space, list(run or []), list(epoch or []))
    several = len(set(data["config_hash"].tolist())) > 1
    head = f"{space}: gradient cosine similarity of architecture pairs per layer (paper A.3.1, Fig. A15)"
    if show == "trend":
        epochs, rows = trend(data)
        ep_cols = [f"ep{e}" for e in epochs]
        cols = ["run", "config_hash", "label", "layer", *ep_cols, "change"]
        out = [
            [r["run_name"], r["config_hash"], r["label"], r["layer"], *[r["means"].get(e) for e in epochs], r["change"]]
            for r in rows
        ]
        title = f"{head}: mean cosine per layer at each checkpoint epoch; change = last - first"
    else:
        rows = summary(data)
        cols = ["run", "config_hash", "label", "epoch", "layer", *STAT_COLUMNS]
        out = [
            [r["run_name"], r["config_hash"], r["label"], r["epoch"], r["layer"], *[r[k] for k in STAT_COLUMNS]]
            for r in rows
        ]
        title = (
            f"{head}; pairs = pairs with a value, null = sharing no used parameter or a zero gradient in the layer; "
            "all = every (pair, layer) value pooled"
        )
    keep = [0, *([2] if several else []), *range(3, len(cols))]  # the label only where configs differ
    brief = Rows([cols[i] for i in keep], [[r[i] for i in keep] for r in out], title=title)
    return Rows(cols, out, title=title, brief=brief)
