"""What every command shares: errors as one line and an exit code, stdout writes,
opening the store."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from typing import Callable, Iterator

import typer

from estbench.errors import EstbenchError


def handle_errors(fn: Callable) -> Callable:
    """Turn every EstbenchError into one line on stderr and its exit code; Ctrl-C and
    SIGTERM into one line and 130 / 143 (128 + the signal), after the run rows are
    marked ``interrupted`` and the chunks written so far kept."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with _signals_as_interrupt():
                return fn(*args, **kwargs)
        except EstbenchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            what = "terminated" if isinstance(exc, Terminated) else "interrupted"
            typer.echo(f"{what}; finished chunks are saved, rerun to continue", err=True)
            raise typer.Exit(128 + signal.SIGTERM if isinstance(exc, Terminated) else 130) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:  # not foreseen: still one line (ESTBENCH_DEBUG=1 shows the traceback)
            if os.environ.get("ESTBENCH_DEBUG"):
                raise
            typer.echo(f"error: {unforeseen_message(exc)}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def unforeseen_message(exc: Exception) -> str:
    """One line for an error no EstbenchError describes: the OS's words for a failing
    file (disk full, permissions), else the exception with a hint to see more."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    first = (str(exc).strip().splitlines() or [""])[0]
    detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return f"{detail} (unexpected; rerun with ESTBENCH_DEBUG=1 for the traceback and report it)"


def check_format(fmt: str) -> str:
    """Refuse an unknown --format before any work (a `sql --write` must not run first)."""
    from estbench.errors import BadInput
    from estbench.report.render import FORMATS

    if fmt not in FORMATS:
        raise BadInput(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    return fmt


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill PID``, a batch scheduler's stop), handled like Ctrl-C."""


@contextlib.contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, the first SIGTERM Terminated (a second one kills
    as usual; the run row is then marked by the next writer). A signal that lands in a
    DuckDB query surfaces as the query's error ("Query interrupted"): it is re-raised as
    the interrupt it was. Only the main thread can handle signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []

    def on_signal(signum, frame) -> None:
        got.append(signum)
        if signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            raise Terminated()
        raise KeyboardInterrupt()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except Exception as exc:
        if not got:
            raise
        raise (Terminated() if signal.SIGTERM in got else KeyboardInterrupt()) from exc
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def echo(text: str) -> None:
    """Rows on stdout, exactly as rendered (no added newline)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def open_store(path: str | None, read_only: bool = False, init: bool = False):
    """The store at ``path``; ``init`` lets a writer add estbench's tables to a DuckDB
    file that holds other tables (refused otherwise)."""
    from estbench.store.store import open_store as _open

    return _open(path, read_only=read_only, init=init)
