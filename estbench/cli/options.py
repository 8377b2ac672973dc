"""Options shared by the commands (DESIGN.md, "CLI conventions"). Commands whose
option means something narrower pass their own help to the factory."""

from __future__ import annotations

from typing import Any

import typer

from estbench.report.tables import protocol_title  # noqa: F401  (re-exported for the commands)

StoreOpt: Any = typer.Option(
    None, "--store", envvar="ESTBENCH_STORE", help="DuckDB store file [default: estbench.duckdb]."
)
# reading commands (analyses, report, sql, export, truth list) also read a Parquet export
ReadStoreOpt: Any = typer.Option(
    None,
    "--store",
    envvar="ESTBENCH_STORE",
    help="DuckDB store file, or a directory written by `estbench export` [default: estbench.duckdb].",
)
InitOpt: Any = typer.Option(
    False,
    "--init",
    help="Add estbench's tables to a --store that is a DuckDB file with other tables (refused without it).",
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
    None,
    "--truth",
    "-t",
    help="Truth metric, e.g. cifar10-test (see `estbench truth list`) [default: the space's usual metric "
    "(nb201 cifar10-test; nb101 / nb301 cifar10-valid, else cifar10-valid-1seed) if loaded, else the only "
    "measured metric loaded; a surrogate metric is used only when named].",
)
ProtocolOpt: Any = typer.Option(
    "deiso",
    "--protocol",
    help="iso (every arch), deiso (one point per isomorphism class, the paper's NB201 protocol) or deiso-computational.",
)
PostDeisoOpt: Any = typer.Option(
    False,
    "--post-deiso",
    help="deiso protocols: a class's score is the mean over its scored members (the paper's post-deiso, "
    "Sec. 6.2) instead of its representative's (the smallest scored arch id, the paper's default).",
)


ArchsOpt: Any = typer.Option(
    "all",
    "--archs",
    "-a",
    help="all, A:B (id range), sample:N[@SEED], with-truth, deiso, or a file of arch strings.",
)


ThreadsOpt: Any = typer.Option(
    None,
    "--threads",
    envvar="ESTBENCH_THREADS",
    help="CPU threads of torch [default: OMP_NUM_THREADS if set, else the allowed cores that are free now "
    "(minus busy ones), at least 1: one thread too many on a busy machine is 10x slower]. Recorded in the "
    "run row; scores can differ in the last digits between thread counts (README: Threads).",
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


BIAS_HELP = (
    "Bias diagnostics of estimators over the stored scores (paper Sec. 5.1, 5.2, A.2, B.2): complexity, op, "
    "arch, agreement, pareto, and compare (is A better than B?)."
)
ByOpt: Any = typer.Option("flops", "--by", help="Complexity measure of the groups: flops or params (stored scores).")
GroupsOpt: Any = typer.Option(5, "--groups", help="Number of complexity groups (quantiles; tied values share one).")


VARIANCE_HELP = (
    "Variance diagnostics of one-shot and zero-shot estimators over the stored scores (paper Sec. 4.1, 5.3, "
    "6.1, A.3.1, Table A11): validation batches, ranking stability, forgetting, gradient similarity, quality "
    "against training epoch."
)

# ---- fan-out on Ray (score, train) ----------------------------------------------------
ExecutorOpt: Any = typer.Option(
    "local",
    "--executor",
    help="local (this process) or ray (tasks on a Ray cluster; this process alone writes the store; "
    "needs pip install 'estbench[ray]'; docs/scale.md).",
)
RayAddressOpt: Any = typer.Option(
    None, "--ray-address", help="Ray cluster to join ('auto': the running one) [default: a local Ray runtime]."
)
CpusPerTaskOpt: Any = typer.Option(1.0, "--cpus-per-task", help="Ray: CPUs per task (also its torch threads).")
GpusPerTaskOpt: Any = typer.Option(
    0.0, "--gpus-per-task", help="Ray: GPUs per task (fractions share a GPU: 0.25 runs four tasks on one)."
)
