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
from typing import Any, Callable, Iterator, Sequence

import duckdb

from estbench.errors import BadInput, StoreError
from estbench.store import means
from estbench.store.analysis import AnalysisMixin
from estbench.store.attach import connect_export, is_export_dir
from estbench.store.connection import connect, damaged, first_line, is_damage, is_store_failure, open_error
from estbench.store.export import ExportMixin
from estbench.store.forgetting import ForgettingMixin
from estbench.store.gradsim import GradsimMixin
from estbench.store.rows import SCORE_COLUMNS, ScoreRow
from estbench.store.runs import RunsMixin
from estbench.store.schema import MEANS_VERSION, MIGRATIONS, check_schema, verify_readable
from estbench.store.scores import ScoresMixin

DEFAULT_STORE = "estbench.duckdb"


def default_store_path() -> str:
    return os.environ.get("ESTBENCH_STORE") or DEFAULT_STORE


class Store(RunsMixin, ScoresMixin, ExportMixin, AnalysisMixin, ForgettingMixin, GradsimMixin):
    """A DuckDB store; ``read_only`` for analyses. Usable as a context manager.

    A writable open of a DuckDB file that has tables but is no estbench store is refused
    unless ``init`` (then estbench's tables are added beside the others)."""

    def __init__(self, path: str | os.PathLike = ":memory:", read_only: bool = False, init: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        self._held: duckdb.DuckDBPyConnection | None = None
        self.export = is_export_dir(self.path)
        if self.path == ":memory:":
            self._held = connect(self.path, read_only=False)
        elif self.export:
            self._held = connect_export(self.path, read_only)
        elif os.path.isdir(self.path):
            raise StoreError(
                f"{self.path} is a directory but no Parquet export of a store (it has no schema_migrations.parquet); "
                "use a store file, or a directory written by `estbench export`"
            )
        with self.session():
            self._check_schema() if read_only else self.migrate(init)
            if not read_only:
                self.mark_stale_runs()  # a killed run's `running` row is `interrupted` from now on

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
        except BaseException:
            con, self._held = self._held, None
            with contextlib.suppress(duckdb.Error):  # the error inside is the one to report
                con.close()
            raise
        con, self._held = self._held, None
        self._close(con)

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
            con, self._held = self._held, None
            self._close(con)

    def _close(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            con.close()
        except duckdb.Error as exc:
            raise self._failure(exc, "closing the store") from None

    def _failure(self, exc: BaseException, what: str) -> StoreError:
        """One line for a DuckDB error of estbench's own SQL."""
        return (
            damaged(self.path, exc) if is_damage(exc) else StoreError(f"{self.path}: {what} failed ({first_line(exc)})")
        )

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
            raise self._failure(exc, what) from None

    def _rows(self, sql: str, params: Sequence[Any] | dict | None = None, what: str = "query") -> list[tuple]:
        return self._run(lambda con: con.execute(sql, params).fetchall(), what)

    def _write(self, work: Callable[[duckdb.DuckDBPyConnection], Any], what: str) -> Any:
        """``work(con)`` in one transaction: all of its writes land, or none."""

        if self.read_only:
            raise StoreError(f"{self.path} is open read-only; {what} needs a writing command")
        return self._run(lambda con: _in_transaction(con, work), what)

    # ---- schema ----------------------------------------------------------------
    def _tables(self) -> set[str]:
        """The tables and views of the store's main schema."""
        sql = "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = 'main'"
        return {r[0] for r in self._rows(sql)}

    def schema_version(self) -> int:
        if "schema_migrations" not in self._tables():
            return 0
        return self._rows("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0]

    def _check_schema(self) -> None:
        self._run(
            lambda con: check_schema(self.path, con, MIGRATIONS[-1][0], writable=False, export=self.export),
            "reading the schema",
        )

    def migrate(self, init: bool = False) -> None:
        """Bring the schema up to date in one transaction, after refusing what is not
        ours to touch (``schema.check_schema``) and a damaged file (``verify_readable``)."""

        def work(con: duckdb.DuckDBPyConnection) -> None:
            current = check_schema(self.path, con, MIGRATIONS[-1][0], writable=True, init=init)
            if self.path != ":memory:":
                verify_readable(con)
            if current is None:
                con.execute(
                    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                    "description VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)"
                )
            for version, description, sql in MIGRATIONS:
                if version > (current or 0):
                    con.execute(sql)
                    con.execute(
                        "INSERT INTO schema_migrations (version, description) VALUES (?, ?)", [version, description]
                    )
            if (current or 0) < MEANS_VERSION and self._keeps_means:
                means.rebuild(con)  # the scores an older schema holds, averaged once

        self._write(work, "migration")

    @property
    def _keeps_means(self) -> bool:
        """Whether the schema has the score_arch table every score write keeps current."""
        return MIGRATIONS[-1][0] >= MEANS_VERSION

    # ---- user SQL --------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict | None = None) -> tuple[list[str], list[tuple]]:
        """Run a user's SQL; (column names, rows of the last statement). An error in the
        SQL is BadInput, a failure of the file (I/O, damage, a full disk) a StoreError.
        On a writable store all statements run in one transaction: a failing statement
        undoes the ones before it."""

        def work(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[tuple]]:
            cur = con.execute(sql, params) if params is not None else con.execute(sql)
            if cur is None:  # only comments or semicolons
                raise BadInput(f'no SQL statement in {sql!r}; e.g. estbench sql "SELECT count(*) FROM scores"')
            out = [d[0] for d in cur.description or []], (cur.fetchall() if cur.description else [])
            if not self.read_only and self._keeps_means and means.names_scores(sql):
                means.rebuild(con)  # whatever the SQL changed in scores, the means follow
            return out

        if not sql.strip().strip(";").strip():
            raise BadInput(f'no SQL statement in {sql!r}; e.g. estbench sql "SELECT count(*) FROM scores"')
        try:
            with self._con() as con:
                return work(con) if self.read_only else _in_transaction(con, work)
        except duckdb.Error as exc:
            if not is_store_failure(self.path, exc):
                raise BadInput(f"SQL error: {first_line(exc)}") from None
            raise damaged(self.path, exc) if is_damage(exc) else StoreError(f"{self.path}: {first_line(exc)}") from None

    # ---- archs and truth -------------------------------------------------------
    def arch_count(self, space: str) -> int:
        return self._rows("SELECT count(*) FROM archs WHERE space = ?", [space])[0][0]

    def put_archs(self, space: str, rows: list[dict[str, Any]]) -> None:
        """rows: dicts with arch_id, arch_str, iso_key, comp_key, degenerate."""
        cols = ("space", "arch_id", "arch_str", "iso_key", "comp_key", "degenerate")
        data = {c: [space] * len(rows) if c == "space" else [r[c] for r in rows] for c in cols}
        self._write(lambda con: _insert_columns(con, "archs", cols, data), "writing archs")

    def add_archs(self, space: str, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Add the architectures of ``rows`` (dicts as for ``put_archs``, without arch_id)
        that the store does not hold yet, with ids after the largest one, in one
        transaction; the id of every row's arch_str. The archs of an open space (one too
        large to enumerate) grow this way: from truth files, samples and --archs files."""
        cols = ("space", "arch_id", "arch_str", "iso_key", "comp_key", "degenerate")
        strs = list(dict.fromkeys(r["arch_str"] for r in rows))

        def work(con) -> dict[str, int]:
            have = dict(
                con.execute(
                    "SELECT arch_str, arch_id FROM archs WHERE space = ? AND arch_str IN (SELECT unnest(?))",
                    [space, strs],
                ).fetchall()
            )
            nxt = con.execute("SELECT coalesce(max(arch_id) + 1, 0) FROM archs WHERE space = ?", [space]).fetchone()[0]
            new = []
            for r in rows:
                if r["arch_str"] not in have:
                    have[r["arch_str"]] = nxt
                    new.append({**r, "arch_id": nxt})
                    nxt += 1
            data = {c: [space] * len(new) if c == "space" else [r[c] for r in new] for c in cols}
            _insert_columns(con, "archs", cols, data)
            return have

        ids = self._write(work, "adding archs")
        return {s: ids[s] for s in strs}

    def arch_ids_by_key(self, space: str, keys: list[str]) -> dict[str, list[int]]:
        """The arch ids of every ``iso_key`` in ``keys`` the store holds (isomorphic archs share one)."""
        sql = "SELECT iso_key, arch_id FROM archs WHERE space = ? AND iso_key IN (SELECT unnest(?)) ORDER BY 2"
        out: dict[str, list[int]] = {}
        for key, aid in self._rows(sql, [space, list(keys)]):
            out.setdefault(key, []).append(aid)
        return out

    def arch_strings(self, space: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT arch_str FROM archs WHERE space = ? ORDER BY arch_id", [space])]

    def spaces(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT space FROM archs ORDER BY 1")]

    def arch_ids_with_truth(self, space: str) -> list[int]:
        return [r[0] for r in self._rows("SELECT DISTINCT arch_id FROM truth WHERE space = ? ORDER BY 1", [space])]

    def truth_arch_ids(self, space: str, metric: str) -> list[int]:
        """The arch ids that have a value of ``metric`` (what a reload would replace)."""
        sql = "SELECT arch_id FROM truth WHERE space = ? AND metric = ? ORDER BY 1"
        return [r[0] for r in self._rows(sql, [space, metric])]

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
                    "INSERT INTO metrics (space, metric, epoch, seed_mean, higher_is_better, source, description, "
                    "surrogate) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [space, name, info.epoch, info.seed_mean, info.higher_is_better, info.source, info.description,
                     info.surrogate],
                )  # fmt: skip
            _insert_columns(
                con, "truth", ("space", "arch_id", "metric", "value"),
                {"space": [space] * len(rows), "arch_id": [r[0] for r in rows],
                 "metric": [r[1] for r in rows], "value": [r[2] for r in rows]},
            )  # fmt: skip

        self._write(work, "writing truth")
        return len(rows)

    def truth_values(self, space: str, metric: str) -> dict[int, float]:
        """arch id -> value of ``metric`` (``truth load --merge``)."""
        sql = "SELECT arch_id, value FROM truth WHERE space = ? AND metric = ? ORDER BY 1"
        return dict(self._rows(sql, [space, metric]))

    def estimator_kinds(self) -> dict[str, str]:
        """The kind (structural, zeroshot, oneshot, ...) of every estimator with scores,
        as recorded when its scores were written."""
        return dict(self._rows("SELECT name, kind FROM estimators ORDER BY 1"))

    def metric_names(self, space: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT metric FROM metrics WHERE space = ? ORDER BY 1", [space])]

    def metric_info(self, space: str, metric: str):
        """The stored ``MetricInfo`` of ``metric`` (None when the store lacks it)."""
        from estbench.truth.model import MetricInfo

        sql = (
            "SELECT metric, epoch, seed_mean, coalesce(source, ''), higher_is_better, coalesce(description, ''), "
            "surrogate FROM metrics WHERE space = ? AND metric = ?"
        )
        rows = self._rows(sql, [space, metric])
        return MetricInfo(*rows[0]) if rows else None

    def metric_is_surrogate(self, space: str, metric: str) -> bool:
        """True when ``metric`` holds a surrogate model's predictions, not measured truth
        (False for a metric the store lacks)."""
        sql = "SELECT surrogate FROM metrics WHERE space = ? AND metric = ?"
        rows = self._rows(sql, [space, metric])
        return bool(rows and rows[0][0])

    def truth_metrics(self, space: str | None = None) -> tuple[list[str], list[tuple]]:
        """The metrics table with the number of archs that have a value (`truth list`)."""
        sql = (
            "SELECT m.space, m.metric, m.epoch, m.seed_mean, m.surrogate, count(t.value) AS archs, m.source "
            "FROM metrics m LEFT JOIN truth t USING (space, metric) WHERE ? IS NULL OR m.space = ? "
            "GROUP BY ALL ORDER BY 1, 2"
        )
        cols = ["space", "metric", "epoch", "seed_mean", "surrogate", "archs", "source"]
        return cols, self._rows(sql, [space, space])

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


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
    con.execute("BEGIN TRANSACTION")
    try:
        out = work(con)
        con.execute("COMMIT")
        return out
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def _insert_columns(con, table: str, columns: Sequence[str], data: dict[str, list]) -> int:
    """Bulk insert column lists (one statement, values bound as list parameters); the
    number of rows inserted (existing keys are skipped)."""
    if not data or not len(next(iter(data.values()))):
        return 0
    unnest = ", ".join(f"unnest(${i + 1}) AS {c}" for i, c in enumerate(columns))
    return con.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM (SELECT {unnest}) ON CONFLICT DO NOTHING",
        [data[c] for c in columns],
    ).fetchone()[0]


def score_columns(rows: Sequence[ScoreRow]) -> dict[str, list]:
    return {c: list(col) for c, col in zip(SCORE_COLUMNS, zip(*rows))}


def open_store(path: str | None = None, read_only: bool = False, init: bool = False) -> Store:
    return Store(path or default_store_path(), read_only=read_only, init=init)


__all__ = ["Store", "open_store", "default_store_path", "open_error", "SCORE_COLUMNS"]
