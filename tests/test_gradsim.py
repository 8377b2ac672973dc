"""Gradient similarity (paper A.3.1, Fig. A15): `estbench score --ose RUN --gradsim P`
on a toy supernet trained in the test, checked against a direct autograd computation,
and `estbench variance gradsim` checked against direct numpy on a synthetic store."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from tests_support import one_line_error, write_fake_cifar

from estbench.cli import app
from estbench.store.gradsim import GradsimRow
from estbench.store.store import Store

TRAIN = ["--preset", "cpu-small", "--train-images", "64", "--batch-size", "32", "--checkpoint-every", "1"]
TRAIN += ["--channels", "4", "--cells", "1"]  # one cell per stage: the layers below
TOY_LAYERS = ["stem", "S1C0", "S2R", "S2C1", "S3R", "S3C2", "classifier"]  # toy: n = 1 cell per stage
# the toy supernet's parameter prefixes -> layer, written out by hand (not by the code under test)
TOY_PREFIX = {
    "stem.": "stem", "cells.0.": "S1C0", "cells.1.": "S2R", "cells.2.": "S2C1", "cells.3.": "S3R",
    "cells.4.": "S3C2", "lastact.": "classifier", "classifier.": "classifier",
}  # fmt: skip


def run(runner, *args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_truth_file_module):
    """A toy store with a 2-epoch supernet run u1 (checkpoints at 1 and 2)."""
    from typer.testing import CliRunner

    tmp = tmp_path_factory.mktemp("gradsim")
    data = write_fake_cifar(tmp / "data", n_per_batch=40)
    store = str(tmp / "gs.duckdb")
    common = ["--store", store, "--data-dir", str(data)]
    runner = CliRunner()
    r = run(runner, "truth", "load", "--space", "toy", "--file", toy_truth_file_module, "--store", store)
    assert r.exit_code == 0, r.output
    r = run(runner, "train", "--space", "toy", "--run", "u1", "--epochs", "2", *TRAIN, *common)
    assert r.exit_code == 0, r.output
    return store, common, data


@pytest.fixture(scope="module")
def toy_truth_file_module(tmp_path_factory):
    import csv

    from conftest import synthetic_truth

    from estbench.spaces import get_space

    path = tmp_path_factory.mktemp("truth") / "toy_truth.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "arch_str", "cifar10_test", "cifar10_valid_valid"])
        w.writerows(synthetic_truth(get_space("toy")))
    return str(path)


@pytest.fixture
def scored(trained, tmp_path):
    """A copy of the trained store with 6 pairs scored at epochs 1 and 2 (batch 32)."""
    import shutil

    store, common, data = trained
    copy = str(tmp_path / "scored.duckdb")
    shutil.copy(store, copy)
    common = ["--store", copy, "--data-dir", str(data)]
    r = run(_runner(), "score", "--space", "toy", "--ose", "u1", "--epoch", 1, "--epoch", 2, "--gradsim", 6,
            "--batch-size", 32, *common)  # fmt: skip
    assert r.exit_code == 0, r.output
    return copy, common


def _runner():
    from typer.testing import CliRunner

    return CliRunner()


def _rows(store: str, sql: str = "SELECT * FROM gradsim ORDER BY epoch, pair, layer") -> list[tuple]:
    with Store(store, read_only=True) as st:
        return st.query(sql)[1]


# ---- direct computation (independent of estbench.estimators.oneshot.gradsim) -----------
def _direct_cosines(store: str, data, epoch: int, arch_a: int, arch_b: int) -> dict[str, float | None]:
    """Autograd on the checkpoint's supernet with each arch (.backward(), BN modules in
    train mode, dropout off), then the per-layer cosine over the parameters both
    architectures gave a gradient to, by hand in numpy."""
    import torch
    import torch.nn.functional as F

    from estbench.data.cifar10 import fixed_batches, load_cifar10
    from estbench.data.lookup import DataDir
    from estbench.estimators.oneshot.train import TrainConfig, split_indices
    from estbench.spaces import get_space

    space = get_space("toy")
    with Store(store, read_only=True) as st:
        cfg = dict(st.train_run("toy", "u1")["config"])
        strs = st.arch_strings("toy")
    run_dir = cfg.pop("run_dir")
    tcfg = TrainConfig.from_dict(cfg)
    state = torch.load(f"{run_dir}/epoch_{epoch:05d}.pt", map_location="cpu", weights_only=True)
    model = space.supernet(**space.supernet_settings(state["model"]))
    model.load_state_dict(state["model"])
    images = load_cifar10(DataDir(str(data)), "train")
    x, y = fixed_batches(images, 32, 1, seed=0, indices=split_indices(tcfg, len(images))[0])[0]
    grads = []
    for arch_id in (arch_a, arch_b):
        model.eval()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.train()  # batch statistics (the running ones change too, on this private copy)
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, space.parse(strs[arch_id])), y).backward()
        grads.append(
            {n: p.grad.detach().double().numpy().ravel() for n, p in model.named_parameters() if p.grad is not None}
        )
    out: dict[str, float | None] = {}
    for layer in TOY_LAYERS:
        names = [n for n, _ in model.named_parameters() if TOY_PREFIX[_prefix(n)] == layer]
        shared = [n for n in names if n in grads[0] and n in grads[1]]
        if not shared:
            out[layer] = None
            continue
        a = np.concatenate([grads[0][n] for n in shared])
        b = np.concatenate([grads[1][n] for n in shared])
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        out[layer] = None if na == 0 or nb == 0 else float(a @ b / (na * nb))
    return out


def _prefix(name: str) -> str:
    return next(p for p in TOY_PREFIX if name.startswith(p))


# ---- score --gradsim ---------------------------------------------------------------------
def test_rows_per_pair_and_layer_match_direct_autograd(scored, trained):
    store, _ = scored
    rows = _rows(store)
    assert len(rows) == 2 * 6 * len(TOY_LAYERS)  # epochs x pairs x layers
    by_epoch = {}
    for space, run_name, epoch, _chash, pair, a, b, layer, cos in rows:
        assert (space, run_name) == ("toy", "u1") and a != b
        assert cos is None or -1.0 <= cos <= 1.0
        by_epoch.setdefault(epoch, {}).setdefault(pair, {})[layer] = (a, b, cos)
    assert sorted(by_epoch) == [1, 2]
    for pairs in by_epoch.values():
        assert sorted(pairs) == list(range(6))
        assert all(sorted(p) == sorted(TOY_LAYERS) for p in pairs.values())
    # the same pairs at both checkpoints
    assert {p: v["stem"][:2] for p, v in by_epoch[1].items()} == {p: v["stem"][:2] for p, v in by_epoch[2].items()}
    compared_cells = 0
    for epoch, pairs in by_epoch.items():
        for pair, layers in pairs.items():
            a, b, _ = layers["stem"]
            direct = _direct_cosines(store, trained[2], epoch, a, b)
            for layer, want in direct.items():
                got = layers[layer][2]
                if want is None:
                    assert got is None, (epoch, pair, layer, got)
                else:
                    assert got is not None and got == pytest.approx(want, abs=1e-5), (epoch, pair, layer)
                    compared_cells += layer.startswith("S") and "C" in layer
    assert compared_cells > 0  # some pair shares a used conv in a cell: the restriction was exercised
    with Store(store, read_only=True) as st:
        runs = st.query("SELECT name, status, n_written FROM runs WHERE kind = 'score'")[1]
        label = st.query("SELECT estimator, label FROM configs WHERE estimator = 'gradsim'")[1]
    assert runs == [("u1:gradsim", "done", len(rows))]
    assert label == [("gradsim", "u1 P=6 bs=32 seed=20 data@0")]
    assert not _rows(store, "SELECT * FROM scores WHERE estimator IN ('os_acc', 'os_loss')")  # only gradsim


def test_identical_archs_give_one_on_every_used_layer(trained):
    import torch

    from estbench.data.cifar10 import fixed_batches, load_cifar10
    from estbench.data.lookup import DataDir
    from estbench.estimators.oneshot.evaluate import model_from_checkpoint
    from estbench.estimators.oneshot.gradsim import gradient_similarity
    from estbench.spaces import get_space

    store, _, data = trained
    space = get_space("toy")
    with Store(store, read_only=True) as st:
        run_dir = st.train_run("toy", "u1")["config"]["run_dir"]
    model = model_from_checkpoint(f"{run_dir}/epoch_00002.pt", space)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = space.supernet_layers(model)
    assert list(layers) == TOY_LAYERS  # network order, the analysis's order too
    x, y = fixed_batches(load_cifar10(DataDir(str(data)), "train"), 16, 1)[0]
    convs, skip, dead = ("nor_conv_3x3",) * 3, ("skip_connect",) * 3, ("none",) * 3
    out = {
        p: cos for p, cos, _ in gradient_similarity(model, [(convs, convs), (skip, skip), (dead, dead)], (x, y), layers)
    }
    assert all(out[0][layer] == pytest.approx(1.0, abs=1e-12) for layer in TOY_LAYERS)
    # skip cells use no cell parameter; a degenerate arch uses the classifier only
    assert {k for k, v in out[1].items() if v is None} == {"S1C0", "S2C1", "S3C2"}
    assert out[1]["stem"] == pytest.approx(1.0, abs=1e-12)
    assert {k: v for k, v in out[2].items() if v is not None} == {"classifier": pytest.approx(1.0, abs=1e-12)}
    after = model.state_dict()  # the model is left as it was: weights and BN statistics
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_rerun_is_idempotent_and_resumes_missing_pairs(scored):
    store, common = scored
    before = _rows(store)
    args = ["score", "--space", "toy", "--ose", "u1", "--epoch", 1, "--epoch", 2, "--gradsim", 6, "--batch-size", 32]
    r = run(_runner(), *args, *common)
    assert r.exit_code == 0, r.output
    assert "gradsim [" in r.output and "12 requested, 12 cached, 0 computed" in r.output
    assert _rows(store) == before
    with Store(store) as st:
        st.query("DELETE FROM gradsim WHERE epoch = 2 AND pair >= 4")
    r = run(_runner(), *args, *common)
    assert "12 requested, 10 cached, 2 computed" in r.output
    assert _rows(store) == before  # the same pairs, the same values
    with Store(store, read_only=True) as st:
        runs = st.query("SELECT status, n_written FROM runs WHERE kind = 'score' ORDER BY started_at")[1]
    assert runs == [("done", len(before)), ("done", 2 * len(TOY_LAYERS))]  # the no-op rerun recorded no run
    # other settings are kept apart: another P, another seed
    r = run(_runner(), "score", "--space", "toy", "--ose", "u1", "--epoch", 1, "--gradsim", 3, "--batch-size", 32,
            "--seed", 20, "--seed", 7, *common)  # fmt: skip
    assert r.exit_code == 0, r.output
    counts = _rows(store, "SELECT config_hash, epoch, count(DISTINCT pair) FROM gradsim GROUP BY ALL ORDER BY 3, 2")
    assert sorted(c[2] for c in counts) == [3, 3, 6, 6] and len({c[0] for c in counts}) == 3
    # pair i depends only on the seed and i: P=3 draws the first three pairs of P=6
    first = _rows(store, "SELECT pair, arch_a, arch_b, config_hash FROM gradsim WHERE layer = 'stem' AND epoch = 1")
    six = {p: (a, b) for p, a, b, h in first if h == before[0][3]}
    threes = {}
    for p, a, b, h in first:
        if h != before[0][3]:
            threes.setdefault(h, {})[p] = (a, b)
    assert any(t == {p: six[p] for p in range(3)} for t in threes.values())


def test_score_gradsim_bad_input(trained, tmp_path):
    store, common, _ = trained
    base = ["score", "--space", "toy", *common]
    cases = [
        ([*base, "--ose", "u1", "--gradsim", 0], "at least 1"),
        ([*base, "--gradsim", 3], "needs --ose RUN"),
        ([*base, "--ose", "nope", "--gradsim", 3], "no one-shot run 'nope'"),
        ([*base, "--ose", "u1", "--gradsim", 3, "--epoch", 7], "no checkpoint at epoch 7; saved epochs: 1, 2"),
        ([*base, "--ose", "u1", "--gradsim", 3, "--archs", "0:5"], "--archs does not apply"),
        ([*base, "--ose", "u1", "--gradsim", 3, "--ensemble", 2], "--ensemble does not apply"),
        ([*base, "--ose", "u1", "--gradsim", 3, "--bn", "recalibrate"], "--bn train"),
    ]
    for args, text in cases:
        line = one_line_error(run(_runner(), *args))
        assert text in line, line
    assert not _rows(store, "SELECT * FROM gradsim")


def test_draw_pairs_uniform_and_distinct():
    from estbench.runs.gradsim import draw_pairs

    pool = np.array([3, 5, 8, 13])
    pairs = draw_pairs(pool, 12000, seed=1)
    assert np.all(pairs[:, 0] != pairs[:, 1]) and set(np.unique(pairs)) == set(pool.tolist())
    counts = {}
    for a, b in pairs.tolist():
        counts[(a, b)] = counts.get((a, b), 0) + 1
    assert len(counts) == 12 and max(counts.values()) < 1.2 * 1000 and min(counts.values()) > 0.8 * 1000
    assert np.array_equal(draw_pairs(pool, 5, seed=1), pairs[:5])


def test_trained_pool_follows_the_sampler():
    from estbench.runs.gradsim import trained_pool
    from estbench.runs.selection import ensure_archs
    from estbench.spaces import get_space
    from estbench.spaces.cell.samplers import iso_representatives

    space = get_space("toy")
    st = Store(":memory:")
    ensure_archs(st, space, None)
    assert trained_pool(st, space, "uniform").tolist() == list(range(27))
    reps = trained_pool(st, space, "deiso")
    strs = st.arch_strings("toy")
    assert sorted(space.parse(strs[i]) for i in reps) == sorted(iso_representatives(space.cell))


# ---- variance gradsim --------------------------------------------------------------------
LAYERS = ["S3C2", "classifier", "S2R", "stem", "S1C0", "S2C1", "S3R"]  # stored in no particular order


@pytest.fixture
def syn(tmp_path):
    """A synthetic store: runs a (2 configs) and b, epochs 5/10/15, NULLs included."""
    rng = np.random.default_rng(0)
    path = str(tmp_path / "syn.duckdb")
    rows = []
    with Store(path) as st:
        run_id = st.start_run("score", "toy", "synthetic", {})
        st.put_config("h1", "gradsim", {"pairs": 8}, "a P=8")
        st.put_config("h2", "gradsim", {"pairs": 5}, "a P=5")
        for run_name, chash, n_pairs, epochs in [
            ("a", "h1", 8, (5, 10, 15)),
            ("a", "h2", 5, (10,)),
            ("b", "h1", 8, (5, 15)),
        ]:
            for epoch in epochs:
                for pair in range(n_pairs):
                    for layer in LAYERS:
                        cos = None if rng.random() < 0.25 else float(np.clip(rng.normal(epoch / 30, 0.4), -1, 1))
                        rows.append(GradsimRow("toy", run_name, epoch, chash, pair, pair, pair + 1, layer, cos))
        rows.append(GradsimRow("toy", "a", 5, "h1", 99, 0, 1, "S2C1", None))  # a layer with one pair, NULL
        st.put_gradsim(run_id, rows)
        st.finish_run(run_id, "done")
    return path, rows


def _direct_stats(values: list) -> dict:
    v = np.array([x for x in values if x is not None], dtype=float)
    out = {"pairs": len(v), "null": len(values) - len(v)}
    if not len(v):
        return {**out, "mean": None, "std": None, "q10": None, "q50": None, "q90": None, "min": None, "max": None}
    return {
        **out, "mean": v.mean(), "std": v.std(ddof=1) if len(v) > 1 else None,
        "q10": np.percentile(v, 10), "q50": np.median(v), "q90": np.percentile(v, 90), "min": v.min(), "max": v.max(),
    }  # fmt: skip


def _close(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, abs_tol=1e-12))


def test_summary_matches_direct_numpy(syn, runner):
    path, rows = syn
    r = run(runner, "variance", "gradsim", "--space", "toy", "--store", path, "-f", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    groups: dict[tuple, list] = {}
    for row in rows:
        groups.setdefault((row.run_name, row.config_hash, row.epoch, row.layer), []).append(row.cosine)
        groups.setdefault((row.run_name, row.config_hash, row.epoch, "all"), []).append(row.cosine)
    assert len(out) == len(groups)
    order = ["stem", "S1C0", "S2R", "S2C1", "S3R", "S3C2", "classifier", "all"]
    for d in out:
        want = _direct_stats(groups[(d["run"], d["config_hash"], d["epoch"], d["layer"])])
        for k, v in want.items():
            assert _close(d[k], v), (d, k, v)
    seen = [(d["run"], d["config_hash"], d["epoch"]) for d in out]
    assert seen == sorted(seen)
    for key in set(seen):
        assert [d["layer"] for d in out if (d["run"], d["config_hash"], d["epoch"]) == key] == order
    assert {d["label"] for d in out if d["config_hash"] == "h2"} == {"a P=5"}
    # filters
    r = run(runner, "variance", "gradsim", "--space", "toy", "--store", path, "-f", "json", "--run", "b", "--epoch", 15)
    assert {(d["run"], d["epoch"]) for d in json.loads(r.output)} == {("b", 15)}
    # the table names the config only where a run has several
    r = run(runner, "variance", "gradsim", "--space", "toy", "--store", path, "--run", "b")
    assert r.exit_code == 0 and "P=8" not in r.output


def test_trend_matches_direct_numpy(syn, runner):
    path, rows = syn
    r = run(runner, "variance", "gradsim", "--space", "toy", "--store", path, "--show", "trend", "-f", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    means: dict[tuple, dict] = {}
    for row in rows:
        for layer in (row.layer, "all"):
            means.setdefault((row.run_name, row.config_hash, layer), {}).setdefault(row.epoch, []).append(row.cosine)
    assert len(out) == len(means)
    for d in out:
        per_epoch = means[(d["run"], d["config_hash"], d["layer"])]
        direct = {e: _direct_stats(v)["mean"] for e, v in per_epoch.items()}
        for e in (5, 10, 15):
            assert _close(d[f"ep{e}"], direct.get(e)), (d, e)
        present = [direct[e] for e in sorted(direct) if direct[e] is not None]
        assert _close(d["change"], present[-1] - present[0] if len(present) > 1 else None)
    layers = [d["layer"] for d in out if (d["run"], d["config_hash"]) == ("a", "h1")]
    assert layers == ["stem", "S1C0", "S2R", "S2C1", "S3R", "S3C2", "classifier", "all"]


def test_variance_gradsim_bad_input(syn, runner, tmp_path):
    path, _ = syn
    empty = str(tmp_path / "empty.duckdb")
    Store(empty).close()
    cases = [
        (["--store", empty], "no gradient-similarity rows for toy"),
        (["--store", path, "--run", "zz"], "no gradient-similarity rows for run 'zz'"),
        (["--store", path, "--run", "b", "--epoch", 10], "run 'b' has no gradient-similarity rows at epoch 10"),
        (["--store", path, "--epoch", 20], "no gradient-similarity rows at epoch 20"),
        (["--store", path, "--show", "nope"], "--show 'nope'"),
    ]
    for args, text in cases:
        line = one_line_error(run(runner, "variance", "gradsim", "--space", "toy", *args))
        assert text in line, line


def test_variance_gradsim_imports_no_torch(syn):
    import subprocess
    import sys

    path, _ = syn
    code = (
        "import sys; from typer.testing import CliRunner; from estbench.cli import app\n"
        "for show in ('summary', 'trend'):\n"
        f"    r = CliRunner().invoke(app, ['variance', 'gradsim', '--space', 'toy', '--store', {path!r}, '--show', show])\n"
        "    assert r.exit_code == 0, r.output\n"
        "import estbench.analysis.gradsim, estbench.store.gradsim, estbench.runs.gradsim\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr + p.stdout
