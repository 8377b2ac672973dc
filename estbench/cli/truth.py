"""``estbench truth load|list``: ground truth (benchmark accuracies) in the store."""

from __future__ import annotations

from typing import List

import typer

from estbench.cli.common import echo, handle_errors, open_store
from estbench.cli.options import DataOpt, FormatOpt, SpaceFilterOpt, SpaceOpt, StoreOpt

truth_app = typer.Typer(help="Load and list ground truth (benchmark accuracies).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(truth_app, name="truth")


@truth_app.command("load")
@handle_errors
def truth_load(
    space: str = SpaceOpt,
    file: str | None = typer.Option(
        None, "--file", help="Truth file or directory; default: looked up in the data directory."
    ),
    source: str = typer.Option(
        "auto",
        "--source",
        help="auto, table (estbench CSV), nats-simple (NATS-tss-v1_0-3ffb9-simple dir) or nb201-pth.",
    ),
    metric: List[str] | None = typer.Option(None, "--metric", "-m", help="Load only these metrics (repeatable)."),
    store: str | None = StoreOpt,
    data_dir: str | None = DataOpt,
) -> None:
    """Load ground truth for a space into the store (replaces the metrics it loads)."""
    from estbench.data.lookup import DataDir
    from estbench.spaces import get_space
    from estbench.truth.load import load_truth

    sp = get_space(space)
    data = DataDir(data_dir)
    with open_store(store) as st:
        infos, n = load_truth(st, sp, data, file, source, list(metric or []))
    typer.echo(f"loaded {n} values of {len(infos)} metrics for {space}: {', '.join(sorted(infos))}", err=True)


@truth_app.command("list")
@handle_errors
def truth_list(space: str | None = SpaceFilterOpt, store: str | None = StoreOpt, fmt: str = FormatOpt) -> None:
    """List the truth metrics in the store."""
    from estbench.report.render import render

    with open_store(store, read_only=True) as st:
        cols, rows = st.query(
            "SELECT m.space, m.metric, m.epoch, m.seed_mean, count(t.value) AS archs, m.source "
            "FROM metrics m LEFT JOIN truth t USING (space, metric) WHERE ? IS NULL OR m.space = ? "
            "GROUP BY ALL ORDER BY 1, 2",
            [space, space],
        )
    echo(render(cols, rows, fmt))
