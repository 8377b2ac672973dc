"""Zero-shot scoring runs through the CLI on the toy space (noise inputs, or a tiny
CIFAR-10 fixture in the official python format)."""

import json

import numpy as np
import pytest
from tests_support import write_fake_cifar

from estbench.cli import app
from estbench.store.store import Store

NOISE = ["--input", "noise-gaussian", "--batch-size", "8", "--batches", "2"]


def score(runner, store, *args):
    return runner.invoke(app, ["score", "--space", "toy", "--store", store, *NOISE, *args])


def values(store, sql="SELECT estimator, arch_id, seed, batch, value, status FROM scores ORDER BY ALL"):
    with Store(store, read_only=True) as st:
        return st.query(sql)[1]


def test_suite_per_batch_rows_and_statuses(runner, tmp_path):
    store = str(tmp_path / "z.duckdb")
    r = score(runner, store, "--zse", "all", "--seed", "1", "--seed", "2")
    assert r.exit_code == 0, r.output
    rows = values(
        store,
        "SELECT estimator, count(*), count(DISTINCT batch), count(DISTINCT seed) FROM scores GROUP BY 1 ORDER BY 1",
    )
    counts = {r[0]: r[1:] for r in rows}
    assert counts["snip"] == (27 * 2 * 2, 2, 2)
    assert counts["synflow"] == (27 * 2, 1, 2)  # data-free: batch 0 only
    # both vote rules, over the same (arch, seed) pairs: one row each
    assert counts["vote"] == counts["vote_borda"] and counts["vote"][1:] == (1, 2)
    pairs = values(
        store,
        "SELECT estimator, list(DISTINCT (arch_id, seed) ORDER BY (arch_id, seed)) FROM scores "
        "WHERE estimator LIKE 'vote%' GROUP BY 1 ORDER BY 1",
    )
    assert [p[0] for p in pairs] == ["vote", "vote_borda"] and pairs[0][1] == pairs[1][1]
    # degenerate archs give non-finite jacob_cov: stored with a status, never a sentinel
    bad = values(store, "SELECT count(*) FROM scores WHERE status = 'nonfinite' AND estimator = 'jacob_cov'")[0][0]
    assert bad > 0
    assert values(store, "SELECT count(*) FROM scores WHERE status = 'ok' AND NOT isfinite(value)")[0][0] == 0
    # every row carries the wall time of its pass
    derived = "('vote', 'vote_borda', 'az_nas', 'vkdnw_agg', 'tenas')"  # computed from stored scores
    assert values(store, f"SELECT min(elapsed_s) FROM scores WHERE estimator NOT IN {derived}")[0][0] > 0
    # the newer proxies: zico once per (arch, seed) over both batches; the aggregates of every arch
    assert counts["zico"] == (27 * 2, 1, 2) and counts["az_nas"] == counts["tenas"] == (27 * 2, 1, 2)
    r = runner.invoke(app, ["criteria", "--space", "toy", "--truth", "cifar10-test", "--store", store])
    assert r.exit_code == 2 and "no truth loaded" in r.output


def test_deterministic_for_a_seed(runner, tmp_path):
    a, b = str(tmp_path / "a.duckdb"), str(tmp_path / "b.duckdb")
    for s in (a, b):
        assert (
            score(runner, s, "--zse", "snip", "--zse", "relu_logdet", "--zse", "synflow", "--seed", "7").exit_code == 0
        )
    assert values(a) == values(b)
    c = str(tmp_path / "c.duckdb")
    score(runner, c, "--zse", "snip", "--seed", "8")
    snip_a = [r for r in values(a) if r[0] == "snip"]
    assert snip_a != values(c)


def test_more_batches_extend_the_cache(runner, tmp_path):
    store = str(tmp_path / "z.duckdb")
    args = ["--input", "noise-uniform", "--batch-size", "8", "--zse", "grad_norm", "--seed", "3"]
    r = runner.invoke(app, ["score", "--space", "toy", "--store", store, "--batches", "1", *args])
    assert r.exit_code == 0, r.output
    first = values(store)
    r = runner.invoke(app, ["score", "--space", "toy", "--store", store, "--batches", "3", *args])
    assert "27 requested, 0 cached, 27 computed" in r.output
    after = values(store)
    assert len(after) == 27 * 3 and set(first) <= set(after)
    r = runner.invoke(app, ["score", "--space", "toy", "--store", store, "--batches", "3", *args])
    assert "27 cached, 0 computed" in r.output


def test_vote_is_pairwise_majority_and_vote_borda_mean_percent_rank(runner, tmp_path):
    store = str(tmp_path / "z.duckdb")
    experts = ["--zse", "snip", "--zse", "synflow", "--vote-experts", "snip,synflow", "--seed", "1"]
    r = score(runner, store, "--zse", "vote", "--zse", "vote_borda", *experts)
    assert r.exit_code == 0, r.output
    assert "vote [" in r.output and "vote_borda [" in r.output
    rows = values(
        store,
        "SELECT estimator, arch_id, value FROM score_mean WHERE estimator IN ('snip', 'synflow', 'vote', 'vote_borda') "
        "AND value IS NOT NULL",
    )
    by = {}
    for e, a, v in rows:
        by.setdefault(e, {})[a] = v
    common = sorted(set(by["snip"]) & set(by["synflow"]))
    assert sorted(by["vote"]) == sorted(by["vote_borda"]) == common
    snip, synflow = (np.array([by[e][a] for a in common]) for e in ("snip", "synflow"))

    def pct(v):
        ranks = np.array([np.sum(v < x) for x in v])  # percent_rank: (rank - 1) / (n - 1), ties share
        return ranks / (len(v) - 1)

    expected = (pct(snip) + pct(synflow)) / 2
    assert np.allclose([by["vote_borda"][a] for a in common], expected)
    # two experts: a beats b only when both prefer a, or one does and the other has a tie
    margin = np.sign(snip[:, None] - snip[None, :]) + np.sign(synflow[:, None] - synflow[None, :])
    assert [by["vote"][a] for a in common] == (margin > 0).sum(axis=1).tolist()


