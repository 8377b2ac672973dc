"""The registries and the store as they are: ``list``, ``sql``, ``export``."""

from __future__ import annotations

from typing import List

import typer

from estbench.cli.common import check_format, echo, handle_errors, open_store
from estbench.cli.options import FormatOpt, ReadStoreOpt


def register(app: typer.Typer) -> None:
    app.command("list")(list_cmd)
    app.command()(sql)
    app.command()(export)


@handle_errors
def list_cmd(
    what: str = typer.Argument("estimators", help="spaces or estimators"),
    fmt: str = FormatOpt,
    store: str | None = typer.Option(
        None, "--store", envvar="ESTBENCH_STORE", help="Accepted like every command's; the registries need no store."
    ),
) -> None:
    """List registered spaces or estimators."""
    from estbench.errors import BadInput
    from estbench.estimators import ESTIMATORS
    from estbench.report.render import render
    from estbench.spaces import SPACES

    tables = {
        "spaces": lambda: (
            ["space", "description"],
            [[n, SPACES.meta(n).get("description", "")] for n in SPACES.names()],
        ),
        "estimators": lambda: (
            ["estimator", "kind", "higher_is_better", "description"],
            [
                [n, m["kind"], m["higher_is_better"], m.get("description", "")]
                for n in ESTIMATORS.names()
                for m in [ESTIMATORS.meta(n)]
            ],
        ),
    }
    if what not in tables:
        raise BadInput(f"cannot list {what!r} ({', '.join(tables)})")
    echo(render(*tables[what](), fmt=fmt))


@handle_errors
def sql(
    query: str = typer.Argument(
        ...,
        help="SQL to run on the store (tables: archs, truth, metrics, scores, score_arch, estimators, configs, "
        "runs, train_epochs, checkpoints, forgetting, gradsim, schema_migrations; views: score_mean, "
        "score_seed_mean).",
    ),
    store: str | None = ReadStoreOpt,
    fmt: str = FormatOpt,
    write: bool = typer.Option(False, "--write", help="Open the store writable (default: read-only)."),
) -> None:
    """Run SQL on the store and print the rows (with --write: all statements in one
    transaction, so a failing one undoes the others)."""
    from estbench.report.render import render

    check_format(fmt)  # before the SQL runs: a --write statement must not run and then fail on output
    with open_store(store, read_only=not write) as st:
        cols, rows = st.query(query)
    echo(render(cols, rows, fmt, digits=6))


@handle_errors
def export(
    directory: str = typer.Argument(..., help="Directory to write <table>.parquet files into."),
    table: List[str] | None = typer.Option(
        None, "--table", help="Table or view to export (repeatable); default: every table and view."
    ),
    store: str | None = ReadStoreOpt,
) -> None:
    """Export the store's tables and views as DIR/<name>.parquet (replacing files of the
    same name, all or none: a failed export leaves DIR as it was). Every reading command
    reads DIR as a store: --store DIR."""
    with open_store(store, read_only=True) as st:
        paths = st.export_parquet(directory, table)
    for p in paths:
        typer.echo(str(p))
