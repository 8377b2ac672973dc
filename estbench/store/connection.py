"""Opening DuckDB connections: short-lived, with a bounded wait for a lock another
process holds, and every failure as one StoreError line.

DuckDB lets one process write a file, or any number of processes read it, never both at
once. So a long writer (a score run, a training run) opens the file only for each chunk
it writes and closes it again; readers (criteria, report, sql) get in between. Whoever
finds the file locked waits, retrying, up to a bound (``ESTBENCH_LOCK_WAIT`` seconds,
else ``READ_WAIT`` / ``WRITE_WAIT``), then gives up with one line naming the holder."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import duckdb

from estbench.errors import StoreError

READ_WAIT = 10.0  # a reader waits at most for a few chunk writes of another process
WRITE_WAIT = 600.0  # a writer waits for readers and for another writer's chunk


def lock_wait(read_only: bool) -> float:
    env = os.environ.get("ESTBENCH_LOCK_WAIT")
    if env:
        try:
            return max(0.0, float(env))
        except ValueError:
            raise StoreError(f"ESTBENCH_LOCK_WAIT={env!r} is not a number of seconds") from None
    return READ_WAIT if read_only else WRITE_WAIT


def is_lock_error(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return "lock" in msg and ("conflicting" in msg or "could not set" in msg)


def connect(path: str, read_only: bool, wait: float | None = None) -> duckdb.DuckDBPyConnection:
    """A connection to ``path``; retries while another process holds the lock."""
    if path != ":memory:" and read_only and not Path(path).exists():
        raise StoreError(f"no store at {path}; create it with `estbench truth load` or `estbench score`")
    deadline = time.monotonic() + (lock_wait(read_only) if wait is None else wait)
    delay = 0.02
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.Error as exc:
            if not is_lock_error(exc) or time.monotonic() >= deadline:
                raise open_error(path, exc) from None
        time.sleep(delay * (1 + random.random()))  # jitter: two waiting writers do not collide forever
        delay = min(delay * 2, 0.5)


def open_error(path: str, exc: BaseException) -> StoreError:
    msg = str(exc)
    if is_lock_error(exc):
        holder = msg.split("(PID")[-1].split(")")[0].strip() if "(PID" in msg else "another process"
        return StoreError(
            f"store {path} is locked by another process (PID {holder}); wait for it to finish or use another --store"
        )
    if is_damage(exc):
        return damaged(path, exc)
    if "not a valid DuckDB database" in msg or "Serialization" in type(exc).__name__ or "magic" in msg:
        return StoreError(f"{path} is not a DuckDB database (refusing to touch it); use another --store")
    return StoreError(f"cannot open store {path}: {first_line(exc)}")


# What DuckDB says about a damaged file: a block whose checksum does not match (bit rot, a
# partial copy), or a file shorter than its own block list (truncated).
DAMAGE_MARKS = ("Corrupt database file", "Could not read enough bytes", "block at location")
# A failure of the disk under the store rather than of the SQL on it.
DISK_MARKS = ("No space left on device", "Failed to commit")


def first_line(exc: BaseException) -> str:
    msg = str(exc).strip()
    return msg.splitlines()[0] if msg else type(exc).__name__


def is_damage(exc: BaseException) -> bool:
    return any(m in str(exc) for m in DAMAGE_MARKS)


def damaged(path: str, exc: BaseException) -> StoreError:
    return StoreError(
        f"store {path} is damaged (truncated or corrupt: {first_line(exc)}); "
        "restore it from a copy or use another --store"
    )


def is_store_failure(path: str, exc: BaseException) -> bool:
    """True when ``exc`` is the store file failing (I/O, damage, a full disk, a failed
    commit, DuckDB itself), False when it is the user's SQL (or a file that SQL names)."""
    if isinstance(exc, (duckdb.InternalException, duckdb.FatalException, duckdb.OutOfMemoryException)):
        return True
    msg = str(exc)
    if is_damage(exc) or any(m in msg for m in DISK_MARKS):
        return True
    if isinstance(exc, duckdb.IOException):  # the store's own file (or its WAL), not one the SQL reads
        return path == ":memory:" or any(p in msg for p in {path, os.path.abspath(path), os.path.realpath(path)})
    return False
