"""Shared fixtures: the toy space, synthetic truth tables, tmp stores, a CLI runner."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from estbench.spaces import get_space

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the user's store, data dir or cache by accident."""
    monkeypatch.delenv("ESTBENCH_STORE", raising=False)
    monkeypatch.delenv("ESTBENCH_DATA", raising=False)
    monkeypatch.setenv("ESTBENCH_CACHE", str(tmp_path / "cache"))
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


@pytest.fixture
def toy_store(tmp_path, runner, toy_truth_file) -> str:
    """A store with toy truth and the three structural estimators scored."""
    store = str(tmp_path / "toy.duckdb")
    r = runner.invoke(app(), ["truth", "load", "--space", "toy", "--file", str(toy_truth_file), "--store", store])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app(), ["score", "--space", "toy", "-e", "params", "-e", "flops", "-e", "relu", "--store", store])
    assert r.exit_code == 0, r.output
    return store


def app():
    from estbench.cli import app as typer_app

    return typer_app


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA
