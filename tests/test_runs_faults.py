"""Run bookkeeping under faults (issue 9, items 2, 3 and 7): SIGTERM handled like Ctrl-C,
run rows that tell the truth after kill -9 (n_written kept while running, stale runs
marked interrupted by the next writer), a resume after a kill before the first
checkpoint restarts cleanly, a run trains in one process at a time, and a refused or
failed `train` leaves the store as it was. Real processes where a kill is the case."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from tests_support import write_fake_cifar

from estbench.cli import app
from estbench.store import Store

ZSE = ["--zse", "grad_norm", "--zse", "snip", "--zse", "synflow", "--input", "noise-uniform"]
ZSE += ["--batch-size", "8", "--batches", "2", "--chunk-size", "1"]
SEEDS = [a for s in range(1, 5) for a in ("--seed", str(s))]
TRAIN = ["--preset", "cpu-small", "--train-images", "64", "--batch-size", "32", "--checkpoint-every", "1"]
RUNS = "SELECT run_id, kind, status, n_written, (SELECT count(*) FROM scores s WHERE s.run_id = r.run_id) FROM runs r"


@pytest.fixture
def env(tmp_path, runner, toy_truth_file):
    data = write_fake_cifar(tmp_path / "data", n_per_batch=80)
    store = str(tmp_path / "faults.duckdb")
    r = runner.invoke(app, ["truth", "load", "--space", "toy", "--file", str(toy_truth_file), "--store", store])
    assert r.exit_code == 0, r.output
    return store, ["--store", store, "--data-dir", str(data)], tmp_path


def spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "estbench", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def query(store: str, sql: str) -> list[tuple]:
    with Store(store, read_only=True) as st:
        return st.query(sql)[1]


def wait_for(proc: subprocess.Popen, ready, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the process ended before {what}: {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def one_line(output: str) -> str:
    lines = [x for x in output.splitlines() if x.strip()]
    assert len(lines) == 1, output
    return lines[0]


# ---- score ------------------------------------------------------------------------
def test_sigterm_stops_a_score_run_like_ctrl_c(env, runner):
    store, common, _ = env
    proc = spawn("score", "--space", "toy", *ZSE, *SEEDS, "--store", store)
    wait_for(proc, lambda: query(store, "SELECT count(*) FROM scores")[0][0] > 0, "score rows")
    code, err = stop(proc, signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err and "terminated; finished chunks are saved" in err.splitlines()[-1]
    runs = query(store, RUNS)
    assert all(status != "running" for _, _, status, _, _ in runs), runs
    assert all(n == rows for *_, n, rows in runs), runs  # n_written: the rows the run left
    assert any(status == "interrupted" and n > 0 for _, _, status, n, _ in runs), runs
    r = runner.invoke(app, ["score", "--space", "toy", *ZSE, *SEEDS, "--store", store])
    assert r.exit_code == 0, r.output
    total, keys = query(store, "SELECT count(*), count(DISTINCT (arch_id, estimator, seed, batch)) FROM scores")[0]
    assert total == keys == 27 * 4 * (2 * 2 + 1)


def test_kill_9_leaves_a_true_count_and_the_next_writer_marks_the_run(env, runner):
    store, common, _ = env
    proc = spawn("score", "--space", "toy", *ZSE, *SEEDS, "--store", store)
    wait_for(proc, lambda: query(store, "SELECT count(*) FROM scores")[0][0] > 2, "score rows")
    stop(proc, signal.SIGKILL)
    (run_id, _, status, n, rows), *_ = [r for r in query(store, RUNS) if r[2] == "running"]
    assert n == rows > 0  # true while it ran: counted in each chunk's transaction
    r = runner.invoke(app, ["sql", "--write", "SELECT 1 AS one", "--store", store, "-f", "csv"])
    assert r.exit_code == 0, r.output
    assert query(store, f"SELECT status, n_written FROM runs WHERE run_id = '{run_id}'") == [("interrupted", rows)]
    r = runner.invoke(app, ["score", "--space", "toy", *ZSE, *SEEDS, "--store", store])
    assert r.exit_code == 0, r.output
    assert query(store, "SELECT count(*) FROM runs WHERE status = 'running'") == [(0,)]


# ---- train ------------------------------------------------------------------------
def test_negative_seed_is_one_line_and_records_nothing(env, runner):
    store, common, _ = env
    r = runner.invoke(app, ["train", "--space", "toy", "--run", "s", "--epochs", "1", "--seed", "-1", *TRAIN, *common])
    assert r.exit_code == 2 and "seed=-1" in one_line(r.output)
    assert query(store, "SELECT count(*) FROM runs WHERE kind = 'train'") == [(0,)]
    r = runner.invoke(app, ["train", "--space", "toy", "--run", "s", "--epochs", "1", "--seed", "1", *TRAIN, *common])
    assert r.exit_code == 0, r.output


def test_a_run_that_failed_at_once_leaves_its_name_free(env, runner):
    store, common, _ = env
    r = runner.invoke(app, ["train", "--space", "toy", "--run", "d", "--epochs", "1", "--lr", "1e30", *TRAIN, *common])
    assert r.exit_code == 1 and "diverged" in one_line(r.output)
    assert query(store, "SELECT status, n_written FROM runs") == [("interrupted", 0)]
    r = runner.invoke(app, ["train", "--space", "toy", "--run", "d", "--epochs", "1", *TRAIN, *common])
    assert r.exit_code == 0, r.output
    assert query(store, "SELECT status, n_written FROM runs") == [("done", 1)]


def test_failed_resume_leaves_a_finished_run_as_it_was(env, runner):
    store, common, tmp_path = env
    r = runner.invoke(app, ["train", "--space", "toy", "--run", "f", "--epochs", "2", *TRAIN, *common])
    assert r.exit_code == 0, r.output
    tables = ("SELECT * FROM runs", "SELECT * FROM train_epochs ORDER BY ALL", "SELECT * FROM checkpoints ORDER BY ALL")
    before = [query(store, q) for q in tables]
    ckpt = tmp_path / "estbench_runs" / "toy" / "f" / "epoch_00002.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    r = runner.invoke(app, ["train", "--space", "toy", "--run", "f", "--epochs", "3", "--resume", *TRAIN, *common])
    assert [query(store, q) for q in tables] == before and before[0][0][5] == "done"
    line = one_line(r.output)
    assert r.exit_code == 2 and "not a readable supernet checkpoint" in line and "resume from epoch 1" in line


def test_resume_after_a_kill_before_the_first_checkpoint_restarts_cleanly(env, runner):
    store, common, tmp_path = env
    slow = ["--train-images", "320", "--batch-size", "16", "--checkpoint-every", "6", "--epochs", "6"]
    args = ["train", "--space", "toy", "--preset", "cpu-small", *slow, *common]
    proc = spawn(*args, "--run", "k")
    wait_for(proc, lambda: query(store, "SELECT count(*) FROM train_epochs")[0][0] > 0, "an epoch")
    stop(proc, signal.SIGKILL)
    assert not list((tmp_path / "estbench_runs" / "toy" / "k").glob("epoch_*.pt")), "killed too late"
    assert query(store, "SELECT status FROM runs") == [("running",)]
    r = runner.invoke(app, ["sql", "--write", "UPDATE train_epochs SET train_loss = -1", "--store", store])
    assert r.exit_code == 0, r.output  # mark the killed attempt's epochs
    r = runner.invoke(app, [*args, "--run", "k", "--resume"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*args, "--run", "ref"])
    assert r.exit_code == 0, r.output
    epochs = query(store, "SELECT run_name, epoch, train_loss, lr, steps FROM train_epochs ORDER BY run_name, epoch")
    killed, straight = [e[1:] for e in epochs if e[0] == "k"], [e[1:] for e in epochs if e[0] == "ref"]
    assert killed == straight and len(killed) == 6  # the killed attempt's rows are gone, not kept
    assert query(store, "SELECT name, status, n_written FROM runs ORDER BY name") == [
        ("k", "done", 6),
        ("ref", "done", 6),
    ]


def test_a_run_trains_in_one_process_at_a_time(env, runner, monkeypatch):
    store, common, tmp_path = env
    monkeypatch.setenv("ESTBENCH_THREADS", "1")  # as the spawned trainer (else a thread warning comes first)
    args = ["train", "--space", "toy", "--run", "l", *TRAIN, *common]
    proc = spawn(*args, "--epochs", "500")
    wait_for(proc, lambda: (tmp_path / "estbench_runs" / "toy" / "l" / "epoch_00001.pt").exists(), "a checkpoint")
    try:
        for extra in (["--resume"], []):
            r = runner.invoke(app, [*args, "--epochs", "500", *extra])
            line = one_line(r.output)
            assert r.exit_code == 1 and f"is being trained right now (pid {proc.pid} on this host)" in line, line
    finally:
        code, err = stop(proc, signal.SIGTERM)
    assert code == 143, err
    ((status, done),) = query(store, "SELECT status, n_written FROM runs")
    assert status == "interrupted" and done == query(store, "SELECT max(epoch) FROM train_epochs")[0][0]
    r = runner.invoke(app, [*args, "--epochs", str(done + 1), "--resume"])
    assert r.exit_code == 0, r.output
    assert query(store, "SELECT status, n_written FROM runs") == [("done", done + 1)]


@pytest.mark.slow
def test_fault_injection_short(tmp_path):
    """benchmarks/fault_injection.py with 3 kills per command (`make faults`: 20)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fault_injection.py"
    spec = importlib.util.spec_from_file_location("fault_injection", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--kills", "3", "--sigterm-every", "2", "--workdir", str(tmp_path / "faults")]) == 0


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_inside_a_duckdb_query_is_the_interrupt_it_was(sig, code, capsys):
    """DuckDB turns a signal during a query into RuntimeError('Query interrupted')."""
    import threading

    import duckdb
    import typer

    from estbench.cli.common import handle_errors

    # connected (and warmed up) before the timer starts: a signal that lands inside
    # duckdb.connect() waits, unseen, for the whole query (~30 s) before Python raises it
    con = duckdb.connect()
    con.execute("SELECT 1").fetchall()

    @handle_errors
    def long_query():
        con.execute("SELECT count(*) FROM range(10000000000) t(a) WHERE a % 7 = 3").fetchall()

    threading.Timer(0.3, os.kill, (os.getpid(), sig)).start()
    with pytest.raises(typer.Exit) as exc:
        long_query()
    assert exc.value.exit_code == code
    assert "finished chunks are saved" in one_line(capsys.readouterr().err)


def test_resume_state_is_checked_before_anything_trains(tmp_path):
    import numpy as np

    from estbench.data.cifar10 import ImageSet
    from estbench.errors import BadInput
    from estbench.estimators.oneshot.train import TrainConfig, resume_state, train_supernet
    from estbench.spaces import get_space

    space, rng = get_space("toy"), np.random.default_rng(0)
    images = ImageSet(rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8), rng.integers(0, 10, 60), "synthetic")
    cfg = dict(batch_size=16, checkpoint_every=2, c=4, n=1)
    assert resume_state(TrainConfig(epochs=4, **cfg), space, tmp_path) is None  # from scratch
    train_supernet(TrainConfig(epochs=4, **cfg), space, images, tmp_path)
    assert resume_state(TrainConfig(epochs=6, **cfg), space, tmp_path)["epoch"] == 4
    with pytest.raises(BadInput, match="--epochs 3: it is 4 epochs in already"):
        resume_state(TrainConfig(epochs=3, **cfg), space, tmp_path)
    with pytest.raises(BadInput, match=f"seed={2**31}"):
        TrainConfig(seed=2**31)
    last = tmp_path / "epoch_00004.pt"
    last.write_bytes(last.read_bytes()[:500])
    with pytest.raises(BadInput, match="not a readable supernet checkpoint.*move it away to resume from epoch 2"):
        resume_state(TrainConfig(epochs=6, **cfg), space, tmp_path)
