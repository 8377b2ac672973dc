"""Issue 9, bad inputs at the command line: `truth load` never loses values silently,
data files never run code, nonsense options are refused before the store is touched.
Every refusal is one line, exit 2, and leaves the store row-for-row as it was."""

from __future__ import annotations

import csv
import os
import pickle
from pathlib import Path

import pytest
from test_truth_official import ARCHS, arch_results, nb201_archive, save_pbz2
from tests_support import one_line_error
from typer.testing import CliRunner

from estbench.cli import app
from estbench.spaces import get_space
from estbench.store.store import Store


def snapshot(store: str) -> dict[str, list[tuple]]:
    """Every row of every table and view of the store, in a stable order."""
    with Store(store, read_only=True) as st:
        _, tables = st.query("SELECT table_name FROM information_schema.tables ORDER BY 1")
        return {t: st.query(f'SELECT * FROM "{t}" ORDER BY ALL')[1] for (t,) in tables}


def load(runner: CliRunner, store: str, path: Path, *extra: str, space: str = "toy"):
    return runner.invoke(app, ["truth", "load", "--space", space, "--file", str(path), "--store", store, *extra])


def write_table(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "arch_str", "cifar10_test"])
        w.writerows(rows)
    return path


def truth_rows(toy, value=lambda i: 50.0 + i) -> list[tuple]:
    return [(i, s, value(i)) for i, s in enumerate(toy.arch_list(None))]


def truth_count(store: str, metric: str = "cifar10-test") -> int:
    with Store(store, read_only=True) as st:
        return st.query("SELECT count(*) FROM truth WHERE metric = ?", [metric])[1][0][0]


# ---- item 4: truth load loses nothing silently --------------------------------------


def test_fresh_load_reports_true_counts(runner, tmp_path, toy_truth_file):
    store = str(tmp_path / "s.duckdb")
    r = load(runner, store, toy_truth_file)
    assert r.exit_code == 0, r.output
    assert "loaded 54 values of 2 metrics" in r.output and "replaced" not in r.output
    assert truth_count(store) == 27 and truth_count(store, "cifar10-valid-valid") == 27


def test_partial_file_does_not_shrink_a_metric(runner, tmp_path, toy_store, toy):
    before = snapshot(toy_store)
    partial = write_table(tmp_path / "partial.csv", truth_rows(toy)[:18])
    msg = one_line_error(load(runner, toy_store, partial))
    assert "cifar10-test" in msg and "has 27 values" in msg and "the file 18" in msg and "--replace" in msg
    assert snapshot(toy_store) == before


def test_replace_shrinks_and_says_so(runner, tmp_path, toy_store, toy):
    partial = write_table(tmp_path / "partial.csv", truth_rows(toy)[:18])
    r = load(runner, toy_store, partial, "--replace")
    assert r.exit_code == 0, r.output
    assert "loaded 18 values of 1 metrics" in r.output and "replaced 27 values of cifar10-test" in r.output
    assert truth_count(toy_store) == 18
    assert truth_count(toy_store, "cifar10-valid-valid") == 27  # a metric the file lacks is kept


def test_file_with_other_archs_of_same_size_is_refused(runner, tmp_path, toy_store, toy):
    """Same count, but arch 0 would lose its value: that is a shrink too."""
    write_table(tmp_path / "few.csv", truth_rows(toy)[:10])
    assert load(runner, toy_store, tmp_path / "few.csv", "--replace").exit_code == 0
    before = snapshot(toy_store)
    other = write_table(tmp_path / "other.csv", truth_rows(toy)[1:11])
    msg = one_line_error(load(runner, toy_store, other))
    assert "lacks 1 of them" in msg
    assert snapshot(toy_store) == before


def test_reload_with_more_archs_or_new_values_is_accepted(runner, tmp_path, toy_store, toy):
    full = write_table(tmp_path / "full.csv", truth_rows(toy, lambda i: 60.0 + i))
    r = load(runner, toy_store, full)
    assert r.exit_code == 0, r.output
    assert "loaded 27 values of 1 metrics" in r.output and "replaced 27 values of cifar10-test" in r.output
    with Store(toy_store, read_only=True) as st:
        assert st.query("SELECT min(value) FROM truth WHERE metric = 'cifar10-test'")[1][0][0] == 60.0


def test_conflicting_duplicate_row_is_refused_naming_the_arch(runner, tmp_path, toy_store, toy):
    before = snapshot(toy_store)
    rows = truth_rows(toy)
    dup = write_table(tmp_path / "dup.csv", [*rows, (5, rows[5][1], 99.0)])
    msg = one_line_error(load(runner, toy_store, dup))
    assert rows[5][1] in msg and "id 5" in msg and "line 7" in msg and "dup.csv:29" in msg
    assert snapshot(toy_store) == before


