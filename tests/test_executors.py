"""score --executor ray (issue 16): a local Ray runtime computes the architectures, the
driver alone writes the store. Same rows as local; a task that raises becomes failed rows
and the run finishes; a rerun after a killed driver computes only what is missing."""

import os
import signal
import subprocess
import sys
import time

import pytest

from estbench.cli import app
from estbench.errors import BadInput
from estbench.runs.executors import LocalExecutor, failed_rows, make_executor
from estbench.store import ScoreKey, Store

ZS = ["--zse", "grad_norm", "--zse", "relu_logdet", "--zse", "synflow", "--input", "noise-uniform",
      "--batch-size", "8", "--batches", "2", "--seed", "3", "--seed", "4", "--archs", "0:20"]  # fmt: skip


def _rows(store):
    with Store(store, read_only=True) as st:
        return st.query("SELECT estimator, config_hash, arch_id, seed, batch, value, status FROM scores ORDER BY ALL")[
            1
        ]


def test_unknown_executor_and_missing_ray_are_one_line(monkeypatch):
    with pytest.raises(BadInput, match="unknown --executor 'slurm'"):
        make_executor("slurm")
    assert isinstance(make_executor("local"), LocalExecutor)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(BadInput, match=r"pip install 'estbench\[ray\]'"):
        make_executor("ray")