def test_vote_without_expert_scores(runner, tmp_path):
    for name in ("vote", "vote_borda"):
        r = score(runner, str(tmp_path / "z.duckdb"), "--zse", name)
        assert r.exit_code == 2 and "vote needs scores of all its experts" in r.output


def test_failed_measure_is_recorded_and_others_continue(runner, tmp_path, monkeypatch):
    from estbench.estimators import ESTIMATORS
    from estbench.estimators.zeroshot import Measure

    def boom(*a, **k):
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr(ESTIMATORS.entry("snip"), "target", Measure("snip", "ce_backward", boom))
    store = str(tmp_path / "z.duckdb")
    r = score(runner, store, "--zse", "snip", "--zse", "grad_norm", "--seed", "1")
    assert r.exit_code == 0 and "snip" in r.output
    rows = values(store, "SELECT estimator, status, count(*), any_value(detail) FROM scores GROUP BY 1, 2 ORDER BY 1")
    assert ("grad_norm", "ok", 54, None) in rows
    assert ("snip", "failed", 54, "RuntimeError: synthetic failure") in rows


@pytest.mark.parametrize(
    "args, message",
    [
        (["--zse", "synflw"], "Did you mean synflow"),
        (["--zse", "params"], "not a zero-shot estimator"),
        (["--zse", "snip", "--device", "cuda"], "no CUDA device is available"),
        (["--zse", "snip", "--device", "tpu"], "unknown --device"),
        (["--zse", "snip", "--input", "imagenet"], "unknown --input"),
        (["--zse", "snip", "--batch-size", "1"], "--batch-size must be >= 2"),
    ],
)
def test_bad_zero_shot_input(runner, tmp_path, args, message):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    r = runner.invoke(app, ["score", "--space", "toy", "--store", str(tmp_path / "z.duckdb"), *args])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_cifar_input_records_source(runner, tmp_path):
    data = write_fake_cifar(tmp_path / "data")
    store = str(tmp_path / "z.duckdb")
    r = runner.invoke(
        app,
        [
            "score",
            "--space",
            "toy",
            "--store",
            store,
            "--data-dir",
            str(data),
            "--zse",
            "snip",
            "--batch-size",
            "8",
            "--batches",
            "2",
            "--seed",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    cfg = json.loads(values(store, "SELECT config FROM configs WHERE estimator = 'snip'")[0][0])
    assert cfg["input"].startswith("cifar10-train[cifar-10-batches-py]") and cfg["batch_size"] == 8


def test_missing_cifar_is_one_line(runner, tmp_path, monkeypatch):
    import estbench.data.lookup as lookup

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lookup, "_PROJECT_ROOT", tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(
        app,
        ["score", "--space", "toy", "--store", str(tmp_path / "z.duckdb"), "--data-dir", str(empty), "--zse", "snip"],
    )
    assert r.exit_code == 2
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "cifar-10-batches-py" in lines[0]


def test_supernet_init_weights(runner, tmp_path):
    """Candidates of one random supernet per seed: own config, deterministic, not the fresh values."""
    a, b = str(tmp_path / "a.duckdb"), str(tmp_path / "b.duckdb")
    for s in (a, b):
        r = score(
            runner,
            s,
            "--zse",
            "snip",
            "--zse",
            "synflow",
            "--zse",
            "jacob_cov",
            "--weights",
            "supernet-init",
            "--seed",
            "4",
        )
        assert r.exit_code == 0, r.output
    assert values(a) == values(b)
    score(runner, a, "--zse", "snip", "--seed", "4")
    rows = values(a, "SELECT estimator, count(DISTINCT config_hash) FROM scores GROUP BY 1 ORDER BY 1")
    assert ("snip", 2) in rows
    cfgs = [json.loads(r[0])["init"] for r in values(a, "SELECT config FROM configs WHERE estimator = 'snip'")]
    assert sorted(cfgs) == ["fresh", "supernet-init"]
    r = score(runner, a, "--zse", "snip", "--weights", "pretrained")
    assert r.exit_code == 2 and "unknown --weights" in r.output


def test_zse_paper_scores_the_papers_nine_measures_and_vote(runner, tmp_path):
    from estbench.estimators.zeroshot import PAPER_MEASURES

    store = str(tmp_path / "p.duckdb")
    r = score(runner, store, "--zse", "paper", "--archs", "0:6", "--seed", "1")
    assert r.exit_code == 0, r.output
    names = {e for (e,) in values(store, "SELECT DISTINCT estimator FROM scores")}
    assert names == {*PAPER_MEASURES, "vote"} and len(PAPER_MEASURES) == 9
