"""``estbench truth load|list``: ground truth (benchmark accuracies) in the store."""

from __future__ import annotations

from typing import List

import typer

from estbench.cli.common import echo, handle_errors, open_store
from estbench.cli.options import DataOpt, FormatOpt, InitOpt, ReadStoreOpt, SpaceFilterOpt, SpaceOpt, StoreOpt

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
        help="auto, table (estbench CSV), or a space's own: nb201 nats-simple (NATS-tss-v1_0-3ffb9-simple dir) / "
        "nb201-pth; nb101 tfrecord / naslib / vis; nb301 naslib (naslib_zc_nb301.json), nb301-dir (NB301 "
        "training-data json dirs) / surrogate (the YAHPO ONNX model: predictions for every stored arch, a metric "
        "marked surrogate).",
    ),
    metric: List[str] | None = typer.Option(None, "--metric", "-m", help="Load only these metrics (repeatable)."),
    replace: bool = typer.Option(
        False, "--replace", help="Replace a metric even when the file has values for fewer archs than the store."
    ),
    merge: bool = typer.Option(
        False,
        "--merge",
        help="Add the file's values to a metric the store has instead of replacing it (partial tables of one "
        "metric); where both have a value the store's is kept and disagreements are counted.",
    ),
    store: str | None = StoreOpt,
    init: bool = InitOpt,
    data_dir: str | None = DataOpt,
) -> None:
    """Load ground truth for a space into the store (replaces the metrics it loads).

    A file that lacks archs the store has values for is refused unless --replace; a row
    repeating an arch with other values, and nan or inf accuracies, are refused. In a
    space too large to list (nb101) the file's architectures enter the store with it; an
    entry known only by its hash gives its values to the stored archs with that hash."""
    from estbench.data.lookup import DataDir
    from estbench.spaces import get_space
    from estbench.truth.load import load_truth

    sp = get_space(space)
    data = DataDir(data_dir)
    with open_store(store, init=init) as st:
        if merge and replace:
            from estbench.errors import BadInput

            raise BadInput("--merge and --replace exclude each other")
        done = load_truth(st, sp, data, file, source, list(metric or []), replace=replace, merge=merge)
    names = ", ".join(sorted(done.metrics))
    notes = [f"replaced {n} values of {m}" for m, n in sorted(done.replaced.items())]
    if done.duplicates:
        notes.append(f"{done.duplicates} identical repeated rows ignored")
    if done.conflicts:
        notes.append(f"{done.conflicts} values differ from the store's, which were kept")
    if done.added_archs:
        notes.append(f"{done.added_archs} architectures added to the store")
    if done.unmatched:
        notes.append(
            f"{done.unmatched} entries name an architecture only by its hash and none of the store's archs has it "
            "(load again after adding archs: score --archs sample:N or a file)"
        )
    extra = f" ({'; '.join(notes)})" if notes else ""
    typer.echo(f"loaded {done.n_values} values of {len(done.metrics)} metrics for {space}: {names}{extra}", err=True)


@truth_app.command("list")
@handle_errors
def truth_list(space: str | None = SpaceFilterOpt, store: str | None = ReadStoreOpt, fmt: str = FormatOpt) -> None:
    """List the truth metrics in the store (``surrogate``: a model's predictions, not measured)."""
    from estbench.report.render import render

    with open_store(store, read_only=True) as st:
        cols, rows = st.truth_metrics(space)  # surrogate: predicted by a model (NB301), not measured
    echo(render(cols, rows, fmt))
