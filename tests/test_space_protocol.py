"""The search-space protocol: every registered space answers all of it, runners and
trainer only call it, and a new space is one module plus one registry line (shown with
a throwaway space registered by this test and run through the CLI end to end)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from tests_support import write_fake_cifar

from estbench.errors import BadInput, UnknownName
from estbench.estimators import ESTIMATORS
from estbench.estimators.oneshot.train import preset_config
from estbench.spaces import SPACES, get_space
from estbench.spaces.base import SearchSpace
from estbench.spaces.cell import CellSearchSpace, CellSpace

PACKAGE = Path(__file__).resolve().parents[1] / "estbench"


# ---- the new space: this class plus the SPACES.register line in the fixture --------
class Duo(CellSearchSpace):
    """A 2-node cell space: one edge, four ops, four architectures."""

    name = "duo"
    cell = CellSpace("duo", ("none", "skip_connect", "nor_conv_3x3", "avg_pool_3x3"), n_nodes=2)
    default_shape = {"c": 4, "n": 1, "num_classes": 10, "resolution": 8}


@pytest.fixture
def duo():
    SPACES.register("duo", Duo(), description="throwaway 2-node test space")
    try:
        yield get_space("duo")
    finally:
        SPACES.unregister("duo")
    assert "duo" not in SPACES


def test_the_registered_spaces():
    assert SPACES.names() == ["nb101", "nb101-1shot3", "nb201", "nb301", "toy"]
    assert all(isinstance(get_space(n), CellSearchSpace) for n in ("nb201", "toy"))


def test_unregister_unknown_name_suggests():
    with pytest.raises(UnknownName, match="Did you mean toy"):
        SPACES.unregister("tyo")


@pytest.mark.parametrize("name", ["toy", "nb201"])
def test_space_answers_the_whole_protocol(name):
    space: SearchSpace = get_space(name)
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    text = space.to_str(arch)
    assert space.parse(text) == arch
    assert set(space.protocols) == {"iso", "computational"}
    assert all(isinstance(space.canonical(arch, p), str) for p in space.protocols)
    assert set(space.describe(text)) == {"arch_str", "iso_key", "comp_key", "degenerate"}
    assert arch not in space.mutations(arch) and space.mutations(arch)
    assert space.structural(arch, "params", c=4, n=1) > 0
    x = torch.randn(2, 3, 8, 8)
    assert space.build(arch, c=4, n=1)(x).shape == (2, 10)
    supernet = space.supernet(c=4, n=1, dropout=0.0)
    assert space.supernet_settings(supernet.state_dict()) == {"c": 4, "n": 1, "num_classes": 10, "bn_affine": False}
    assert torch.equal(space.candidate(supernet, arch)(x), supernet(x, arch))
    assert space.sampler_names() == ["deiso", "fairnas", "uniform"]
    for sampler in space.sampler_names():
        step = space.make_sampler(sampler, rng).step()
        assert step and all(space.parse(space.to_str(a)) == a for a in step)
        rep = space.trained_as(sampler)(arch)
        assert space.canonical(rep) == space.canonical(arch)
    assert space.checkpoint_info() == {"ops": list(space.cell.ops)}
    assert all(e in ESTIMATORS for e in space.vote_experts) and len(space.vote_experts) == 3
    assert all(preset_config(space, p).epochs >= 1 for p in space.presets)
    assert space.truth_candidates()[0] == f"{name}/{name}_truth.csv.gz"


def test_truth_sources_are_recognised_by_path(tmp_path):
    nb201 = get_space("nb201")
    (tmp_path / "simple").mkdir()
    cases = {"simple": "nats-simple", "x.pth": "nb201-pth", "t.csv.gz": "table", "t.csv": "table"}
    for rel, kind in cases.items():
        assert nb201.detect_truth_source(tmp_path / rel).kind == kind
    assert get_space("toy").detect_truth_source(tmp_path / "t.csv").kind == "table"
    with pytest.raises(BadInput, match="not a toy truth source"):
        get_space("toy").detect_truth_source(tmp_path / "simple")
    with pytest.raises(BadInput, match="known: auto, table, nats-simple, nb201-pth"):
        nb201.truth_source("nats")


CELL_USE = re.compile(r"\w\.cell\b(?![\w/])|from estbench\.spaces\.cell\b")  # space.cell, cell-module imports


def test_runners_trainer_and_evaluator_only_call_the_protocol():
    outside = [p for p in PACKAGE.rglob("*.py") if "spaces" not in p.relative_to(PACKAGE).parts]
    bad = [
        f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for p in outside
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if CELL_USE.search(line.split("#")[0])
    ]
    assert not bad, bad


def _cli(runner, *args: str) -> str:
    from estbench.cli import app

    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r.stdout if hasattr(r, "stdout") else r.output


def _rows(runner, store: str, sql: str) -> list[dict]:
    return json.loads(_cli(runner, "sql", sql, "--store", store, "-f", "json") or "[]")


def test_a_new_space_runs_end_to_end_through_the_cli(duo, runner, tmp_path):
    store = str(tmp_path / "duo.duckdb")
    data = write_fake_cifar(tmp_path / "data", n_per_batch=40)
    common = ["--space", "duo", "--store", store, "--data-dir", str(data)]
    assert "duo" in _cli(runner, "list", "spaces")
    _cli(runner, "score", "-e", "params", *common)
    zs = ["--zse", "synflow", "--input", "noise-uniform", "--batch-size", "4", "--batches", "1"]
    _cli(runner, "score", *zs, *common)
    train = ["--preset", "cpu-small", "--train-images", "64", "--batch-size", "32", "--epochs", "1"]
    _cli(runner, "train", "--run", "d1", "--sampler", "deiso", *train, *common)
    _cli(runner, "score", "--ose", "d1", "--batch-size", "16", "--batches", "1", *common)
    rows = _rows(
        runner,
        store,
        "SELECT estimator, count(*) AS n, count(*) FILTER (WHERE status = 'ok') AS ok "
        "FROM scores WHERE space = 'duo' GROUP BY 1 ORDER BY 1",
    )
    assert rows == [{"estimator": e, "n": 4, "ok": 4} for e in ("os_acc", "os_loss", "params", "synflow")]
    archs = _rows(runner, store, "SELECT arch_str FROM archs WHERE space = 'duo' ORDER BY arch_id")
    assert [r["arch_str"] for r in archs] == [f"|{op}~0|" for op in Duo.cell.ops]