def test_identical_duplicate_row_is_counted_once(runner, tmp_path, toy_store, toy):
    rows = truth_rows(toy)
    dup = write_table(tmp_path / "dup.csv", [*rows, rows[5]])
    r = load(runner, toy_store, dup)
    assert r.exit_code == 0, r.output
    assert "loaded 27 values" in r.output and "1 identical repeated rows ignored" in r.output
    assert truth_count(toy_store) == 27


@pytest.mark.parametrize("cell", ["inf", "-inf", "nan", "NaN", "1e999"])
def test_non_finite_accuracy_is_refused(runner, tmp_path, toy_store, toy, cell):
    before = snapshot(toy_store)
    rows = truth_rows(toy)
    rows[3] = (3, rows[3][1], cell)
    msg = one_line_error(load(runner, toy_store, write_table(tmp_path / "t.csv", rows)))
    assert "t.csv:5" in msg and "not a finite accuracy" in msg
    assert snapshot(toy_store) == before


def test_non_integer_index_is_one_line(runner, tmp_path, toy_store, toy):
    rows = truth_rows(toy)
    rows[0] = ("zero", rows[0][1], 1.0)
    msg = one_line_error(load(runner, toy_store, write_table(tmp_path / "t.csv", rows)))
    assert "index 'zero' is not an integer" in msg


# ---- item 5: data files never run code ---------------------------------------------


class Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path, via: str = "os.system"):
        self.marker, self.via = marker, via

    def __reduce__(self):
        if self.via == "exec":
            return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))
        return (os.system, (f"touch '{self.marker}'",))


@pytest.fixture
def nb201_store(tmp_path) -> str:
    """An nb201 store whose archs table holds the three fixture archs as ids 0..2."""
    space = get_space("nb201")
    store = str(tmp_path / "nb201.duckdb")
    with Store(store) as st:
        st.put_archs("nb201", [dict(arch_id=i, **space.describe(s)) for i, s in enumerate(ARCHS)])
    return store


def nats_dir(root: Path) -> Path:
    d = root / "NATS-tss-v1_0-3ffb9-simple"
    d.mkdir()
    save_pbz2({"meta_archs": list(ARCHS), "total_archs": 3, "evaluated_indexes": set()}, d / "meta.pickle.pbz2")
    for i in range(len(ARCHS)):
        save_pbz2({"12": arch_results(i, 12), "200": arch_results(i, 200)}, d / f"{i:06d}.pickle.pbz2")
    return d


def test_benign_official_files_still_load(runner, tmp_path, nb201_store):
    torch = pytest.importorskip("torch")
    r = load(runner, nb201_store, nats_dir(tmp_path), space="nb201")
    assert r.exit_code == 0, r.output
    assert "loaded 21 values of 7 metrics" in r.output
    pth = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    torch.save(nb201_archive(), pth)
    r = load(runner, nb201_store, pth, space="nb201")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("via", ["os.system", "exec"])
@pytest.mark.parametrize("where", ["meta.pickle.pbz2", "000001.pickle.pbz2"])
def test_malicious_nats_pickle_never_runs(runner, tmp_path, nb201_store, where, via):
    d = nats_dir(tmp_path)
    marker = tmp_path / "pwned"
    if where == "meta.pickle.pbz2":
        obj = {"meta_archs": list(ARCHS), "total_archs": Payload(marker, via)}
    else:
        obj = {"12": arch_results(1, 12), "200": {**arch_results(1, 200), "clear_net_done": Payload(marker, via)}}
    save_pbz2(obj, d / where)
    before = snapshot(nb201_store)
    msg = one_line_error(load(runner, nb201_store, d, space="nb201"))
    assert not marker.exists()
    assert where in msg and "refused to load" in msg and ("system" in msg or "exec" in msg)
    assert snapshot(nb201_store) == before


@pytest.mark.parametrize("kind", ["torch.save", "raw pickle", "legacy torch.save"])
def test_malicious_pth_never_runs(runner, tmp_path, nb201_store, kind):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    pth = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    archive = {**nb201_archive(), "evaluated_indexes": Payload(marker)}
    if kind == "raw pickle":
        pth.write_bytes(pickle.dumps(archive))
    else:
        torch.save(archive, pth, _use_new_zipfile_serialization=kind == "torch.save")
    before = snapshot(nb201_store)
    msg = one_line_error(load(runner, nb201_store, pth, space="nb201"))
    assert not marker.exists()
    assert str(pth) in msg
    if kind != "raw pickle":  # torch reads a bare pickle as a bad magic number, before any global
        assert "refused to load" in msg and "system" in msg
    assert snapshot(nb201_store) == before


