"""The DuckDB store: one file, schema created and migrated by the code, chunked
idempotent writes (primary keys + ON CONFLICT DO NOTHING), read-only opening for
analyses. Values are always bound as parameters, never formatted into SQL."""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Iterable, Sequence

import duckdb

from estbench import __version__
from estbench.errors import StoreError
from estbench.store.schema import MIGRATIONS

DEFAULT_STORE = "estbench.duckdb"
SCORE_COLUMNS = (
    "space", "arch_id", "estimator", "config_hash", "epoch", "seed", "batch",
    "value", "status", "detail", "elapsed_s", "run_id",
)  # fmt: skip
SCORE_KEY = SCORE_COLUMNS[:7]


def default_store_path() -> str:
    return os.environ.get("ESTBENCH_STORE") or DEFAULT_STORE


def _connect(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    if path != ":memory:" and read_only and not Path(path).exists():
        raise StoreError(f"no store at {path}; create it with `estbench truth load` or `estbench score`")
    try:
        return duckdb.connect(path, read_only=read_only)
    except duckdb.Error as exc:
        msg = str(exc)
        if "lock" in msg.lower():
            holder = msg.split("(PID")[-1].split(")")[0].strip() if "(PID" in msg else "another process"
            raise StoreError(
                f"store {path} is locked by another process (PID {holder}); wait for it to finish "
                "or use another --store"
            ) from None
        if "not a valid DuckDB database" in msg or "Serialization" in type(exc).__name__ or "magic" in msg:
            raise StoreError(f"{path} is not a DuckDB database (refusing to touch it); use another --store") from None
        raise StoreError(f"cannot open store {path}: {msg.splitlines()[0]}") from None


class Store:
    """A DuckDB store. Use as a context manager; ``read_only`` for analyses."""

    def __init__(self, path: str | os.PathLike = ":memory:", read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        self.con = _connect(self.path, read_only)
        if read_only:
            self._check_schema()
        else:
            self.migrate()

    # ---- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _tables(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}

    def schema_version(self) -> int:
        if "schema_migrations" not in self._tables():
            return 0
        return self.con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]

    def _check_schema(self) -> None:
        try:
            version = self.schema_version()
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: cannot read the schema ({exc})") from None
        latest = MIGRATIONS[-1][0]
        if version != latest:
            raise StoreError(
                f"{self.path}: schema version {version}, this estbench needs {latest}; "
                "open it once with a writing command (e.g. `estbench truth load`) to migrate"
            )

    def migrate(self) -> None:
        try:
            self.con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "description VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)"
            )
            current = self.schema_version()
            for version, description, sql in MIGRATIONS:
                if version <= current:
                    continue
                self.con.execute("BEGIN TRANSACTION")
                self.con.execute(sql)
                self.con.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (?, ?)", [version, description]
                )
                self.con.execute("COMMIT")
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: migration failed ({exc})") from None

    # ---- generic ---------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict | None = None) -> tuple[list[str], list[tuple]]:
        """Run SQL; return (column names, rows). Errors become StoreError-free BadInput."""
        from estbench.errors import BadInput

        try:
            cur = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
            cols = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cur.description else []
            return cols, rows
        except duckdb.Error as exc:
            raise BadInput(f"SQL error: {str(exc).splitlines()[0]}") from None

    def insert_columns(
        self, table: str, columns: Sequence[str], data: dict[str, list], conflict: str = "NOTHING"
    ) -> None:
        """Bulk insert column lists (one statement, values bound as list parameters)."""
        if not data or not len(next(iter(data.values()))):
            return
        unnest = ", ".join(f"unnest(${i + 1}) AS {c}" for i, c in enumerate(columns))
        on = "ON CONFLICT DO NOTHING" if conflict == "NOTHING" else "ON CONFLICT DO UPDATE SET " + conflict
        self.con.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM (SELECT {unnest}) {on}",
            [data[c] for c in columns],
        )

    # ---- archs and truth -------------------------------------------------------
    def arch_count(self, space: str) -> int:
        return self.con.execute("SELECT count(*) FROM archs WHERE space = ?", [space]).fetchone()[0]

    def put_archs(self, space: str, rows: list[dict[str, Any]]) -> None:
        """rows: dicts with arch_id, arch_str, iso_key, comp_key, degenerate."""
        cols = ("space", "arch_id", "arch_str", "iso_key", "comp_key", "degenerate")
        data = {c: [space] * len(rows) if c == "space" else [r[c] for r in rows] for c in cols}
        self.transaction(lambda: self.insert_columns("archs", cols, data))

    def arch_strings(self, space: str) -> list[str]:
        rows = self.con.execute("SELECT arch_str FROM archs WHERE space = ? ORDER BY arch_id", [space]).fetchall()
        return [r[0] for r in rows]

    def put_truth(self, space: str, table) -> int:
        """Replace the given metrics of ``space`` with the table's values (one transaction)."""

        def work() -> None:
            for name, info in table.metrics.items():
                self.con.execute("DELETE FROM truth WHERE space = ? AND metric = ?", [space, name])
                self.con.execute("DELETE FROM metrics WHERE space = ? AND metric = ?", [space, name])
                self.con.execute(
                    "INSERT INTO metrics (space, metric, epoch, seed_mean, higher_is_better, source, description) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [space, name, info.epoch, info.seed_mean, info.higher_is_better, info.source, info.description],
                )
            rows = list(table.rows())
            self.insert_columns(
                "truth",
                ("space", "arch_id", "metric", "value"),
                {"space": [space] * len(rows), "arch_id": [r[0] for r in rows],
                 "metric": [r[1] for r in rows], "value": [r[2] for r in rows]},
            )  # fmt: skip

        self.transaction(work)
        return sum(1 for _ in table.rows())

    # ---- estimators, configs, runs ---------------------------------------------
    def put_estimator(self, name: str, kind: str, higher_is_better: bool, description: str = "") -> None:
        self.con.execute(
            "INSERT INTO estimators VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET kind = excluded.kind, "
            "higher_is_better = excluded.higher_is_better, description = excluded.description",
            [name, kind, higher_is_better, description],
        )

    def put_config(self, config_hash: str, estimator: str, config: dict) -> None:
        self.con.execute(
            "INSERT INTO configs (config_hash, estimator, config) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [config_hash, estimator, json.dumps(config, sort_keys=True)],
        )

    def start_run(self, kind: str, space: str, name: str, config: dict) -> str:
        run_id = uuid.uuid4().hex[:12]
        self.con.execute(
            "INSERT INTO runs (run_id, kind, space, name, config, status, host, estbench_version) "
            "VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
            [run_id, kind, space, name, json.dumps(config, sort_keys=True), socket.gethostname(), __version__],
        )
        return run_id

    def finish_run(self, run_id: str, status: str, n_written: int) -> None:
        self.con.execute(
            "UPDATE runs SET status = ?, finished_at = current_timestamp, n_written = ? WHERE run_id = ?",
            [status, n_written, run_id],
        )

    # ---- scores ----------------------------------------------------------------
    def upsert_scores(self, rows: list[tuple]) -> int:
        """Insert score rows (tuples in SCORE_COLUMNS order) in one transaction; rows
        whose key exists are left untouched. Returns the number of rows offered."""
        if not rows:
            return 0
        data = {c: [r[i] for r in rows] for i, c in enumerate(SCORE_COLUMNS)}
        self.transaction(lambda: self.insert_columns("scores", SCORE_COLUMNS, data))
        return len(rows)

    def done_arch_ids(
        self, space: str, estimator: str, config_hash: str, epoch: int, seed: int, n_batches: int
    ) -> set[int]:
        """Arch ids that already have all ``n_batches`` batches for this key."""
        rows = self.con.execute(
            "SELECT arch_id FROM scores WHERE space = ? AND estimator = ? AND config_hash = ? AND epoch = ? "
            "AND seed = ? AND batch < ? GROUP BY arch_id HAVING count(*) = ?",
            [space, estimator, config_hash, epoch, seed, n_batches, n_batches],
        ).fetchall()
        return {r[0] for r in rows}

    def transaction(self, work) -> None:
        """Run ``work()`` in one transaction: all of its writes land, or none."""
        try:
            self.con.execute("BEGIN TRANSACTION")
            work()
            self.con.execute("COMMIT")
        except BaseException:
            try:
                self.con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise

    def export_parquet(self, directory: str | os.PathLike, tables: Iterable[str] | None = None) -> list[Path]:
        """Write each table/view as ``<directory>/<name>.parquet``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        names = list(tables or ("archs", "metrics", "truth", "estimators", "configs", "runs", "scores", "score_mean"))
        written = []
        for name in names:
            if name not in self._tables():
                from estbench.errors import BadInput

                raise BadInput(f"no table or view {name!r} in the store")
            target = out / f"{name}.parquet"
            # identifiers are checked against the catalogue above; the path is a bound literal
            self.con.execute(f"COPY (SELECT * FROM \"{name}\") TO '{_sql_path(target)}' (FORMAT parquet)")
            written.append(target)
        return written


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def open_store(path: str | None = None, read_only: bool = False) -> Store:
    return Store(path or default_store_path(), read_only=read_only)
