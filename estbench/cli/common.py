"""What every command shares: errors as one line and an exit code, stdout writes,
opening the store."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import typer

from estbench.errors import EstbenchError


def handle_errors(fn: Callable) -> Callable:
    """Turn every EstbenchError into one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EstbenchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted; finished chunks are saved, rerun to continue", err=True)
            raise typer.Exit(130) from None

    return wrapper


def echo(text: str) -> None:
    """Rows on stdout, exactly as rendered (no added newline)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def open_store(path: str | None, read_only: bool = False):
    from estbench.store.store import open_store as _open

    return _open(path, read_only=read_only)
