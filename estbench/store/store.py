"""The DuckDB store: one file, schema created and migrated by the code, chunked
idempotent writes (primary keys + ON CONFLICT DO NOTHING). Every SQL statement of
estbench lives in this package; values are bound as parameters, never formatted in.

Connections are short-lived (see ``connection``): each method opens the file, does its
work in one transaction and closes it, so a long run never holds the lock between
chunks. ``with store.session():`` keeps one connection for a burst of calls; an
in-memory store always keeps its one connection."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import duckdb

from estbench.errors import BadInput, StoreError
from estbench.store.connection import connect, open_error
from estbench.store.rows import SCORE_COLUMNS, ScoreRow
from estbench.store.runs import RunsMixin
from estbench.store.schema import MIGRATIONS
from estbench.store.scores import ScoresMixin

DEFAULT_STORE = "estbench.duckdb"
EXPORT_TABLES = (
    "archs", "metrics", "truth", "estimators", "configs", "runs", "scores", "train_epochs", "checkpoints",
    "score_mean", "score_seed_mean",
)  # fmt: skip


def default_store_path() -> str:
    return os.environ.get("ESTBENCH_STORE") or DEFAULT_STORE


class Store(RunsMixin, ScoresMixin):
    """A DuckDB store; ``read_only`` for analyses. Usable as a context manager."""

    def __init__(self, path: str | os.PathLike = ":memory:", read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        self._held: duckdb.DuckDBPyConnection | None = None
        if self.path == ":memory:":
            self._held = connect(self.path, read_only=False)
        with self.session():
            self._check_schema() if read_only else self.migrate()

    # ---- connections -----------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[Store]:
        """Keep one connection open for the calls made inside (released at the end)."""
        if self._held is not None:
            yield self
            return
        self._held = connect(self.path, self.read_only)
        try:
            yield self
        finally:
            con, self._held = self._held, None
            con.close()

    @contextlib.contextmanager
    def _con(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._held is not None:
            yield self._held
            return
        con = connect(self.path, self.read_only)
        try:
            yield con
        finally:
            con.close()

    def close(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _run(self, work: Callable[[duckdb.DuckDBPyConnection], Any], what: str) -> Any:
        """``work(con)`` on a connection; a DuckDB error becomes a StoreError."""
        try:
            with self._con() as con:
                return work(con)
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: {what} failed ({str(exc).splitlines()[0]})") from None

    def _rows(self, sql: str, params: Sequence[Any] | dict | None = None, what: str = "query") -> list[tuple]:
        return self._run(lambda con: con.execute(sql, params).fetchall(), what)

    def _write(self, work: Callable[[duckdb.DuckDBPyConnection], Any], what: str) -> Any:
        """``work(con)`` in one transaction: all of its writes land, or none."""

        def tx(con: duckdb.DuckDBPyConnection) -> Any:
            con.execute("BEGIN TRANSACTION")
            try:
                out = work(con)
                con.execute("COMMIT")
                return out
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise

        if self.read_only:
            raise StoreError(f"{self.path} is open read-only; {what} needs a writing command")
        return self._run(tx, what)

    # ---- schema ----------------------------------------------------------------
    def _tables(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT table_name FROM information_schema.tables")}

    def schema_version(self) -> int:
        if "schema_migrations" not in self._tables():
            return 0
        return self._rows("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0]

    def _check_schema(self) -> None:
        version = self.schema_version()
        latest = MIGRATIONS[-1][0]
        if version != latest:
            raise StoreError(
                f"{self.path}: schema version {version}, this estbench needs {latest}; "
                "open it once with a writing command (e.g. `estbench truth load`) to migrate"
            )

    def migrate(self) -> None:
        def work(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "description VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)"
            )
            current = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
            for version, description, sql in MIGRATIONS:
                if version > current:
                    con.execute(sql)
                    con.execute(
                        "INSERT INTO schema_migrations (version, description) VALUES (?, ?)", [version, description]
                    )

        self._write(work, "migration")

    # ---- user SQL --------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict | None = None) -> tuple[list[str], list[tuple]]:
        """Run a user's SQL; (column names, rows). An error in the SQL is BadInput, a
        failure of the file (I/O, corruption) a StoreError."""
        try:
            with self._con() as con:
                cur = con.execute(sql, params) if params is not None else con.execute(sql)
                cols = [d[0] for d in cur.description] if cur.description else []
                return cols, (cur.fetchall() if cur.description else [])
        except (duckdb.IOException, duckdb.InternalException, duckdb.FatalException) as exc:
            raise StoreError(f"{self.path}: {str(exc).splitlines()[0]}") from None
        except duckdb.Error as exc:
            raise BadInput(f"SQL error: {str(exc).splitlines()[0]}") from None

    # ---- archs and truth -------------------------------------------------------
    def arch_count(self, space: str) -> int:
        return self._rows("SELECT count(*) FROM archs WHERE space = ?", [space])[0][0]

    def put_archs(self, space: str, rows: list[dict[str, Any]]) -> None:
        """rows: dicts with arch_id, arch_str, iso_key, comp_key, degenerate."""
        cols = ("space", "arch_id", "arch_str", "iso_key", "comp_key", "degenerate")
        data = {c: [space] * len(rows) if c == "space" else [r[c] for r in rows] for c in cols}
        self._write(lambda con: _insert_columns(con, "archs", cols, data), "writing archs")

    def arch_strings(self, space: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT arch_str FROM archs WHERE space = ? ORDER BY arch_id", [space])]

    def spaces(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT space FROM archs ORDER BY 1")]

    def arch_ids_with_truth(self, space: str) -> list[int]:
        return [r[0] for r in self._rows("SELECT DISTINCT arch_id FROM truth WHERE space = ? ORDER BY 1", [space])]

    def class_representatives(self, space: str) -> list[int]:
        """The smallest arch id of every isomorphism class (``iso_key``)."""
        sql = "SELECT min(arch_id) FROM archs WHERE space = ? GROUP BY iso_key ORDER BY 1"
        return [r[0] for r in self._rows(sql, [space])]

    def put_truth(self, space: str, table) -> int:
        """Replace the given metrics of ``space`` with the table's values (one transaction)."""
        rows = list(table.rows())

        def work(con: duckdb.DuckDBPyConnection) -> None:
            for name, info in table.metrics.items():
                con.execute("DELETE FROM truth WHERE space = ? AND metric = ?", [space, name])
                con.execute("DELETE FROM metrics WHERE space = ? AND metric = ?", [space, name])
                con.execute(
                    "INSERT INTO metrics (space, metric, epoch, seed_mean, higher_is_better, source, description) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [space, name, info.epoch, info.seed_mean, info.higher_is_better, info.source, info.description],
                )
            _insert_columns(
                con, "truth", ("space", "arch_id", "metric", "value"),
                {"space": [space] * len(rows), "arch_id": [r[0] for r in rows],
                 "metric": [r[1] for r in rows], "value": [r[2] for r in rows]},
            )  # fmt: skip

        self._write(work, "writing truth")
        return len(rows)

    def metric_names(self, space: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT metric FROM metrics WHERE space = ? ORDER BY 1", [space])]

    def truth_metrics(self, space: str | None = None) -> tuple[list[str], list[tuple]]:
        """The metrics table with the number of archs that have a value (`truth list`)."""
        sql = (
            "SELECT m.space, m.metric, m.epoch, m.seed_mean, count(t.value) AS archs, m.source "
            "FROM metrics m LEFT JOIN truth t USING (space, metric) WHERE ? IS NULL OR m.space = ? "
            "GROUP BY ALL ORDER BY 1, 2"
        )
        return ["space", "metric", "epoch", "seed_mean", "archs", "source"], self._rows(sql, [space, space])

    # ---- estimators and configs -------------------------------------------------
    def put_estimator(self, name: str, kind: str, higher_is_better: bool, description: str = "") -> None:
        self._write(
            lambda con: con.execute(
                "INSERT INTO estimators VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET kind = excluded.kind, "
                "higher_is_better = excluded.higher_is_better, description = excluded.description",
                [name, kind, higher_is_better, description],
            ),
            "recording an estimator",
        )

    def put_config(self, config_hash: str, estimator: str, config: dict, label: str | None = None) -> None:
        """Record a config (first writer wins); ``label`` names it in reports (e.g. a run)."""

        def work(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(
                "INSERT INTO configs (config_hash, estimator, config) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [config_hash, estimator, json.dumps(config, sort_keys=True)],
            )
            if label is not None:
                con.execute("UPDATE configs SET label = ? WHERE config_hash = ?", [label, config_hash])

        self._write(work, "recording a config")

    def configs_of(self, space: str, estimators: Sequence[str]) -> list[tuple[str, str, dict]]:
        """(estimator, config hash, settings) of every recorded config of ``estimators``
        for ``space``."""
        rows = self._rows(
            "SELECT estimator, config_hash, config FROM configs WHERE list_contains(?, estimator) "
            "AND json_extract_string(config, '$.space') = ? ORDER BY created_at, config_hash",
            [list(estimators), space],
        )
        return [(e, h, json.loads(c)) for e, h, c in rows]

    # ---- export ----------------------------------------------------------------
    def export_parquet(self, directory: str | os.PathLike, tables: Iterable[str] | None = None) -> list[Path]:
        """Write each table/view as ``<directory>/<name>.parquet``."""
        names = list(tables or EXPORT_TABLES)
        known = self._tables()
        for name in names:
            if name not in known:
                raise BadInput(f"no table or view {name!r} in the store (tables: {', '.join(sorted(known))})")
        out = Path(directory)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {out}: {exc.strerror}") from None
        written = []
        for name in names:
            target = out / f"{name}.parquet"
            # identifiers are checked against the catalogue above; the path is a quoted literal
            sql = f"COPY (SELECT * FROM \"{name}\") TO '{_sql_path(target)}' (FORMAT parquet)"
            self._run(lambda con, sql=sql: con.execute(sql), f"exporting {name}")
            written.append(target)
        return written


def _insert_columns(con, table: str, columns: Sequence[str], data: dict[str, list]) -> None:
    """Bulk insert column lists (one statement, values bound as list parameters)."""
    if not data or not len(next(iter(data.values()))):
        return
    unnest = ", ".join(f"unnest(${i + 1}) AS {c}" for i, c in enumerate(columns))
    con.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM (SELECT {unnest}) ON CONFLICT DO NOTHING",
        [data[c] for c in columns],
    )


def score_columns(rows: Sequence[ScoreRow]) -> dict[str, list]:
    return {c: list(col) for c, col in zip(SCORE_COLUMNS, zip(*rows))}


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def open_store(path: str | None = None, read_only: bool = False) -> Store:
    return Store(path or default_store_path(), read_only=read_only)


__all__ = ["Store", "open_store", "default_store_path", "open_error", "SCORE_COLUMNS"]
