"""The NB201 truth table shipped with estbench: `truth load --space nb201` and the NB201
arch list work with no data directory at all; a user's own file or data directory
takes precedence; the source used is recorded."""

import gzip
import hashlib

import pytest

import estbench.data.lookup as lookup
from estbench.cli import app
from estbench.data.builtin import BUILTINS, NB201_SHA256, make_nb201
from estbench.store import Store


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """No data directory anywhere: not ./data, not ../shared/data beside the checkout."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(lookup, "_PROJECT_ROOT", tmp_path / "nowhere" / "project")
    assert not [d for d in lookup.data_dirs() if d.exists()]
    return work


def sources(store):
    with Store(store, read_only=True) as st:
        return dict(st.query("SELECT metric, source FROM metrics WHERE space = 'nb201'")[1])


def test_shipped_table_is_the_documented_file():
    path = BUILTINS["nb201-builtin"].path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == NB201_SHA256
    assert 0.5e6 < path.stat().st_size < 0.6e6


def test_truth_load_and_demo_work_without_any_data(runner, no_data):
    store = str(no_data / "s.duckdb")
    r = runner.invoke(app, ["truth", "load", "--space", "nb201", "--store", store, "-m", "cifar10-test"])
    assert r.exit_code == 0, r.output
    assert "nb201_truth.csv.gz" in sources(store)["cifar10-test"] and "builtin" in sources(store)["cifar10-test"]
    r = runner.invoke(app, ["score", "--space", "nb201", "-e", "params", "--archs", "0:200", "--store", store])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", "--space", "nb201", "--protocol", "iso", "--store", store, "-f", "csv"])
    assert r.exit_code == 0 and r.stdout.startswith("estimator,KD"), r.output


def test_a_users_table_takes_precedence(runner, no_data):
    own = no_data / "data" / "nb201"
    own.mkdir(parents=True)
    with gzip.open(BUILTINS["nb201-builtin"].path, "rt") as src, gzip.open(own / "nb201_truth.csv.gz", "wt") as dst:
        dst.write(src.read())
    store = str(no_data / "s.duckdb")
    r = runner.invoke(app, ["truth", "load", "--space", "nb201", "--store", store, "-m", "cifar10-test"])
    assert r.exit_code == 0, r.output
    assert sources(store)["cifar10-test"].startswith("data") or "work/data" in sources(store)["cifar10-test"]


def test_make_refuses_another_file(tmp_path):
    bad = tmp_path / "nb201_truth.csv.gz"
    bad.write_bytes(gzip.compress(b"index,arch_str\n"))
    with pytest.raises(SystemExit, match="sha256"):
        make_nb201.check(bad)


@pytest.mark.data
def test_make_checks_pass_on_the_source(shared_data):
    make_nb201.check(shared_data / "nb201" / "nb201_truth.csv.gz")
