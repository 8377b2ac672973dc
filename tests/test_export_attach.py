"""A Parquet export read back as a store (`--store DIR`): the same analyses as on the
store it came from, read-only, and one line for what is not a readable export."""

import duckdb
import pytest
from bias_support import make_store
from tests_support import one_line_error

from estbench.cli import app

CASES = [
    ["criteria", "--space", "toy"],
    ["criteria", "--space", "toy", "--protocol", "iso", "--seed", "20"],
    ["bias", "op", "--space", "toy"],
    ["report", "--space", "toy"],
    ["sql", "SELECT estimator, count(*) FROM score_mean GROUP BY 1 ORDER BY 1"],
]


@pytest.fixture
def exported(tmp_path, runner):
    store = str(tmp_path / "s.duckdb")
    make_store(store, "toy", {"synflow": ("synflow", 0.5), "snip": ("snip", 1.0)}, seeds=(20, 2020))
    out = tmp_path / "pq"
    r = runner.invoke(app, ["export", str(out), "--store", store])
    assert r.exit_code == 0, r.output
    return store, out


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(c[:3]))
def test_an_export_reads_like_its_store(runner, exported, case):
    store, out = exported
    a = runner.invoke(app, [*case, "-f", "csv", "--store", store])
    b = runner.invoke(app, [*case, "-f", "csv", "--store", str(out)])
    assert a.exit_code == 0, a.output
    assert b.exit_code == 0, b.output
    assert a.output == b.output and len(a.output.splitlines()) > 1


def test_an_export_is_read_only_and_can_be_exported_again(runner, exported, tmp_path):
    _, out = exported
    msg = one_line_error(runner.invoke(app, ["sql", "--write", "DELETE FROM scores", "--store", str(out)]), code=1)
    assert "Parquet export, which is read-only" in msg
    msg = one_line_error(runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--store", str(out)]), code=1)
    assert "read-only" in msg
    r = runner.invoke(app, ["export", str(tmp_path / "again"), "--table", "scores", "--store", str(out)])
    assert r.exit_code == 0, r.output
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*) FROM read_parquet('{tmp_path / 'again' / 'scores.parquet'}')").fetchone()[0]
    assert n == con.execute(f"SELECT count(*) FROM read_parquet('{out / 'scores.parquet'}')").fetchone()[0] > 0


def test_what_is_not_a_readable_export_is_one_line(runner, exported, tmp_path):
    _, out = exported
    plain = tmp_path / "plain"
    plain.mkdir()
    msg = one_line_error(runner.invoke(app, ["criteria", "--space", "toy", "--store", str(plain)]), code=1)
    assert "no Parquet export" in msg
    (out / "scores.parquet").write_bytes(b"not parquet")
    msg = one_line_error(runner.invoke(app, ["criteria", "--space", "toy", "--store", str(out)]), code=1)
    assert "scores.parquet" in msg


def test_an_older_export_asks_for_a_new_one(runner, exported):
    _, out = exported
    target = out / "schema_migrations.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{target}') WHERE version < 8) TO '{out / 'old.parquet'}' (FORMAT parquet)"
    )
    con.close()
    (out / "old.parquet").replace(target)
    msg = one_line_error(runner.invoke(app, ["criteria", "--space", "toy", "--store", str(out)]), code=1)
    assert "export the store again" in msg