def test_malicious_cifar_batch_never_runs(runner, tmp_path, toy_store):
    from tests_support import write_fake_cifar

    data = write_fake_cifar(tmp_path / "data", n_per_batch=4)
    marker = tmp_path / "pwned"
    with open(data / "cifar-10-batches-py" / "data_batch_3", "wb") as fh:
        pickle.dump({b"data": Payload(marker), b"labels": [0]}, fh, protocol=2)
    before = snapshot(toy_store)
    r = runner.invoke(
        app,
        ["score", "--space", "toy", "--zse", "grad_norm", "--batch-size", "2", "--batches", "1",
         "--data-dir", str(data), "--store", toy_store],
    )  # fmt: skip
    msg = one_line_error(r)
    assert not marker.exists()
    assert "data_batch_3" in msg and "refused to load" in msg
    assert snapshot(toy_store) == before


# ---- item 6 and item 2 (--archs): nonsense refused before the store is opened ---------


SCORE = ["score", "--space", "toy", "-e", "params"]
ZSE = ["score", "--space", "toy", "--zse", "grad_norm", "--input", "noise-uniform", "--batch-size", "2"]


@pytest.mark.parametrize(
    "argv, expect",
    [
        ([*SCORE, "--chunk-size", "-1"], "--chunk-size must be >= 1"),
        ([*SCORE, "--chunk-size", "0"], "--chunk-size must be >= 1"),
        ([*ZSE, "--chunk-size", "-1"], "--chunk-size must be >= 1"),
        (["score", "--space", "toy", "--ose", "r1", "--chunk-size", "-5"], "--chunk-size must be >= 1"),
        ([*SCORE, "--channels", "0"], "--channels must be >= 1"),
        ([*ZSE, "--channels", "-3"], "--channels must be >= 1"),
        ([*SCORE, "--cells", "0"], "--cells must be >= 1"),
        ([*SCORE, "--classes", "0"], "--classes must be >= 2"),
        ([*ZSE, "--classes", "1"], "--classes must be >= 2"),
        ([*SCORE, "--archs", ""], "is empty"),
        ([*SCORE, "--archs", "   "], "is empty"),
        ([*SCORE, "--archs", "5:2"], "range is empty"),
        ([*SCORE, "--archs", "sample:0"], "at least 1"),
        ([*SCORE, "--archs", "no-such-file.txt"], "expected all, A:B"),
    ],
)
def test_score_nonsense_is_refused_before_the_store_exists(runner, tmp_path, argv, expect):
    store = tmp_path / "s.duckdb"
    msg = one_line_error(runner.invoke(app, [*argv, "--store", str(store)]))
    assert expect in msg
    assert not store.exists()


def test_score_nonsense_leaves_an_existing_store_byte_identical(runner, toy_store):
    before = Path(toy_store).read_bytes()
    for argv in ([*SCORE, "--chunk-size", "-1"], [*SCORE, "--channels", "0"], [*SCORE, "--archs", ""]):
        one_line_error(runner.invoke(app, [*argv, "--store", toy_store]))
    assert Path(toy_store).read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "|nor_conv_3x3~0|\n".encode("utf-16")],
    ids=["bytes", "png", "utf16"],
)
def test_binary_archs_file_is_one_line(runner, tmp_path, content):
    bad = tmp_path / "archs.bin"
    bad.write_bytes(content)
    store = tmp_path / "s.duckdb"
    msg = one_line_error(runner.invoke(app, [*SCORE, "--archs", str(bad), "--store", str(store)]))
    assert "archs.bin" in msg and "not a text file" in msg
    assert not store.exists()


def test_archs_file_still_works(runner, tmp_path, toy_store, toy):
    archs = tmp_path / "archs.txt"
    archs.write_text(f"# two archs\n{toy.arch_list(None)[3]}\n\n{toy.arch_list(None)[5]}  # five\n")
    r = runner.invoke(app, [*SCORE, "-e", "flops", "--archs", str(archs), "--store", toy_store])
    assert r.exit_code == 0, r.output
    assert "2 requested" in r.output


@pytest.mark.parametrize("name", ["", "a/b", "..", "../escape", "x/../../y", "/abs", ".hidden", "a\\b", "ok\n"])
def test_bad_run_names_are_refused_before_anything_is_written(runner, tmp_path, name):
    store, runs = tmp_path / "s.duckdb", tmp_path / "runs"
    r = runner.invoke(
        app,
        ["train", "--space", "toy", "--run", name, "--preset", "cpu-small", "--epochs", "1",
         "--store", str(store), "--runs-dir", str(runs)],
    )  # fmt: skip
    msg = one_line_error(r)
    assert "--run" in msg and "run name" in msg
    assert not store.exists() and not runs.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_train_shape_nonsense_is_refused_before_the_store_exists(runner, tmp_path):
    store = tmp_path / "s.duckdb"
    for opt in ("--channels", "--cells"):
        r = runner.invoke(
            app, ["train", "--space", "toy", "--run", "r1", "--preset", "cpu-small", opt, "0", "--store", str(store)]
        )
        assert "bad training config" in one_line_error(r)
    assert not store.exists()
