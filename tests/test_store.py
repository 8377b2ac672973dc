"""The DuckDB store: migrations, idempotent chunked writes, bad files, locks."""

import subprocess
import sys
import textwrap
import time

import pytest

from estbench.errors import BadInput, StoreError
from estbench.store import SCORE_COLUMNS, ScoreKey, ScoreRow, Store
from estbench.store.schema import MIGRATIONS

KEY = ScoreKey("toy", "params", "h")


def row(aid, value=1.0, batch=0):
    return ScoreRow.of(KEY, aid, batch, value, 0.0, "r")


def test_migrations_recorded_once(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as st:
        assert st.schema_version() == MIGRATIONS[-1][0]
    with Store(path) as st:  # reopening applies nothing twice
        _, rows = st.query("SELECT version FROM schema_migrations")
        assert [r[0] for r in rows] == [m[0] for m in MIGRATIONS]


def test_upsert_is_idempotent_and_keeps_first_value():
    with Store(":memory:") as st:
        st.upsert_scores([row(i) for i in range(10)])
        st.upsert_scores([row(i, value=2.0) for i in range(5, 15)])
        _, rows = st.query("SELECT count(*), sum(value) FROM scores")
        assert rows[0] == (15, 10 * 1.0 + 5 * 2.0)
        assert len(SCORE_COLUMNS) == len(row(0))


def test_one_nonfinite_policy():
    inf, nan, failed = row(1, float("inf")), row(2, float("nan")), ScoreRow.of(KEY, 3, 0, None, 0.0, "r", "E: x")
    assert (inf.value, inf.status, inf.detail) == (float("inf"), "nonfinite", "inf")
    assert (nan.value, nan.status, nan.detail) == (None, "nonfinite", "nan")
    assert (failed.value, failed.status, failed.detail) == (None, "failed", "E: x")


def test_done_arch_ids_needs_all_batches():
    with Store(":memory:") as st:
        st.upsert_scores([row(1, batch=0), row(1, batch=1), row(2, batch=0)])
        assert st.done_arch_ids(ScoreKey("toy", "params", "h", n_batches=2)) == {1}
        assert st.done_arch_ids(KEY) == {1, 2}


def test_failed_transaction_writes_nothing():
    with Store(":memory:") as st:
        bad = [row(1), ScoreRow("toy", None, "params", "h", 0, 0, 0, 1.0, "ok", None, 0.0, "r")]  # NULL key
        with pytest.raises(StoreError, match="writing scores failed"):
            st.upsert_scores(bad)
        assert st.query("SELECT count(*) FROM scores")[1][0][0] == 0


def test_not_a_duckdb_file(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("this is not a database\n" * 100)
    with pytest.raises(StoreError, match="not a DuckDB database"):
        Store(path)
    assert path.read_text().startswith("this is not a database")  # untouched


def test_read_only_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "missing.duckdb", read_only=True)


def test_sql_errors_are_bad_input():
    with Store(":memory:") as st:
        with pytest.raises(BadInput, match="SQL error"):
            st.query("SELECT * FROM no_such_table")


def test_locked_store(tmp_path, monkeypatch):
    monkeypatch.setenv("ESTBENCH_LOCK_WAIT", "0.5")  # give up waiting for the holder after 0.5 s
    path = tmp_path / "locked.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, time, sys
            con = duckdb.connect({str(path)!r})
            print("ready", flush=True)
            time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="locked by another process"):
            Store(path)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    Store(path).close()  # usable again once the holder is gone


def test_old_store_is_migrated_and_keeps_its_rows(tmp_path, monkeypatch):
    import estbench.store.store as store_mod

    path = tmp_path / "old.duckdb"
    monkeypatch.setattr(store_mod, "MIGRATIONS", MIGRATIONS[:1])
    with Store(path) as st:
        st.upsert_scores([row(1), row(2)])
    monkeypatch.setattr(store_mod, "MIGRATIONS", MIGRATIONS)
    with pytest.raises(StoreError, match="open it once with a writing command"):
        Store(path, read_only=True)
    with Store(path) as st:
        assert st.schema_version() == MIGRATIONS[-1][0]
        assert st.query("SELECT count(*) FROM scores")[1][0][0] == 2
        assert st.query("SELECT count(*) FROM score_seed_mean")[1][0][0] == 2


def test_newer_and_foreign_files_are_refused_by_the_library_too(tmp_path):
    import duckdb

    newer = tmp_path / "newer.duckdb"
    Store(newer).close()
    con = duckdb.connect(str(newer))
    con.execute("INSERT INTO schema_migrations (version) VALUES (?)", [MIGRATIONS[-1][0] + 1])
    con.close()
    for read_only in (True, False):
        with pytest.raises(StoreError, match="made by a newer estbench"):
            Store(newer, read_only=read_only)
    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE notes (a INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not an estbench store"):
        Store(foreign)
    with Store(foreign, init=True) as st:
        assert st.schema_version() == MIGRATIONS[-1][0]
        assert "notes" in st._tables()
