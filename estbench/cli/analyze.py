"""Analysis commands, built from a registry rather than written one by one.

An analysis is registered with its name, help and row builder: a function
``rows(store, **options) -> Rows`` whose keyword parameters, declared with Typer
options, are the command's options. Parameters named like the shared point options (``space``, ``truth``, ``protocol``,
``post_deiso``, ``estimator``, ``epoch``, ``seed``) and declared without a default
get those options (``standard_options``). ``mount(app)`` turns every registered analysis into
a command that opens the store read-only, builds the rows and renders them with
``--format``: at the top level (``estbench criteria``) or, with ``group="bias"``, under
a command group created for it (``estbench bias NAME``). A new analysis is one module
in ``estbench/cli/analyses/`` with an ``@analysis(...)`` registration (its library code
in ``estbench/analysis/``); it is found by import, nothing dispatches on names."""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable

import typer

from estbench.cli.common import echo, handle_errors, open_store
from estbench.cli.options import FormatOpt, ReadStoreOpt
from estbench.registry import Registry


@dataclass(frozen=True)
class Rows:
    """What an analysis returns: the columns, the rows and an optional title; ``brief``:
    the readable rows people see (table, markdown, latex) where the full ones are too
    wide; csv and json always print the full ones."""

    columns: list[str]
    rows: list[list]
    title: str | None = None
    brief: Rows | None = None


ANALYSES: Registry = Registry("analysis")


def analysis(
    name: str,
    *,
    group: str | None = None,
    group_help: str | None = None,
    check: Callable[..., None] | None = None,
    help: str | None = None,
) -> Callable[[Callable[..., Rows]], Callable[..., Rows]]:
    """Register the decorated row builder as the analysis ``name`` (``group.name`` when
    it belongs to a command group). ``check(**options)`` validates options that need no
    store before the store is opened; ``help`` defaults to the builder's docstring."""

    def add(rows: Callable[..., Rows]) -> Callable[..., Rows]:
        key = f"{group}.{name}" if group else name
        ANALYSES.register(
            key, rows, command=name, group=group, group_help=group_help, check=check, help=help or rows.__doc__
        )
        return rows

    return add


def standard_options() -> dict[str, tuple[Any, Any]]:
    """The options every point-based analysis shares, by parameter name: a row builder
    that declares ``space``, ``truth``, ``protocol``, ``post_deiso``, ``estimator``,
    ``epoch`` or ``seed`` without a default gets the shared option (type and Typer
    option); one with a default of its own keeps it."""
    from estbench.cli import options as o

    return {
        "space": (str, o.SpaceOpt),
        "truth": (str, o.TruthOpt),
        "protocol": (str, o.ProtocolOpt),
        "post_deiso": (bool, o.PostDeisoOpt),
        "estimator": (list[str] | None, o.EstOpt),
        "epoch": (list[int] | None, o.EpochOpt),
        "seed": (list[int] | None, o.SeedOpt),
    }


def command_for(key: str) -> Callable[..., None]:
    """The Typer command of analysis ``key``: its builder's options plus --store and --format."""
    entry = ANALYSES.entry(key)
    rows_fn, check = entry.load(), entry.meta["check"]

    def command(store: str | None = None, fmt: str = "table", **options: Any) -> None:
        from estbench.report.render import MACHINE_FORMATS, render

        if check:
            check(**options)
        with open_store(store, read_only=True) as st:
            if shared_truth and options.get("truth") is None:
                from estbench.analysis.points import resolve_truth

                options["truth"] = resolve_truth(st, options["space"], None)
            out = rows_fn(st, **options)
        shown = out.brief if out.brief is not None and fmt not in MACHINE_FORMATS else out
        echo(render(shown.columns, shown.rows, fmt, title=shown.title or out.title))

    # Typer reads the options from __signature__ and their types from __annotations__:
    # the builder's own (types resolved in its module), then --store and --format
    hints = typing.get_type_hints(rows_fn)
    own = [p for p in list(inspect.signature(rows_fn).parameters.values())[1:] if p.name not in ("store", "fmt")]
    standard = standard_options()
    shared_truth = any(p.name == "truth" and p.default is inspect.Parameter.empty for p in own)
    params = []
    for p in own:
        if p.default is inspect.Parameter.empty and p.name in standard:  # a shared option, by name
            annotation, default = standard[p.name]
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default))
        else:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation)))
    params += [
        inspect.Parameter("store", inspect.Parameter.KEYWORD_ONLY, default=ReadStoreOpt, annotation=str | None),
        inspect.Parameter("fmt", inspect.Parameter.KEYWORD_ONLY, default=FormatOpt, annotation=str),
    ]
    command.__signature__ = inspect.Signature(params, return_annotation=None)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = entry.meta["help"]
    command.__name__ = command.__qualname__ = entry.meta["command"]
    return handle_errors(command)


def mount(app: typer.Typer) -> None:
    """Import every module of ``estbench.cli.analyses`` (each registers its analyses),
    then add every registered analysis to ``app``, creating its command group on first use."""
    import importlib
    import pkgutil

    from estbench.cli import analyses

    for mod in pkgutil.iter_modules(analyses.__path__):
        importlib.import_module(f"{analyses.__name__}.{mod.name}")
    groups: dict[str, typer.Typer] = {}
    for key in ANALYSES.names():
        meta = ANALYSES.meta(key)
        target = app
        if meta["group"]:
            if meta["group"] not in groups:
                groups[meta["group"]] = typer.Typer(
                    help=meta["group_help"] or f"{meta['group']} analyses.", no_args_is_help=True
                )
                app.add_typer(groups[meta["group"]], name=meta["group"])
            target = groups[meta["group"]]
        target.command(meta["command"])(command_for(key))
