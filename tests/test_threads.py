"""CPU threads (issue 9, item 1): the default share of the cores, ``--threads N`` reaching
torch and the run rows of ``score`` and ``train``, and a rerun with another thread count
made visible (a warning line, the threads column of criteria / report)."""

import json
import subprocess
import sys

import pytest
import torch
from tests_support import write_fake_cifar

from estbench import threads as policy
from estbench.cli import app
from estbench.store.store import Store

ZSE = ["--zse", "snip", "--input", "noise-uniform", "--batch-size", "4", "--batches", "1"]
TRAIN = ["--preset", "cpu-small", "--train-images", "64", "--batch-size", "32", "--epochs", "1"]


@pytest.fixture(autouse=True)
def _keep_torch_threads(monkeypatch):
    """--threads sets torch's process-wide count: put it back for the next tests. Runs
    without --threads (the toy store's) use OMP_NUM_THREADS: 1 here, whatever the load."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _run_threads(store: str) -> list[tuple]:
    with Store(store, read_only=True) as st:
        return st.query("SELECT kind, name, threads, pid IS NOT NULL FROM runs ORDER BY started_at")[1]


def test_free_cores_rule():
    assert policy.free_cores(2, 0.02) == 2  # idle
    assert policy.free_cores(2, 1.0) == 1  # one busy core: 2 threads would be 10x slower
    assert policy.free_cores(2, 0.75) == 1  # a core 75% busy is not free
    assert policy.free_cores(2, 0.6) == 1
    assert policy.free_cores(2, 0.2) == 2  # a core 80% idle is
    assert policy.free_cores(2, 5.0) == 1  # never fewer than one
    assert policy.free_cores(16, 0.0, quota=4) == 4  # a cgroup CPU limit caps it
    assert policy.free_cores(16, 13.0, quota=4) == 3


def test_default_threads_env_then_free_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert policy.default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(policy, "allowed_cpus", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(policy, "cpu_quota", lambda: None)
    monkeypatch.setattr(policy, "busy_cores", lambda cpus: 1.8)
    assert policy.default_threads() == 2
    monkeypatch.setattr(policy, "busy_cores", lambda cpus: 0.1)
    assert policy.default_threads() == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_busy_cores_sees_a_busy_process():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)  # running, not starting
        assert policy.busy_cores(policy.allowed_cpus()) >= 0.8
    finally:
        busy.kill()
        busy.wait()


def test_bad_threads_is_one_line(runner, tmp_path):
    r = runner.invoke(
        app, ["score", "--space", "toy", "-e", "params", "--threads", "0", "--store", str(tmp_path / "s")]
    )
    assert r.exit_code == 2 and r.output.strip() == "error: --threads 0: must be at least 1", r.output
    assert not (tmp_path / "s").exists()


def test_score_threads_reach_torch_and_the_run_row(runner, toy_store, monkeypatch):
    from estbench.runs import zeroshot

    seen = []
    compute = zeroshot.ZeroShotJob.compute

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())  # what torch uses while it scores
        return compute(self, *args, **kwargs)

    monkeypatch.setattr(zeroshot.ZeroShotJob, "compute", spy)
    torch.set_num_threads(1)
    r = runner.invoke(app, ["score", "--space", "toy", *ZSE, "--archs", "0:3", "--threads", "2", "--store", toy_store])
    assert r.exit_code == 0, r.output
    assert seen and set(seen) == {2}
    assert _run_threads(toy_store)[-1] == ("score", "snip", 2, True)


def test_train_threads_reach_the_run_row(runner, tmp_path, toy_truth_file):
    data = write_fake_cifar(tmp_path / "data", n_per_batch=40)
    store = str(tmp_path / "os.duckdb")
    common = ["--store", store, "--data-dir", str(data)]
    r = runner.invoke(app, ["train", "--space", "toy", "--run", "t2", *TRAIN, "--threads", "2", *common])
    assert r.exit_code == 0, r.output
    assert torch.get_num_threads() == 2
    assert _run_threads(store) == [("train", "t2", 2, True)]
    # a resume with another count: said before it trains, and the row shows the new count
    r = runner.invoke(
        app, ["train", "--space", "toy", "--run", "t2", *TRAIN[:-1], "2", "--resume", "--threads", "1", *common]
    )
    assert r.exit_code == 0, r.output
    assert "was trained with 2 threads, this session uses 1" in r.output
    assert _run_threads(store) == [("train", "t2", 1, True)]


def test_rerun_with_other_threads_warns_and_shows(runner, toy_store):
    def score(*args):
        r = runner.invoke(app, ["score", "--space", "toy", *args, "--store", toy_store])
        assert r.exit_code == 0, r.output
        return r.output

    out = score(*ZSE, "--archs", "0:5", "--threads", "1")
    out += score(*ZSE, "--archs", "0:10", "--threads", "1")  # same count: silent
    assert "warning" not in out
    out = score(*ZSE, "--threads", "2")
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert (
        len(warnings) == 1 and "snip rows" in warnings[0] and "written with 1 threads, this run uses 2" in warnings[0]
    )
    assert "--threads 1 matches them" in warnings[0]
    assert "warning" not in score("-e", "params", "--threads", "2")  # exact counts: no thread effect
    assert "warning" not in score(*ZSE, "--threads", "1")  # nothing left to compute: nothing mixed

    r = runner.invoke(app, ["criteria", "--space", "toy", "--store", toy_store, "-f", "json"])
    threads = {row["estimator"]: row["threads"] for row in json.loads(r.output)}
    assert threads == {"snip": "1,2", "params": "1", "flops": "1", "relu": "1"}, threads
    r = runner.invoke(app, ["report", "--space", "toy", "--store", toy_store])
    header = next(line for line in r.output.splitlines() if "estimator" in line)
    assert "threads" in header
    assert any("snip" in line and "1,2" in line for line in r.output.splitlines())
