"""Reading a Parquet export (``estbench export DIR``) as a store: ``--store DIR`` on any
reading command (criteria, bias, variance, report, sql, export) runs it over the
export's files, nothing copied. An in-memory DuckDB gets one view per
``DIR/<name>.parquet``; the files are read where they lie, as each query needs them.

An export is read-only: a writing command on it is refused with one line. The export's
schema version must be this estbench's (an older export: re-export it with this
estbench from its store, which migrates the store first)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from estbench.errors import StoreError
from estbench.store.connection import first_line

_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def is_export_dir(path: str) -> bool:
    """True for a directory that holds an export (its schema_migrations.parquet)."""
    p = Path(path)
    return p.is_dir() and (p / "schema_migrations.parquet").is_file()


def connect_export(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with a view over every table file of the export."""
    if not read_only:
        raise StoreError(
            f"{path} is a Parquet export, which is read-only; analyses read it as --store {path}, "
            "writing commands need a store file"
        )
    con = duckdb.connect(":memory:")
    try:
        for file in sorted(Path(path).glob("*.parquet")):
            if not _NAME.fullmatch(file.stem):
                continue  # not one of ours (an export names files after tables)
            literal = str(file).replace("'", "''")
            con.execute(f"CREATE VIEW \"{file.stem}\" AS SELECT * FROM read_parquet('{literal}')")
            con.execute(f'SELECT * FROM "{file.stem}" LIMIT 0')  # reads the footer: a bad file fails here
    except duckdb.Error as exc:
        con.close()
        raise StoreError(f"{path}: cannot read {file.name} as Parquet ({first_line(exc)})") from None
    return con
