"""Readers while a writer runs, and two writers on one store (issue 8, item 7).

A score run holds the store's file lock only while it writes a chunk, so `criteria` and
`sql` answer while it works; two score runs started together both finish, with exactly
one row per key. Real processes: DuckDB's lock is per process."""

import os
import subprocess
import sys
import time

from estbench.cli import app
from estbench.store import Store

# the paper's nine measures and both vote rules: every kind of pass (data, data-free, derived)
ZSE = ["--zse", "paper", "--zse", "vote_borda", "--input", "noise-uniform"]
ZSE += ["--batch-size", "8", "--batches", "2", "--chunk-size", "1"]


def _score(store, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "estbench", "score", "--space", "toy", "--store", store, *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(store):
    with Store(store, read_only=True) as st:
        return st.query("SELECT count(*) FROM scores")[1][0][0]


def test_readers_answer_while_a_score_run_writes(runner, toy_store):
    seeds = [a for s in range(1, 5) for a in ("--seed", str(s))]
    writer = _score(toy_store, *ZSE, *seeds)
    answered = []
    try:
        start, before = time.monotonic(), _rows(toy_store)
        while _rows(toy_store) == before and time.monotonic() - start < 60:
            time.sleep(0.05)
        while writer.poll() is None and len(answered) < 4:
            for args in (["criteria", "--space", "toy", "-f", "json"], ["sql", "SELECT count(*) AS n FROM scores"]):
                t0 = time.monotonic()
                r = runner.invoke(app, [*args, "--store", toy_store])
                answered.append((args[0], r.exit_code, time.monotonic() - t0, r.output[-200:]))
        still_running = writer.poll() is None
    finally:
        _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert len(answered) >= 2 and still_running or len(answered) >= 4, answered
    assert all(code == 0 for _, code, _, _ in answered), answered
    assert max(t for _, _, t, _ in answered) < 5.0, answered
    with Store(toy_store, read_only=True) as st:
        assert st.query("SELECT count(*) FROM runs WHERE status = 'running'")[1][0][0] == 0


def test_two_score_runs_together_write_one_row_per_key(tmp_path, runner, toy_truth_file):
    store = str(tmp_path / "two.duckdb")
    r = runner.invoke(app, ["truth", "load", "--space", "toy", "--file", str(toy_truth_file), "--store", store])
    assert r.exit_code == 0, r.output
    args = ["-e", "params", "-e", "flops", *ZSE, "--seed", "3", "--seed", "4"]
    first, second = _score(store, *args), _score(store, *args)
    for p in (first, second):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    with Store(store, read_only=True) as st:
        total, distinct = st.query(
            "SELECT count(*), count(DISTINCT (space, arch_id, estimator, config_hash, epoch, seed, batch)) FROM scores"
        )[1][0]
        assert total == distinct
        # 27 archs: params + flops; per seed every data measure x 2 batches, the data-free
        # and all-batches ones x 1 (the derived ones are ranks over the population)
        from estbench.estimators import ESTIMATORS
        from estbench.estimators.zeroshot import PAPER_MEASURES

        metas = [ESTIMATORS.meta(n) for n in PAPER_MEASURES]
        per_seed = sum(1 if m["data_free"] or m["all_batches"] else 2 for m in metas)
        total = st.query("SELECT count(*) FROM scores WHERE estimator NOT IN ('vote', 'vote_borda')")[1][0][0]
        assert total == 27 * 2 + 27 * 2 * per_seed
        # vote: every (arch, seed) whose three experts all have a finite value
        complete = st.query(
            "SELECT count(*) FROM (SELECT arch_id, seed FROM score_mean WHERE estimator IN "
            "('relu_logdet', 'jacob_cov', 'synflow') AND isfinite(value) GROUP BY ALL HAVING count(*) = 3)"
        )[1][0][0]
        for vote in ("vote", "vote_borda"):
            assert 0 < complete == st.query(f"SELECT count(*) FROM scores WHERE estimator = '{vote}'")[1][0][0]
        assert st.query("SELECT count(*) FROM runs WHERE status <> 'done'")[1][0][0] == 0
