"""Options shared by the commands (DESIGN.md, "CLI conventions"). Commands whose
option means something narrower pass their own help to the factory."""

from __future__ import annotations

from typing import Any

import typer

StoreOpt: Any = typer.Option(
    None, "--store", envvar="ESTBENCH_STORE", help="DuckDB store file [default: estbench.duckdb]."
)
DataOpt: Any = typer.Option(
    None,
    "--data-dir",
    envvar="ESTBENCH_DATA",
    help="Data directory (datasets, benchmark files); then ./data, ../shared/data.",
)
FormatOpt: Any = typer.Option("table", "--format", "-f", help="Output: table, csv, json, markdown or latex.")
SpaceOpt: Any = typer.Option(..., "--space", "-s", help="Search space (see `estbench list spaces`).")
SpaceFilterOpt: Any = typer.Option(None, "--space", "-s", help="Only this search space; default: every space.")
TruthOpt: Any = typer.Option(
    "cifar10-test", "--truth", "-t", help="Truth metric, e.g. cifar10-test (see `estbench truth list`)."
)
ProtocolOpt: Any = typer.Option(
    "deiso",
    "--protocol",
    help="iso (every arch), deiso (one point per isomorphism class, the paper's NB201 protocol) or deiso-computational.",
)
ArchsOpt: Any = typer.Option(
    "all",
    "--archs",
    "-a",
    help="all, A:B (id range), sample:N[@SEED], with-truth, deiso, or a file of arch strings.",
)


def estimator_option(help: str = "Estimator (repeatable); default: every scored estimator.") -> Any:
    return typer.Option(None, "--estimator", "-e", help=help)


def epoch_option(help: str = "Epoch (repeatable; 0 = untrained); default: all.") -> Any:
    return typer.Option(None, "--epoch", help=help)


def seed_option(help: str = "Seed (repeatable); default: mean over all seeds.") -> Any:
    return typer.Option(None, "--seed", help=help)


EstOpt: Any = estimator_option()
EpochOpt: Any = epoch_option()
SeedOpt: Any = seed_option()
