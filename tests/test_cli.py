"""The CLI end to end on the toy space, and every bad input a user can make."""

import csv
import json

import numpy as np
import pytest
import typer
from scipy import stats
from tests_support import one_line_error

from estbench.cli import app
from estbench.store.store import Store


def command_paths(group, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every command and command group registered on the app, as argv prefixes."""
    out = []
    for name, cmd in group.commands.items():
        out.append([*prefix, name])
        if hasattr(cmd, "commands"):  # a command group
            out += command_paths(cmd, (*prefix, name))
    return out


COMMANDS = command_paths(typer.main.get_command(app))


def test_command_walk_finds_the_commands():
    names = {" ".join(c) for c in COMMANDS}
    assert {"score", "train", "criteria", "report", "list", "sql", "export", "truth load", "truth list"} <= names


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_commands_have_help(runner, cmd):
    r = runner.invoke(app, cmd + ["--help"])
    assert r.exit_code == 0 and "Usage" in r.output
    assert len(r.output) > 200


def test_registered_analysis_becomes_a_command(runner, toy_store, monkeypatch):
    """An analysis is one registration: mount() gives it a command (and its group) with
    --store and --format; nothing lists it by hand."""
    from estbench.cli import analyze
    from estbench.cli.options import SpaceOpt

    monkeypatch.setattr(analyze.ANALYSES, "_entries", dict(analyze.ANALYSES._entries))

    @analyze.analysis("counts", group="bias", group_help="Bias analyses.")
    def counts(st, space: str = SpaceOpt) -> analyze.Rows:
        """Stored scores per estimator."""
        cols, rows = st.query(
            "SELECT estimator, count(*) AS n FROM scores WHERE space = ? GROUP BY 1 ORDER BY 1", [space]
        )
        return analyze.Rows(cols, rows)

    test_app = typer.Typer()
    analyze.mount(test_app)
    assert ["bias", "counts"] in command_paths(typer.main.get_command(test_app))
    r = runner.invoke(test_app, ["bias", "counts", "--space", "toy", "--store", toy_store, "-f", "csv"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == ["estimator,n", "flops,27", "params,27", "relu,27"]
    r = runner.invoke(test_app, ["bias", "counts", "--help"])
    assert "Stored scores per estimator" in r.output and "--format" in r.output


def test_list(runner):
    r = runner.invoke(app, ["list", "spaces", "-f", "csv"])
    assert r.exit_code == 0 and "nb201" in r.output and "toy" in r.output
    r = runner.invoke(app, ["list", "estimators", "-f", "json"])
    names = {d["estimator"] for d in json.loads(r.output)}
    assert {"params", "flops", "relu"} <= names


def test_end_to_end_criteria_match_scipy(runner, toy_store, toy):
    r = runner.invoke(app, ["criteria", "--space", "toy", "--protocol", "iso", "--store", toy_store, "-f", "json"])
    assert r.exit_code == 0, r.output
    rows = {d["estimator"]: d for d in json.loads(r.output)}
    assert set(rows) == {"params", "flops", "relu"}
    with Store(toy_store, read_only=True) as st:
        _, data = st.query(
            "SELECT t.value, s.value FROM truth t JOIN scores s USING (space, arch_id) "
            "WHERE t.metric = 'cifar10-test' AND s.estimator = 'params' ORDER BY arch_id"
        )
    y, s = np.array(data).T
    assert rows["params"]["points"] == 27
    assert rows["params"]["kd"] == pytest.approx(stats.kendalltau(y, s).statistic, abs=1e-9)
    assert rows["params"]["spearman"] == pytest.approx(stats.spearmanr(y, s).statistic, abs=1e-9)


@pytest.mark.parametrize("post_deiso", [False, True])
def test_deiso_protocol_takes_class_truth_and_representative_score(runner, toy_store, toy, post_deiso):
    args = ["criteria", "--space", "toy", "--store", toy_store, "-f", "json", "-e", "flops"]
    r = runner.invoke(app, args + ["--post-deiso"] * post_deiso)
    d = json.loads(r.output)[0]
    n_classes = len({toy.canonical(toy.parse(s)) for s in toy.arch_list(None)})
    assert d["points"] == n_classes < 27
    score = "avg(s.value)" if post_deiso else "arg_min(s.value, s.arch_id)"
    with Store(toy_store, read_only=True) as st:
        _, data = st.query(
            f"SELECT avg(t.value), {score} FROM truth t JOIN scores s USING (space, arch_id) "
            "JOIN archs a USING (space, arch_id) WHERE t.metric = 'cifar10-test' AND s.estimator = 'flops' "
            "GROUP BY a.iso_key"
        )
    y, s = np.array(data).T
    assert d["kd"] == pytest.approx(stats.kendalltau(y, s).statistic, abs=1e-9)


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "markdown", "latex"])
def test_report_formats(runner, toy_store, fmt):
    r = runner.invoke(app, ["report", "--space", "toy", "--store", toy_store, "-f", fmt])
    assert r.exit_code == 0, r.output
    assert "params" in r.output and ("KD" in r.output)
    if fmt == "latex":
        assert r"\begin{tabular}" in r.output
    if fmt == "csv":
        rows = list(csv.reader(r.output.splitlines()))
        assert rows[0][:3] == ["estimator", "KD", "SpearmanR"] and len(rows) == 4


def test_sql_and_export(runner, toy_store, tmp_path):
    r = runner.invoke(app, ["sql", "SELECT count(*) AS n FROM scores", "--store", toy_store, "-f", "csv"])
    assert r.output.splitlines() == ["n", str(27 * 3)]
    r = runner.invoke(
        app,
        [
            "sql",
            "SELECT estimator, count(*) AS n FROM score_mean GROUP BY 1 ORDER BY 1",
            "--store",
            toy_store,
            "-f",
            "markdown",
        ],
    )
    assert "| flops | 27 |" in r.output
    r = runner.invoke(app, ["export", str(tmp_path / "pq"), "--store", toy_store])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "pq" / "scores.parquet").exists()
    r = runner.invoke(
        app, ["sql", f"SELECT count(*) FROM '{tmp_path / 'pq' / 'scores.parquet'}'", "--store", toy_store, "-f", "csv"]
    )
    assert r.output.splitlines()[1] == "81"


def test_rerun_is_cached(runner, toy_store):
    r = runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--store", toy_store])
    assert r.exit_code == 0 and "27 requested, 27 cached, 0 computed" in r.output


def test_archs_selection(runner, tmp_path, toy):
    archs_file = tmp_path / "archs.txt"
    archs_file.write_text(
        "# two archs\n" + toy.arch_list(None)[3] + "\n" + toy.arch_list(None)[7] + "  # trailing comment\n"
    )
    for k, (spec, n) in enumerate(
        [("0:5", 5), ("sample:4@1", 4), ("deiso", 9), ("deiso:4@2", 4), (str(archs_file), 2)]
    ):
        store = str(tmp_path / f"s{k}.duckdb")
        r = runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--archs", spec, "--store", store])
        assert r.exit_code == 0, r.output
        with Store(store, read_only=True) as st:
            assert st.query("SELECT count(*) FROM scores")[1][0][0] == n, spec
    assert len({toy.canonical(toy.parse(s)) for s in toy.arch_list(None)}) == 9


def test_interrupted_run_resumes_with_one_row_per_key(runner, tmp_path, monkeypatch):
    """A run killed mid-way keeps its finished chunks; the rerun computes only the rest."""
    from estbench.estimators import ESTIMATORS

    store = str(tmp_path / "s.duckdb")
    calls = {"n": 0}
    entry = ESTIMATORS.entry("params")
    real = entry.load()

    def flaky(space, arch, **shape):
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return real(space, arch, **shape)

    monkeypatch.setattr(entry, "target", flaky)
    r = runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--chunk-size", "5", "--store", store])
    assert r.exit_code == 130
    with Store(store, read_only=True) as st:
        assert st.query("SELECT count(*) FROM scores")[1][0][0] == 10  # two finished chunks
    monkeypatch.setattr(entry, "target", real)
    r = runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--chunk-size", "5", "--store", store])
    assert r.exit_code == 0 and "27 requested, 10 cached, 17 computed" in r.output
    with Store(store, read_only=True) as st:
        _, rows = st.query("SELECT count(*), count(DISTINCT arch_id) FROM scores")
    assert rows[0] == (27, 27)


def test_failing_estimator_is_recorded_and_run_continues(runner, tmp_path, monkeypatch):
    from estbench.estimators import ESTIMATORS

    def broken(space, arch, **shape):
        if arch.count("nor_conv_3x3") == 1:
            raise RuntimeError("boom")
        return 1.0

    monkeypatch.setattr(ESTIMATORS.entry("relu"), "target", broken)
    store = str(tmp_path / "s.duckdb")
    r = runner.invoke(app, ["score", "--space", "toy", "-e", "relu", "--store", store])
    assert r.exit_code == 0 and "(12 failed" in r.output
    with Store(store, read_only=True) as st:
        _, rows = st.query("SELECT status, count(*), any_value(detail) FROM scores GROUP BY 1 ORDER BY 1")
    assert rows[0] == ("failed", 12, "RuntimeError: boom") and rows[1][:2] == ("ok", 15)


# ---- bad input: one clear line, non-zero exit, nothing lost --------------------------


def test_unknown_space(runner, tmp_path):
    msg = one_line_error(
        runner.invoke(app, ["score", "--space", "nb210", "-e", "params", "--store", str(tmp_path / "s")])
    )
    assert "Did you mean nb201" in msg and "Known: nb101, nb101-1shot3, nb201, nb301, toy" in msg


def test_unknown_estimator(runner, tmp_path):
    msg = one_line_error(runner.invoke(app, ["score", "--space", "toy", "-e", "param", "--store", str(tmp_path / "s")]))
    assert "Did you mean params" in msg and "Known:" in msg


def test_unknown_metric_and_estimator_in_criteria(runner, toy_store):
    msg = one_line_error(
        runner.invoke(app, ["criteria", "--space", "toy", "--truth", "cifar10-tst", "--store", toy_store])
    )
    assert "Did you mean cifar10-test" in msg
    msg = one_line_error(runner.invoke(app, ["criteria", "--space", "toy", "-e", "flop", "--store", toy_store]))
    assert "Did you mean flops" in msg


def test_malformed_arch_file(runner, tmp_path, toy_store):
    bad = tmp_path / "bad.txt"
    bad.write_text("|none~0|+|none~0|conv~1|\n")
    msg = one_line_error(
        runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--archs", str(bad), "--store", toy_store])
    )
    assert "bad.txt:1" in msg and "unknown op 'conv'" in msg


def test_missing_truth_file(runner, tmp_path):
    msg = one_line_error(
        runner.invoke(
            app,
            ["truth", "load", "--space", "toy", "--file", str(tmp_path / "nope.csv"), "--store", str(tmp_path / "s")],
        )
    )
    assert "does not exist" in msg


def test_missing_truth_in_data_dir(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    import estbench.data.lookup as lookup

    monkeypatch.setattr(lookup, "_PROJECT_ROOT", tmp_path / "nowhere")
    msg = one_line_error(
        runner.invoke(
            app, ["truth", "load", "--space", "toy", "--data-dir", str(empty), "--store", str(tmp_path / "s")]
        )
    )  # (nb201 falls back to the table shipped with estbench: tests/test_builtin.py)
    assert str(empty) in msg and "toy_truth.csv.gz" in msg


def test_truth_file_with_missing_columns(runner, tmp_path, toy_store):
    bad = tmp_path / "t.csv"
    bad.write_text("index,cifar10_test\n0,1.0\n")
    msg = one_line_error(
        runner.invoke(app, ["truth", "load", "--space", "toy", "--file", str(bad), "--store", toy_store])
    )
    assert "missing column 'arch_str'" in msg
    with Store(toy_store, read_only=True) as st:  # the old truth is intact
        assert st.query("SELECT count(*) FROM truth")[1][0][0] == 27 * 2


def test_truth_file_with_bad_value_leaves_store_intact(runner, tmp_path, toy_store, toy):
    bad = tmp_path / "t.csv"
    archs = toy.arch_list(None)
    bad.write_text("index,arch_str,cifar10_test\n0," + archs[0] + ",1.0\n1," + archs[1] + ",abc\n")
    msg = one_line_error(
        runner.invoke(app, ["truth", "load", "--space", "toy", "--file", str(bad), "--store", toy_store])
    )
    assert "'abc' is not a number" in msg
    with Store(toy_store, read_only=True) as st:
        assert st.query("SELECT count(*) FROM truth WHERE metric = 'cifar10-test'")[1][0][0] == 27


def test_store_not_duckdb(runner, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n" * 1000)
    msg = one_line_error(runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--store", str(path)]), code=1)
    assert "not a DuckDB database" in msg
    assert path.read_text() == "hello\n" * 1000


def test_bad_archs_spec_and_format(runner, toy_store):
    one_line_error(
        runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--archs", "5:2", "--store", toy_store])
    )
    one_line_error(
        runner.invoke(app, ["score", "--space", "toy", "-e", "params", "--archs", "bogus", "--store", toy_store])
    )
    one_line_error(runner.invoke(app, ["report", "--space", "toy", "--store", toy_store, "-f", "xml"]))
    one_line_error(runner.invoke(app, ["criteria", "--space", "toy", "--store", toy_store, "--protocol", "nope"]))


def test_criteria_without_store(runner, tmp_path):
    msg = one_line_error(
        runner.invoke(app, ["criteria", "--space", "toy", "--store", str(tmp_path / "none.duckdb")]), code=1
    )
    assert "no store at" in msg


def test_locked_store_is_one_line(runner, tmp_path, toy_store, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("ESTBENCH_LOCK_WAIT", "0.5")  # a writer waits for the lock, here only briefly
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({toy_store!r}); print('ready', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        msg = one_line_error(
            runner.invoke(app, ["score", "--space", "toy", "-e", "flops", "--store", toy_store]), code=1
        )
        assert "locked by another process" in msg
    finally:
        holder.kill()
        holder.wait()
    with Store(toy_store, read_only=True) as st:  # nothing lost
        assert st.query("SELECT count(*) FROM scores")[1][0][0] == 81


def test_table_keeps_brackets():
    from estbench.report.render import render

    out = render(["estimator"], [["os_acc [run-a]"]], "table")
    assert "os_acc [run-a]" in out
