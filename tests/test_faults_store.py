"""Faults of the store file at the CLI (issue 9, items 2, 3, 8, 9): a full disk, a
read-only directory, a truncated or block-corrupted file, a store made by a newer
estbench, someone else's DuckDB file, empty or failing SQL, exports that cannot be
written. Each is one `error: ...` line with exit 1 (2 for bad input), and the store is
left byte-for-byte or row-for-row as it was."""

import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from tests_support import one_line_error as _one_line_error

from estbench.cli import app
from estbench.store import Store
from estbench.store.schema import MIGRATIONS

README = Path(__file__).resolve().parents[1] / "README.md"
LATEST = MIGRATIONS[-1][0]
ZSE = ["--zse", "synflow", "--input", "noise-uniform", "--batch-size", "4", "--batches", "1"]


def one_line_error(r, code: int = 1) -> str:
    """Store faults are failures: exit 1 unless said otherwise."""
    return _one_line_error(r, code)


def rows(store: str, sql: str = "SELECT * FROM scores ORDER BY ALL") -> list[tuple]:
    con = duckdb.connect(store, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def count(store: str, table: str = "scores") -> int:
    return rows(store, f"SELECT count(*) FROM {table}")[0][0]


# ---- user SQL ----------------------------------------------------------------


@pytest.mark.parametrize("sql", ["", ";", " ;\n; "])
def test_sql_without_a_statement_is_bad_input(runner, toy_store, sql):
    msg = one_line_error(runner.invoke(app, ["sql", sql, "--store", toy_store]), code=2)
    assert "no SQL statement" in msg


def test_sql_write_checks_the_format_before_running(runner, toy_store):
    before = rows(toy_store)
    msg = one_line_error(
        runner.invoke(app, ["sql", "--write", "-f", "xml", "DELETE FROM scores", "--store", toy_store]), code=2
    )
    assert "unknown format 'xml'" in msg
    assert rows(toy_store) == before


def test_sql_write_is_one_transaction(runner, toy_store):
    before = rows(toy_store)
    r = runner.invoke(app, ["sql", "--write", "DELETE FROM scores; SELECT * FROM no_such_table", "--store", toy_store])
    assert "no_such_table" in one_line_error(r, code=2)
    assert rows(toy_store) == before  # the DELETE before the failing statement is undone


def test_sql_on_a_file_the_sql_names_is_still_bad_input(runner, toy_store, tmp_path):
    r = runner.invoke(app, ["sql", f"SELECT * FROM '{tmp_path / 'missing.parquet'}'", "--store", toy_store])
    assert "SQL error" in one_line_error(r, code=2)


# ---- export ------------------------------------------------------------------


def readme_tables() -> list[str]:
    """The tables and views the README's "The store and SQL" section names."""
    section = README.read_text().split("## The store and SQL", 1)[1]
    paragraph = section.strip().split("\n\n", 1)[0]
    return [n for n in re.findall(r"`([a-z_]+)`", paragraph)]


def test_export_writes_every_table_the_readme_names(runner, toy_store, tmp_path):
    names = readme_tables()
    assert {"archs", "scores", "runs", "schema_migrations", "score_mean", "score_seed_mean"} <= set(names)
    r = runner.invoke(app, ["export", str(tmp_path / "pq"), "--store", toy_store])
    assert r.exit_code == 0, r.output
    written = {p.stem for p in (tmp_path / "pq").glob("*.parquet")}
    assert set(names) <= written, set(names) - written
    assert not list((tmp_path / "pq").glob(".*"))  # no partial files left
    con = duckdb.connect()
    assert (
        con.execute(f"SELECT count(*) FROM '{tmp_path / 'pq' / 'schema_migrations.parquet'}'").fetchone()[0] == LATEST
    )


def test_export_into_a_file_is_one_line(runner, toy_store, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    msg = one_line_error(runner.invoke(app, ["export", str(target), "--store", toy_store]))
    assert "not a directory" in msg
    assert target.read_text() == "mine\n"
    msg = one_line_error(runner.invoke(app, ["export", str(target / "sub"), "--store", toy_store]))
    assert str(target) in msg


def test_failed_export_leaves_the_directory_as_it_was(runner, toy_store, tmp_path):
    out = tmp_path / "pq"
    assert runner.invoke(app, ["export", str(out), "--store", toy_store, "--table", "archs"]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "scores.parquet").mkdir()  # a target that cannot be written
    msg = one_line_error(runner.invoke(app, ["export", str(out), "--store", toy_store]))
    assert "scores.parquet" in msg
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # no table written, the earlier export untouched


def test_export_to_a_full_disk_is_one_line(runner, toy_store, tmp_path, monkeypatch):
    from estbench.store.store import Store as StoreClass

    out = tmp_path / "pq"
    real = StoreClass._copy_parquet

    def copy(self, name, target):
        if name == "scores":
            raise OSError(28, "No space left on device", str(target))
        real(self, name, target)

    monkeypatch.setattr(StoreClass, "_copy_parquet", copy)
    msg = one_line_error(runner.invoke(app, ["export", str(out), "--store", toy_store]))
    assert "No space left on device" in msg
    assert list(out.iterdir()) == []


# ---- list --------------------------------------------------------------------


def test_list_accepts_store(runner, toy_store):
    r = runner.invoke(app, ["list", "spaces", "--store", toy_store, "-f", "csv"])
    assert r.exit_code == 0, r.output
    assert "toy" in r.output


# ---- schema ------------------------------------------------------------------


def test_store_of_a_newer_estbench_is_refused_untouched(runner, toy_store):
    con = duckdb.connect(toy_store)
    con.execute("INSERT INTO schema_migrations (version, description) VALUES (?, 'from the future')", [LATEST + 1])
    con.close()
    before = Path(toy_store).read_bytes()
    for args in (
        ["score", "--space", "toy", "-e", "relu"],
        ["truth", "list"],
        ["criteria", "--space", "toy"],
        ["sql", "--write", "SELECT 1"],
        ["sql", "SELECT 1"],
    ):
        msg = one_line_error(runner.invoke(app, [*args, "--store", toy_store]))
        assert f"made by a newer estbench (schema {LATEST + 1}, this estbench knows {LATEST})" in msg, args
    assert Path(toy_store).read_bytes() == before


def foreign_file(path: Path) -> bytes:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE notes (id INTEGER, text VARCHAR)")
    con.execute("INSERT INTO notes VALUES (1, 'my own data')")
    con.close()
    return path.read_bytes()


def test_foreign_duckdb_file_is_refused_untouched(runner, tmp_path, toy_truth_file):
    path = tmp_path / "mine.duckdb"
    before = foreign_file(path)
    for args in (
        ["score", "--space", "toy", "-e", "params"],
        ["truth", "load", "--space", "toy", "--file", str(toy_truth_file)],
        ["criteria", "--space", "toy"],
        ["sql", "--write", "SELECT 1"],
    ):
        msg = one_line_error(runner.invoke(app, [*args, "--store", str(path)]))
        assert "not an estbench store (tables: notes)" in msg, args
        assert path.read_bytes() == before, args
    assert "--init" in one_line_error(
        runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--store", str(path)])
    )


def test_init_adds_estbench_tables_beside_the_others(runner, tmp_path):
    path = tmp_path / "mine.duckdb"
    foreign_file(path)
    r = runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--store", str(path), "--init"])
    assert r.exit_code == 0, r.output
    assert count(str(path)) == 27
    assert rows(str(path), "SELECT * FROM notes") == [(1, "my own data")]
    r = runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--store", str(path)])  # now an estbench store
    assert r.exit_code == 0, r.output


def test_empty_duckdb_file_becomes_a_store(runner, tmp_path):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    r = runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--store", str(path)])
    assert r.exit_code == 0, r.output
    assert count(str(path)) == 27


# ---- damaged files -------------------------------------------------------------

BLOCK, HEADER = 262_144, 3 * 4096  # DuckDB's block size and file header


def damage_block_of(store: str, table: str) -> None:
    """Overwrite a few bytes of the first block whose damage only ``table`` notices."""
    original = Path(store).read_bytes()
    for k in range((len(original) - HEADER) // BLOCK):
        off = HEADER + k * BLOCK + 100
        damaged = original[:off] + b"GARBAGE!" * 4 + original[off + 32 :]
        Path(store).write_bytes(damaged)
        try:
            con = duckdb.connect(store, read_only=True)
        except duckdb.Error:
            continue
        try:
            broken = []
            for t in ("archs", "truth", "metrics", "scores", "configs", "estimators", "runs", "schema_migrations"):
                try:
                    con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {t}").fetchall()
                except duckdb.Error:
                    broken.append(t)
        finally:
            con.close()
        if broken == [table]:
            return
    Path(store).write_bytes(original)
    pytest.skip(f"no block of {table} alone found in this DuckDB's layout")


def test_block_corrupted_store_is_one_line_and_untouched(runner, toy_store):
    damage_block_of(toy_store, "truth")  # a table `score` itself never reads
    before = Path(toy_store).read_bytes()
    msg = one_line_error(runner.invoke(app, ["score", "--space", "toy", "-e", "relu", "--store", toy_store]))
    assert "is damaged" in msg
    for args in (["criteria", "--space", "toy"], ["report", "--space", "toy"], ["truth", "list"]):
        assert "is damaged" in one_line_error(runner.invoke(app, [*args, "--store", toy_store])), args
    msg = one_line_error(runner.invoke(app, ["sql", "SELECT * FROM truth", "--store", toy_store]))  # 1, not 2
    assert "is damaged" in msg
    assert Path(toy_store).read_bytes() == before


@pytest.mark.parametrize("keep", [4096, 0.25, 0.75])
def test_truncated_store_is_one_line_and_untouched(runner, toy_store, keep):
    data = Path(toy_store).read_bytes()
    Path(toy_store).write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    before = Path(toy_store).read_bytes()
    for args in (
        ["score", "--space", "toy", "-e", "relu"],
        ["criteria", "--space", "toy"],
        ["report", "--space", "toy"],
    ):
        assert "damaged" in one_line_error(runner.invoke(app, [*args, "--store", toy_store])), args
    assert Path(toy_store).read_bytes() == before


# ---- a full disk ----------------------------------------------------------------


class FullDisk:
    """A DuckDB connection whose disk fills after ``commits`` commits: the commit fails
    as DuckDB's does on ENOSPC, and the transaction is rolled back."""

    def __init__(self, con, budget: list[int]):
        self._con, self._budget = con, budget

    def execute(self, sql, *args):
        if sql.strip().upper() == "COMMIT":
            if self._budget[0] <= 0:
                self._con.execute("ROLLBACK")
                raise duckdb.TransactionException(
                    'TransactionContext Error: Failed to commit: Could not write file "s.duckdb.wal": '
                    "No space left on device"
                )
            self._budget[0] -= 1
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("commits", [0, 3, 6])
def test_disk_full_during_score_is_one_line_and_resumable(runner, toy_store, monkeypatch, commits):
    import estbench.store.store as store_mod

    real, budget = store_mod.connect, [commits]
    before = rows(toy_store)
    monkeypatch.setattr(store_mod, "connect", lambda *a, **k: FullDisk(real(*a, **k), budget))
    args = ["score", "--space", "toy", *ZSE, "--chunk-size", "4", "--store", toy_store]
    assert "No space left on device" in one_line_error(runner.invoke(app, args))
    monkeypatch.setattr(store_mod, "connect", real)  # space freed
    after = rows(toy_store)
    assert [r for r in after if r[2] != "synflow"] == before  # the other rows untouched
    assert len(after) - len(before) in {*range(0, 28, 4), 27}  # whole chunks only
    assert runner.invoke(app, args).exit_code == 0
    final = rows(toy_store, "SELECT arch_id, count(*) FROM scores WHERE estimator = 'synflow' GROUP BY 1")
    assert len(final) == 27 and {n for _, n in final} == {1}


def mounted(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def tiny_disk(tmp_path):
    """A 8 MiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if (
        os.geteuid() != 0
        or not shutil.which("mount")
        or not mounted("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk))
    ):
        pytest.skip("needs root and tmpfs mounts")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_real_disk_full_during_score(runner, toy_store, tiny_disk):
    store = str(tiny_disk / "s.duckdb")
    shutil.copy(toy_store, store)
    before = rows(store)
    with open(tiny_disk / "fill", "wb") as fh:  # leave 16 KiB free
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
    os.truncate(tiny_disk / "fill", os.path.getsize(tiny_disk / "fill") - 16384)
    args = ["score", "--space", "toy", *ZSE, "--chunk-size", "1", "--store", store]
    assert "No space left on device" in one_line_error(runner.invoke(app, args))
    assert [r for r in rows(store) if r[2] != "synflow"] == before
    os.unlink(tiny_disk / "fill")
    assert runner.invoke(app, args).exit_code == 0
    assert count(store) == len(before) + 27


# ---- a read-only directory ---------------------------------------------------------


@pytest.fixture
def read_only_dir(tmp_path, toy_store):
    """``toy_store`` copied into a directory no one may write to, the file itself
    writable (DuckDB opens it and fails at its WAL). Root ignores permissions: a
    read-only bind mount of the directory, with the writable file bound over it."""
    rw, view = tmp_path / "rw", tmp_path / "view"
    rw.mkdir()
    view.mkdir()
    shutil.copy(toy_store, rw / "s.duckdb")
    if os.geteuid() != 0:
        rw.chmod(0o555)
        yield rw / "s.duckdb"
        rw.chmod(0o755)
        return
    if not (mounted("--bind", str(rw), str(view)) and mounted("-o", "remount,ro,bind", str(view))):
        subprocess.run(["umount", str(view)], capture_output=True)
        pytest.skip("needs mount rights")
    try:
        if not mounted("--bind", str(rw / "s.duckdb"), str(view / "s.duckdb")):
            pytest.skip("needs mount rights")
        yield view / "s.duckdb"
    finally:
        subprocess.run(["umount", str(view / "s.duckdb")], capture_output=True)
        subprocess.run(["umount", str(view)], capture_output=True)


def test_store_in_a_read_only_directory(runner, read_only_dir):
    store = str(read_only_dir)
    before = read_only_dir.read_bytes()
    assert one_line_error(runner.invoke(app, ["score", "--space", "toy", *ZSE, "--store", store]))
    one_line_error(runner.invoke(app, ["sql", "--write", "DELETE FROM scores", "--store", store]))  # 1, not 2
    r = runner.invoke(app, ["criteria", "--space", "toy", "--store", store, "-f", "csv"])  # reading works
    assert r.exit_code == 0, r.output
    assert read_only_dir.read_bytes() == before


# ---- anything else ----------------------------------------------------------------


def test_unforeseen_errors_are_one_line(runner, toy_store, monkeypatch):
    monkeypatch.setattr(Store, "query", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom\nmore")))
    msg = one_line_error(runner.invoke(app, ["sql", "SELECT 1", "--store", toy_store]))
    assert "RuntimeError: boom" in msg and "ESTBENCH_DEBUG" in msg
    monkeypatch.setattr(Store, "query", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    assert one_line_error(runner.invoke(app, ["sql", "SELECT 1", "--store", toy_store])) == (
        "error: No space left on device"
    )