def test_failed_rows_cover_every_batch_of_every_key():
    keys = [ScoreKey("toy", "snip", "h", 0, 3, 2), ScoreKey("toy", "synflow", "g", 0, 3, 1)]
    rows = failed_rows(keys, 7, "r", "RuntimeError: boom")
    assert [(r.estimator, r.batch, r.status, r.detail) for r in rows] == [
        ("snip", 0, "failed", "RuntimeError: boom"), ("snip", 1, "failed", "RuntimeError: boom"),
        ("synflow", 0, "failed", "RuntimeError: boom"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'estbench[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.ray
def test_ray_writes_the_same_rows_as_local(runner, tmp_path, ray_runtime):
    local, fanned = str(tmp_path / "l.duckdb"), str(tmp_path / "r.duckdb")
    r = runner.invoke(app, ["score", "--space", "toy", *ZS, "--threads", "1", "--store", local])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["score", "--space", "toy", *ZS, "--executor", "ray", "--archs-per-task", "3", "--store", fanned]
    )
    assert r.exit_code == 0, r.output
    a, b = _rows(local), _rows(fanned)
    assert len(a) == 20 * 2 * (2 + 2 + 1) and a == b  # bit-identical values on CPU (1 thread each)


@pytest.mark.ray
def test_a_raising_task_becomes_failed_rows_and_the_run_finishes(tmp_path, ray_runtime):
    from estbench.data.lookup import DataDir
    from estbench.runs.executors import RayExecutor
    from estbench.runs.loop import run_job
    from estbench.runs.selection import ensure_archs
    from estbench.runs.zeroshot import ZeroShotConfig, ZeroShotJob
    from estbench.spaces import get_space

    class Flaky:  # defined here, so Ray ships it by value to the workers
        def __init__(self, inner):
            self.inner, self.name, self.config, self.chunk_size = inner, inner.name, inner.config, 2

        def groups(self):
            return self.inner.groups()

        def prepare(self, group):
            self.inner.prepare(group)

        def compute(self, group, arch_id, keys, run_id):
            if arch_id % 5 == 0:
                raise RuntimeError(f"no arch {arch_id}")
            return self.inner.compute(group, arch_id, keys, run_id)

    space, data = get_space("toy"), DataDir(None)
    cfg = ZeroShotConfig(batch_size=8, n_batches=2, input="noise-uniform")
    with Store(tmp_path / "f.duckdb") as st:
        ensure_archs(st, space, data)
        job = ZeroShotJob(st, space, ["grad_norm", "synflow"], [3], cfg, data)
        summaries = run_job(st, "toy", Flaky(job), list(range(20)), executor=RayExecutor(archs_per_task=3))
        rows = st.query("SELECT estimator, arch_id, batch, status, detail FROM scores ORDER BY ALL")[1]
    assert {s.computed for s in summaries} == {20}
    failed = {a for _, a, _, status, _ in rows if status == "failed"}
    assert failed == {0, 5, 10, 15}  # only the raising archs; their task's other archs are fine
    assert len(rows) == 20 * (2 + 1)  # every key complete: a rerun has nothing left
    assert all(d == f"RuntimeError: no arch {a}" for _, a, _, status, d in rows if status == "failed")


@pytest.mark.ray
def test_a_killed_driver_loses_only_work_in_flight(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    store = str(tmp_path / "k.duckdb")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "estbench", "score", "--space", "toy", *ZS, "--executor", "ray",
           "--archs-per-task", "1", "--chunk-size", "1", "--store", store]  # fmt: skip
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        time.sleep(0.5)
        if os.path.exists(store):
            try:
                if len(_rows(store)) >= 10:
                    break
            except Exception:  # noqa: BLE001 (the writer holds the file for a moment)
                continue
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    rows = _rows(store)
    keys = [r[:5] for r in rows]
    assert len(keys) == len(set(keys)) == 20 * 2 * (2 + 2 + 1)


# ---- train --executor ray: one task per seed, the driver writes ---------------------------
TRAIN = ["--space", "toy", "--preset", "cpu-small", "--train-images", "64", "--batch-size", "32",
         "--checkpoint-every", "1"]  # fmt: skip


@pytest.fixture
def cifar(tmp_path):
    from tests_support import write_fake_cifar

    return str(write_fake_cifar(tmp_path / "data", n_per_batch=40))


def _epochs(store):
    with Store(store, read_only=True) as st:
        return st.query("SELECT run_name, epoch, train_loss, steps FROM train_epochs ORDER BY ALL")[1]


def _statuses(store):
    with Store(store, read_only=True) as st:
        return st.query("SELECT name, status FROM runs WHERE kind = 'train' ORDER BY ALL")[1]


def _weights(run_dir, epoch):
    from estbench.estimators.oneshot.checkpoint import checkpoint_path, load_checkpoint

    return load_checkpoint(checkpoint_path(run_dir, epoch))["model"]


def test_several_seeds_need_seed_in_the_run_name_and_train_one_after_another(runner, tmp_path, cifar):
    store = str(tmp_path / "s.duckdb")
    common = [*TRAIN, "--epochs", "2", "--store", store, "--data-dir", cifar, "--threads", "1"]
    r = runner.invoke(app, ["train", "--run", "u", "--seed", "1", "--seed", "2", *common])
    assert r.exit_code == 2 and "needs {seed} in it" in r.output
    r = runner.invoke(app, ["train", "--run", "u-s{seed}", "--seed", "1", "--seed", "2", *common])
    assert r.exit_code == 0, r.output
    assert "run u-s1: 2 epochs" in r.output and "run u-s2: 2 epochs" in r.output
    assert [(n, e) for n, e, _, _ in _epochs(store)] == [("u-s1", 1), ("u-s1", 2), ("u-s2", 1), ("u-s2", 2)]
    assert _statuses(store) == [("u-s1", "done"), ("u-s2", "done")]


def test_cuda_with_ray_needs_gpus_per_task():
    from estbench.runs.executors import check_ray_device

    check_ray_device("ray", "cuda", 0.25)
    check_ray_device("local", "cuda", 0.0)
    with pytest.raises(BadInput, match="needs --gpus-per-task"):
        check_ray_device("ray", "cuda", 0.0)
    with pytest.raises(BadInput, match="pass --device cuda"):
        check_ray_device("ray", "cuda:1", 1.0)


@pytest.mark.ray
def test_more_gpus_per_task_than_the_cluster_has_is_one_line(ray_runtime):
    from estbench.runs.executors import RayExecutor

    with pytest.raises(BadInput, match="--gpus-per-task 0.5: the Ray cluster has 0 GPUs"):
        RayExecutor(gpus_per_task=0.5)._init()


def test_fanout_driver_writes_reports_and_a_failed_run_leaves_the_others(tmp_path, cifar):
    """train_fanout's bookkeeping with a stand-in executor (no Ray): epochs are written
    as reported, a failed task marks its run failed and returns its error, the other
    run is done; a rerun with --resume continues the failed run."""
    from estbench.data.lookup import DataDir
    from estbench.estimators.oneshot.train import EpochStats, preset_config
    from estbench.runs.train import train_fanout
    from estbench.spaces import get_space

    space = get_space("toy")
    cfg = preset_config(space, "cpu-small", epochs=2, train_images=64, batch_size=32)

    class Stub:
        def __init__(self, fail):
            self.fail = fail

        def train(self, specs):
            assert set(specs) == {"a", "b"} and all(s[2].name in specs for s in specs.values())
            for name in specs:
                yield ("epoch", name, EpochStats(1, 2.0, 0.05, 0.1, 2), None)
                if name == self.fail:
                    yield ("failed", name, "RuntimeError: boom")
                else:
                    yield ("epoch", name, EpochStats(2, 1.5, 0.05, 0.1, 2), None)
                    yield ("done", name, 2)

    store = tmp_path / "f.duckdb"
    runs = [("a", cfg), ("b", cfg)]
    with Store(store) as st:
        out = train_fanout(st, space, runs, DataDir(cifar), tmp_path / "runs", False, Stub("b"))
    assert out["b"] == "RuntimeError: boom" and out["a"].epochs_done == 2
    assert _statuses(store) == [("a", "done"), ("b", "failed")]
    assert [(n, e) for n, e, _, _ in _epochs(store)] == [("a", 1), ("a", 2), ("b", 1)]
    with Store(store) as st:  # b never wrote a checkpoint: it starts afresh, a is done already
        out = train_fanout(st, space, runs, DataDir(cifar), tmp_path / "runs", True, Stub(None))
    assert _statuses(store) == [("a", "done"), ("b", "done")]


@pytest.mark.ray
def test_ray_training_is_bit_identical_to_local(runner, tmp_path, cifar):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    local, fanned = str(tmp_path / "l.duckdb"), str(tmp_path / "r.duckdb")
    seeds = ["--run", "u-s{seed}", "--seed", "1", "--seed", "2", "--epochs", "2"]
    r = runner.invoke(app, ["train", *TRAIN, *seeds, "--threads", "1", "--store", local, "--data-dir", cifar,
                            "--runs-dir", str(tmp_path / "lr")])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", *TRAIN, *seeds, "--executor", "ray", "--store", fanned, "--data-dir", cifar,
                            "--runs-dir", str(tmp_path / "rr")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert _epochs(local) == _epochs(fanned) and len(_epochs(local)) == 4
    assert _statuses(fanned) == [("u-s1", "done"), ("u-s2", "done")]
    for run in ("u-s1", "u-s2"):
        a, b = _weights(tmp_path / "lr" / "toy" / run, 2), _weights(tmp_path / "rr" / "toy" / run, 2)
        assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


@pytest.mark.ray
def test_a_killed_training_driver_resumes_every_seed(tmp_path, cifar):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    store, runs = str(tmp_path / "k.duckdb"), tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "estbench", "train", *TRAIN, "--run", "u-s{seed}", "--seed", "1", "--seed", "2",
           "--epochs", "40", "--executor", "ray", "--store", store, "--data-dir", cifar, "--runs-dir", str(runs)]  # fmt: skip
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        time.sleep(0.3)
        try:
            if os.path.exists(store) and len(_epochs(store)) >= 4:
                break
        except Exception:  # noqa: BLE001 (the writer holds the file for a moment)
            continue
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL  # killed mid-run, not finished
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    epochs = [(n, e) for n, e, _, _ in _epochs(store)]
    assert epochs == [(n, e) for n in ("u-s1", "u-s2") for e in range(1, 41)]
    assert _statuses(store) == [("u-s1", "done"), ("u-s2", "done")]


@pytest.mark.ray
def test_one_shot_scoring_through_ray_gives_the_local_rows(runner, tmp_path, cifar, ray_runtime):
    import shutil

    local, fanned = str(tmp_path / "o.duckdb"), str(tmp_path / "o2.duckdb")
    r = runner.invoke(app, ["train", *TRAIN, "--run", "u", "--epochs", "2", "--threads", "1", "--store", local,
                            "--data-dir", cifar])  # fmt: skip
    assert r.exit_code == 0, r.output
    shutil.copy(local, fanned)  # the same run record, no scores yet
    os_args = ["score", "--space", "toy", "--ose", "u", "--epoch", "1", "--epoch", "2", "--batches", "2",
               "--batch-size", "16", "--threads", "1", "--data-dir", cifar]  # fmt: skip
    r = runner.invoke(app, [*os_args, "--store", local])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*os_args, "--executor", "ray", "--archs-per-task", "5", "--store", fanned])
    assert r.exit_code == 0, r.output
    assert len(_rows(local)) == 27 * 2 * 2 * 2 and _rows(fanned) == _rows(local)
