"""Help texts print as written. Typer renders help with rich markup, which takes every
``[word...]`` for a style tag and drops it ("DuckDB store file [default: estbench.duckdb]"
came out as "DuckDB store file ."; ``sample:N[@SEED]`` as ``sample:N``). Rather than
escaping by hand in every help string (and forgetting one), :func:`literal_help` escapes
the markup of every command, option, argument and group of an app once, after the
commands are registered (and reflows docstring paragraphs, see :func:`reflow`); ``tests/test_cli_output.py`` checks every rendered ``--help``."""

from __future__ import annotations

import inspect

import typer
from rich.markup import escape
from typer.models import ParameterInfo

_escaped: dict[int, object] = {}  # id -> object whose help is escaped (kept, so ids stay unique)


def _escape_once(obj) -> None:
    """Escape ``obj.help`` unless done before (options shared by commands come by again);
    no attribute is added to typer's objects: typer copies them by their ``vars``."""
    if id(obj) in _escaped:
        return
    _escaped[id(obj)] = obj
    if isinstance(getattr(obj, "help", None), str):
        obj.help = escape(obj.help)


def reflow(text: str) -> str:
    """Join the lines of each paragraph of a docstring: rich keeps every line break, so
    a docstring's 88-column lines came out broken again at 80 columns ("complexity" /
    "groups by ..."). Lines of a list ("- ...") or indented lines stay their own."""
    out = []
    for para in text.split("\n\n"):
        lines = para.splitlines()
        if any(line.lstrip().startswith(("- ", "* ")) or line.startswith(" ") for line in lines):
            out.append(para)
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def _escape_command(info) -> None:
    """A command (or an app callback): its docstring or help, and its parameters' help."""
    if info is None or info.callback is None:
        return
    if id(info) not in _escaped and info.help is None and info.callback.__doc__:
        info.help = reflow(inspect.cleandoc(info.callback.__doc__))
    _escape_once(info)
    for param in inspect.signature(info.callback).parameters.values():
        if isinstance(param.default, ParameterInfo):
            _escape_once(param.default)


def literal_help(app: typer.Typer) -> typer.Typer:
    """Escape rich markup in every help text of ``app`` and its groups (idempotent)."""
    _escape_once(app.info)
    _escape_command(app.registered_callback)
    for command in app.registered_commands:
        _escape_command(command)
    for group in app.registered_groups:
        _escape_once(group)
        if group.typer_instance is not None:
            literal_help(group.typer_instance)
    return app
