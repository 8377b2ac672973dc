"""`estbench report`: the paper's Table A9 layout in any format, and with --html the
whole report (every section the store has data for, figures embedded) in one file."""

from __future__ import annotations

from typing import List

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import protocol_title


def _check(html=None, figures=None, ci=None, resamples=None, ci_seed=None, section=None, **_) -> None:
    from estbench.errors import BadInput

    if section and html is None and figures is None:
        raise BadInput("--section needs --html FILE or --figures DIR")
    if ci is not None:
        from estbench.analysis.bootstrap import check_level

        check_level(ci, 1000 if resamples is None else resamples, ci_seed or 0)


@analysis("report", check=_check)
def report(
    st,
    space,
    truth,
    protocol,
    post_deiso,
    estimator,
    epoch,
    seed,
    html: str | None = typer.Option(
        None,
        "--html",
        help="Write the whole report to this HTML file: one self-contained page (figures embedded, no network "
        "needed) with every section the store has data for and one line per missing section naming the command "
        "that fills it. README: Report.",
    ),
    figures: str | None = typer.Option(
        None, "--figures", help="Write every figure of the report as NAME.pdf and NAME.png into this folder."
    ),
    section: List[str] | None = typer.Option(
        None, "--section", help="With --html / --figures: only this section (repeatable) [default: all]."
    ),
    ci: float | None = typer.Option(
        None,
        "--ci",
        help="Percentile bootstrap intervals at this level in percent (e.g. 95) for the criteria: the table shows "
        "'value [lo, hi]', the quality-vs-cost figure error bars. Needs 10 points per row.",
    ),
    resamples: int | None = typer.Option(
        None, "--resamples", help="With --ci: number of bootstrap resamples [default: 1000]."
    ),
    ci_seed: int | None = typer.Option(None, "--ci-seed", help="With --ci: seed of the resamples [default: 0]."),
) -> Rows:
    """The paper's Table A9 layout: KD / SpearmanR / P@top5% / P@bottom5% / BR@5% per
    estimator (and config / epoch), with points, excluded (failed + non-finite) and
    s/arch, and threads when a row mixes scores of runs with different thread counts;
    --ci adds bootstrap intervals (the table: 'value [lo, hi]'; csv and json:
    <criterion>_lo and <criterion>_hi after each criterion). No matching scores: one line, exit code 2.

    --html FILE writes the paper's picture of the store instead: the criteria table,
    quality against cost, the agreement heatmap, criteria against training epoch, the
    bias and variance figures and the top architectures of every estimator, each
    section present only when the store has its data (the others are listed with the
    command that fills them); the command then prints one row per section (shown or
    missing, figures). --figures DIR also writes each figure as PDF and PNG."""
    from estbench.analysis.evaluate import evaluate
    from estbench.cli.analyses.criteria import no_rows
    from estbench.report.tables import a9_rows, oneshot_first, truth_title

    resamples = 1000 if resamples is None else resamples
    ci_seed = ci_seed or 0
    if html is not None or figures is not None:
        return _html(st, space, truth, protocol, post_deiso, estimator, epoch, seed, html, figures, section, ci,
                     resamples, ci_seed)  # fmt: skip
    groups = evaluate(st, space, truth, protocol, list(estimator or []), epoch, seed, (0.05,), post_deiso)
    if not groups:
        raise no_rows(st, space, truth, list(estimator or []), list(epoch or []), list(seed or []))
    groups, os_note = oneshot_first(groups, space)
    title = f"Table A9 layout: {space}, {truth_title(st, space, truth)} ({protocol_title(protocol, post_deiso)})"
    if os_note:
        title += f"; {os_note}"
    if ci is not None:
        from estbench.analysis.bootstrap import add_intervals

        add_intervals(groups, (0.05,), ci, resamples, ci_seed)
        title += f"; {ci:g}% percentile bootstrap intervals, {resamples} resamples, seed {ci_seed}"
        return Rows(*a9_rows(groups, "columns"), title=title, brief=Rows(*a9_rows(groups, "text"), title=title))
    cols, rows = a9_rows(groups)
    return Rows(cols, rows, title=title)


def _html(st, space, truth, protocol, post_deiso, estimator, epoch, seed, html, figures, section, ci, resamples,
          ci_seed) -> Rows:  # fmt: skip
    from contextlib import nullcontext
    from pathlib import Path

    from rich.console import Console

    from estbench.analysis.points import check_inputs
    from estbench.errors import BadInput
    from estbench.report.html import build_report, write_html
    from estbench.report.html.context import ReportContext

    check_inputs(st, space, truth, protocol, list(estimator or []))  # unknown names: one line before any work
    ctx = ReportContext(
        st, space, truth, protocol, post_deiso, list(estimator or []), list(epoch or []), list(seed or []),
        ci, resamples, ci_seed,
    )  # fmt: skip
    if html is not None and not Path(html).resolve().parent.is_dir():
        raise BadInput(f"--html {html}: folder {Path(html).resolve().parent} does not exist")
    console = Console(stderr=True)  # a spinner naming the section being built, on a terminal only
    status = console.status("report") if console.is_terminal else None
    with st.session(), status or nullcontext():
        rep = build_report(
            ctx, list(section or []), figures, on_section=status and (lambda s: status.update(f"report: {s.title}"))
        )
    if html is not None:
        write_html(rep, html)
    rows = [[info.key, info.title, "shown", len(sec.figures), "; ".join(sec.notes)] for info, sec, _ in rep.built]
    rows += [[info.key, info.title, "missing", 0, line] for info, line in rep.missing]
    where = " and ".join(
        x for x in ((f"{html}" if html else ""), (f"{len(rep.files)} files in {figures}" if figures else "")) if x
    )
    title = (
        f"report: {len(rep.built)} sections shown, {len(rep.missing)} missing, {rep.figure_count} figures -> {where}"
    )
    cols = ["section", "title", "status", "figures", "note"]
    brief = [r[:4] + [r[4] if len(r[4]) <= 90 else r[4][:89] + "\u2026"] for r in rows]  # csv / json: the whole note
    return Rows(cols, rows, title=title, brief=Rows(cols, brief, title=title))
