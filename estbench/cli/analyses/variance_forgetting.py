"""`estbench variance forgetting`: the forgetting-value distribution per epoch of a run
trained with `estbench train --probe-forgetting N` (paper Sec. 5.3, Fig. A14). Library
code: ``estbench/analysis/forgetting.py``; rows: ``estbench/store/forgetting.py``."""

from __future__ import annotations

from typing import Any

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import VARIANCE_HELP, epoch_option

SHOWS = ("summary", "rows")


def _check(show: str = "summary", run: str = "", **_: Any) -> None:
    from estbench.errors import BadInput

    if show not in SHOWS:
        raise BadInput(f"--show {show!r}: expected one of {', '.join(SHOWS)}")
    if not run:
        raise BadInput(
            "--run: name the training run (see `estbench sql \"SELECT name FROM runs WHERE kind = 'train'\"`)"
        )


@analysis("forgetting", group="variance", group_help=VARIANCE_HELP, check=_check)
def variance_forgetting(
    st,
    space,
    run: str = typer.Option(..., "--run", "-r", help="The training run (trained with --probe-forgetting N)."),
    epoch: list[int] | None = epoch_option("Training epoch (repeatable; 1 = the first); default: every probed one."),
    show: str = typer.Option(
        "summary",
        "--show",
        help="summary (one row per epoch) or rows (every probe: epoch, step, arch, accuracies, fv).",
    ),
) -> Rows:
    """Multi-model forgetting (paper Sec. 5.3, Fig. A14): how much training the other
    architectures of an epoch changes an architecture's accuracy after its own step.

    Needs a run trained with `estbench train --probe-forgetting N`: at N steps of each
    epoch (the middle steps of N equal slices of the epoch), the architecture trained at
    that step (the step's first: of its MC samples, of FairNAS's set) was evaluated
    right after the optimiser step on one fixed batch of validation images held out
    from training (BN with batch statistics, no gradient: one-shot scoring's default),
    giving acc_after_step, and after the epoch's last step on the same batch, giving
    acc_after_epoch. The forgetting value FV = acc_after_epoch - acc_after_step; FV < 0
    is forgetting (the later steps undid what this one taught), FV > 0 positive
    transfer. The paper finds negative mean FV early in training, a mean turning
    positive and a spread shrinking later. Accuracies are fractions in [0, 1]
    (multiples of 1 / probe batch size, as float32 means like os_acc).

    --show summary (default): per epoch the number of probes, the mean, standard
    deviation (population, ddof=0), min, 10% / 50% / 90% quantiles (numpy's linear
    interpolation) and max of FV, neg_share (share of probes with FV < 0), zero_share
    (FV = 0) and the mean acc_after_step / acc_after_epoch. --show rows: every probe
    (epoch, step 0-based within the epoch, arch_id, arch, both accuracies, fv).
    Errors (one line, exit code 2): an unknown run, a run without probes, an --epoch
    without probes."""
    from estbench.analysis.forgetting import SUMMARY_COLUMNS, load_forgetting, summarize

    data = load_forgetting(st, space, run, list(epoch or []))
    title = (
        f"{space} run {run}: forgetting value FV = acc_after_epoch - acc_after_step of the architecture "
        "trained at each probed step, on the run's fixed validation batch (< 0 = forgetting)"
    )
    if show == "rows":
        cols = ["epoch", "step", "arch_id", "arch", "acc_after_step", "acc_after_epoch", "fv"]
        out = [
            [int(e), int(s), int(a), None if name is None else str(name), float(x1), float(x2), float(f)]
            for e, s, a, name, x1, x2, f in zip(
                data["epoch"],
                data["step"],
                data["arch_id"],
                data["arch_str"],
                data["acc_after_step"],
                data["acc_after_epoch"],
                data["fv"],
            )  # fmt: skip
        ]
        return Rows(cols, out, title=title)
    summary = summarize(data["epoch"], data["acc_after_step"], data["acc_after_epoch"])
    cols = list(SUMMARY_COLUMNS)
    out = [[summary[c][i].item() for c in cols] for i in range(len(summary["epoch"]))]
    return Rows(cols, out, title=title + "; std ddof=0, quantiles linear")
