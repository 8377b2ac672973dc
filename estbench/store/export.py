"""Exporting the store: every table and view as a Parquet file, all or none."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterable

import duckdb

from estbench.errors import BadInput, StoreError
from estbench.store.connection import damaged, first_line, is_damage

# What the README's "The store and SQL" names, in that order; `export` writes these and
# any other table or view of the store.
EXPORT_TABLES = (
    "archs", "metrics", "truth", "estimators", "configs", "runs", "scores", "score_arch", "train_epochs",
    "checkpoints", "schema_migrations", "score_mean", "score_seed_mean",
)  # fmt: skip


class ExportMixin:
    def export_parquet(self, directory: str | os.PathLike, tables: Iterable[str] | None = None) -> list[Path]:
        """Write each table/view as ``<directory>/<name>.parquet`` (default: every table
        and view, ``EXPORT_TABLES`` first). All or nothing: each file is written beside
        its target and renamed over it only once every table is written, so a failed
        export leaves the directory as it was."""
        known = self._tables()
        names = list(
            dict.fromkeys(tables or [*[t for t in EXPORT_TABLES if t in known], *sorted(known - {*EXPORT_TABLES})])
        )
        for name in names:
            if name not in known:
                raise BadInput(f"no table or view {name!r} in the store (tables: {', '.join(sorted(known))})")
        out = Path(directory)
        if out.exists() and not out.is_dir():
            raise StoreError(f"cannot export into {out}: it is a file, not a directory")
        targets = [out / f"{name}.parquet" for name in names]
        for target in targets:
            if target.exists() and not target.is_file():
                raise StoreError(f"cannot export to {target}: it exists and is not a file")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {out}: {exc.strerror}") from None
        parts = [t.with_name(f".{t.name}.part") for t in targets]
        try:
            with self.session():
                for name, part in zip(names, parts):
                    self._copy_parquet(name, part)
            for part, target in zip(parts, targets):
                os.replace(part, target)
        except OSError as exc:
            raise StoreError(f"cannot write into {out}: {exc.strerror}") from None
        finally:
            for part in parts:
                with contextlib.suppress(OSError):
                    part.unlink()
        return targets

    def _copy_parquet(self, name: str, target: Path) -> None:
        # the name is checked against the catalogue; the path is a quoted literal
        sql = f"COPY (SELECT * FROM \"{name}\") TO '{_sql_path(target)}' (FORMAT parquet)"
        try:
            with self._con() as con:
                con.execute(sql)
        except duckdb.Error as exc:
            if is_damage(exc):
                raise damaged(self.path, exc) from None
            raise StoreError(f"exporting {name} to {target.parent} failed ({first_line(exc)})") from None


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
