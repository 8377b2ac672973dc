"""The estbench command line. Commands are thin: parse, build a config, call one
library function, render. Heavy imports (torch, duckdb) happen inside commands.

One module per command group; each adds its commands with ``register(app)``.
Analyses (``criteria``, ...) come from the analysis registry (``analyze.mount``)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from estbench.cli import analyze, data, db, score, train, truth
from estbench.cli.common import handle_errors
from estbench.cli.helptext import literal_help

app = typer.Typer(
    help="Evaluate efficient architecture-performance estimators (zero-shot proxies, one-shot "
    "supernets) on NAS benchmarks: score every architecture, cache scores in a DuckDB store, "
    "and compute ranking criteria and reports (Ning et al., NeurIPS 2021).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
@handle_errors
def _load_plugins(
    plugin: List[Path] | None = typer.Option(
        None,
        "--plugin",
        metavar="FILE",
        help="Python file to import before the command, e.g. one that registers your own estimator or "
        "space (repeatable). Installed plugins (entry points estbench.estimators, estbench.spaces) load always.",
    ),
) -> None:
    from estbench.registry import load_entry_points, load_plugin_file

    load_entry_points()
    for path in plugin or []:
        load_plugin_file(path)


score.register(app)
train.register(app)
analyze.mount(app)  # criteria, report and every other registered analysis
db.register(app)
truth.register(app)
data.register(app)
literal_help(app)  # help texts print as written: rich markup would eat every "[...]"


def main() -> None:
    app()


__all__ = ["app", "main"]
