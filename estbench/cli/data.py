"""`estbench data get|list`: fetch the datasets and benchmark files estbench reads."""

from __future__ import annotations

import typer

from estbench.cli.common import echo, handle_errors
from estbench.cli.options import DataOpt, FormatOpt

data_app = typer.Typer(help="Download and list datasets and benchmark files.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("get")
@handle_errors
def get(
    name: str = typer.Argument(..., help="What to download (see `estbench data list`), e.g. cifar10."),
    data_dir: str | None = DataOpt,
) -> None:
    """Download NAME into the data directory (--data-dir, else $ESTBENCH_DATA, else
    ~/.local/share/estbench): with progress, resuming a partial download, verified by
    size and checksum, moved into place only when complete, archives unpacked.
    $ESTBENCH_MIRROR=URL fetches URL/<file name> instead of the origin."""
    from estbench.cli.progress import Progress
    from estbench.data.catalog import REMOTES
    from estbench.data.fetch import fetch
    from estbench.data.lookup import DataDir
    from estbench.registry import Registry

    known = Registry("downloadable dataset")
    for n in REMOTES:
        known.register(n, n)
    remote = REMOTES[known.entry(name).name]
    data = DataDir(data_dir)
    if data.explicit is None or data.explicit.is_dir():  # a new --data-dir holds nothing yet
        present = data.find_optional(remote.provides)
        if present is not None:
            typer.echo(f"{name}: already present at {present}", err=True)
            return
    seen = {"bytes": 0}

    def advance(done: int, total: int) -> None:
        prog.update(f"{name} (bytes)", done - seen["bytes"], total=total)
        seen["bytes"] = done

    with Progress() as prog:
        path = fetch(remote, data.download_dir(), advance)
    typer.echo(f"{name}: installed at {path}", err=True)


@data_app.command("list")
@handle_errors
def list_data(data_dir: str | None = DataOpt, fmt: str = FormatOpt) -> None:
    """What is present, where it was found, and what is missing (with how to get it)."""
    from estbench.data.builtin import BUILTINS
    from estbench.data.catalog import LOCALS, REMOTES
    from estbench.data.lookup import DataDir
    from estbench.report.render import render

    data = DataDir(data_dir)
    rows = []
    for r in REMOTES.values():
        found = data.find_optional(r.provides)
        rows.append([r.name, r.description, "present" if found else "missing", str(found or ""),
                     "" if found else f"estbench data get {r.name}"])  # fmt: skip
    for loc in LOCALS:
        found = data.find_optional(loc.paths)
        rows.append([loc.name, loc.description, "present" if found else "missing", str(found or ""),
                     "" if found else f"by hand: {data.download_dir() / loc.paths[0]}"])  # fmt: skip
    for b in BUILTINS.values():
        rows.append([b.name, b.description, "built in", str(b.path), ""])
    echo(render(["name", "description", "status", "where", "to get it"], rows, fmt))
