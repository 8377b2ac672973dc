"""Shared fixtures: the toy space, synthetic truth tables, tmp stores, a CLI runner."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from estbench.spaces import get_space

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dataset-cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path, request, _session_cache):
    """No test reads the user's store, data dir or cache by accident. The decoded-dataset
    cache is one per session (decoding the real CIFAR-10 JPEGs again costs ~10 s a
    test; entries are keyed by their source file), or the test's own with
    ``@pytest.mark.own_cache`` (tests of the cache itself)."""
    monkeypatch.delenv("ESTBENCH_STORE", raising=False)
    monkeypatch.delenv("ESTBENCH_DATA", raising=False)
    own = request.node.get_closest_marker("own_cache") is not None
    monkeypatch.setenv("ESTBENCH_CACHE", str(tmp_path / "cache" if own else _session_cache))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # where `data get` writes
    monkeypatch.delenv("ESTBENCH_MIRROR", raising=False)


@pytest.fixture
def toy():
    return get_space("toy")


def synthetic_truth(space, seed: int = 0) -> list[tuple[int, str, float, float]]:
    """(id, arch, test, valid) where accuracy grows with convs and skip paths, plus noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i, s in enumerate(space.arch_list(None)):
        arch = space.parse(s)
        base = (
            10.0 if space.is_degenerate(arch) else 50 + 10 * arch.count("nor_conv_3x3") + 3 * arch.count("skip_connect")
        )
        out.append((i, s, round(base + rng.normal(0, 2), 4), round(base + rng.normal(0, 2), 4)))
    return out


@pytest.fixture
def toy_truth_file(tmp_path, toy) -> Path:
    path = tmp_path / "toy_truth.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "arch_str", "cifar10_test", "cifar10_valid_valid"])
        w.writerows(synthetic_truth(toy))
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def _toy_store_template(tmp_path_factory) -> tuple[Path, Path]:
    """(store, truth file) built once per session: toy truth loaded, the three
    structural estimators scored through the CLI."""
    tmp = tmp_path_factory.mktemp("toy-template")
    truth = tmp / "toy_truth.csv"
    with open(truth, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "arch_str", "cifar10_test", "cifar10_valid_valid"])
        w.writerows(synthetic_truth(get_space("toy")))
    store = tmp / "toy.duckdb"
    r = CliRunner().invoke(app(), ["truth", "load", "--space", "toy", "--file", str(truth), "--store", str(store)])
    assert r.exit_code == 0, r.output
    # --threads 1: the runs rows must not depend on the thread count earlier tests left
    score = ["score", "--space", "toy", "-e", "params", "-e", "flops", "-e", "relu", "--threads", "1"]
    r = CliRunner().invoke(app(), [*score, "--store", str(store)])
    assert r.exit_code == 0, r.output
    return store, truth


@pytest.fixture
def toy_store(tmp_path, toy_truth_file, _toy_store_template) -> str:
    """A store with toy truth and the three structural estimators scored: a copy of the
    session's template (its truth is the same table as ``toy_truth_file``)."""
    import shutil

    template, truth = _toy_store_template
    assert truth.read_bytes() == toy_truth_file.read_bytes()
    store = tmp_path / "toy.duckdb"
    shutil.copyfile(template, store)
    wal = template.with_name(template.name + ".wal")  # none after a clean close; copied if there is
    if wal.exists():
        shutil.copyfile(wal, store.with_name(store.name + ".wal"))
    return str(store)


def app():
    from estbench.cli import app as typer_app

    return typer_app


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA
