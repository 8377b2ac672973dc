"""`estbench train` and `estbench score --ose` end to end on the toy space with a tiny
CIFAR-10 fixture in the official format."""

import json

import pytest
from tests_support import write_fake_cifar

from estbench.cli import app
from estbench.store.store import Store

TRAIN = ["--preset", "cpu-small", "--train-images", "64", "--batch-size", "32", "--checkpoint-every", "1"]


@pytest.fixture
def env(tmp_path, runner, toy_truth_file):
    data = write_fake_cifar(tmp_path / "data", n_per_batch=40)
    store = str(tmp_path / "os.duckdb")
    common = ["--store", store, "--data-dir", str(data)]
    r = runner.invoke(app, ["truth", "load", "--space", "toy", "--file", str(toy_truth_file), "--store", store])
    assert r.exit_code == 0, r.output
    return store, common, tmp_path


def run(runner, *args):
    return runner.invoke(app, list(args))


def test_train_resume_score_and_criteria(runner, env):
    store, common, tmp_path = env
    r = run(runner, "train", "--space", "toy", "--run", "u1", "--epochs", "2", *TRAIN, *common)
    assert r.exit_code == 0, r.output
    assert "checkpoints at 1, 2" in r.output
    # same name, other config: refused, nothing overwritten
    r = run(runner, "train", "--space", "toy", "--run", "u1", "--epochs", "2", "--sampler", "deiso", *TRAIN, *common)
    assert r.exit_code == 2 and "exists with a different config (sampler)" in r.output
    r = run(runner, "train", "--space", "toy", "--run", "u1", "--epochs", "2", *TRAIN, *common)
    assert r.exit_code == 2 and "pass --resume" in r.output
    r = run(runner, "train", "--space", "toy", "--run", "u1", "--epochs", "3", "--resume", *TRAIN, *common)
    assert r.exit_code == 0, r.output
    with Store(store, read_only=True) as st:
        assert [r[0] for r in st.query("SELECT epoch FROM train_epochs ORDER BY 1")[1]] == [1, 2, 3]
        assert st.query("SELECT count(*) FROM checkpoints")[1][0][0] == 3
        assert st.query("SELECT status FROM runs WHERE kind = 'train'")[1] == [("done",)]
    r = run(
        runner,
        "score",
        "--space",
        "toy",
        "--ose",
        "u1",
        "--epoch",
        "1",
        "--epoch",
        "3",
        "--batches",
        "2",
        "--batch-size",
        "16",
        *common,
    )
    assert r.exit_code == 0, r.output
    with Store(store, read_only=True) as st:
        rows = st.query(
            "SELECT estimator, epoch, seed, count(*), min(value), max(value) FROM scores GROUP BY ALL ORDER BY ALL"
        )[1]
    assert rows[0][:4] == ("os_acc", 1, 20, 27 * 2) and 0 <= rows[0][4] <= rows[0][5] <= 1
    assert {r[:2] for r in rows} == {("os_acc", 1), ("os_acc", 3), ("os_loss", 1), ("os_loss", 3)}
    # os_loss flows through criteria as lower-is-better, one row per checkpoint epoch
    r = run(runner, "criteria", "--space", "toy", "--protocol", "iso", "--store", store, "-f", "json")
    out = json.loads(r.output)
    assert sorted((d["estimator"], d["epoch"]) for d in out) == [
        ("os_acc", 1),
        ("os_acc", 3),
        ("os_loss", 1),
        ("os_loss", 3),
    ]
    with Store(store, read_only=True) as st:
        assert st.query("SELECT higher_is_better FROM estimators WHERE name = 'os_loss'")[1] == [(False,)]
    # rerun: cached; ensemble of the last 2 checkpoints is its own config
    r = run(
        runner,
        "score",
        "--space",
        "toy",
        "--ose",
        "u1",
        "--epoch",
        "3",
        "--batches",
        "2",
        "--batch-size",
        "16",
        *common,
    )
    assert "27 cached, 0 computed" in r.output
    r = run(
        runner,
        "score",
        "--space",
        "toy",
        "--ose",
        "u1",
        "--ensemble",
        "2",
        "--batches",
        "2",
        "--batch-size",
        "16",
        *common,
    )
    assert r.exit_code == 0, r.output
    with Store(store, read_only=True) as st:
        labels = sorted(r[0] for r in st.query("SELECT DISTINCT label FROM configs WHERE estimator = 'os_acc'")[1])
    assert labels == ["u1", "u1 ens2"]


def test_one_shot_bad_input(runner, env):
    store, common, tmp_path = env
    r = run(runner, "train", "--space", "toy", "--run", "u2", "--epochs", "1", "--sampler", "unifrom", *TRAIN, *common)
    assert r.exit_code == 2 and "Did you mean uniform" in r.output
    r = run(runner, "score", "--space", "toy", "--ose", "nope", *common)
    assert r.exit_code == 2 and "no one-shot run 'nope'" in r.output
    r = run(runner, "train", "--space", "toy", "--run", "u2", "--epochs", "1", *TRAIN, *common)
    assert r.exit_code == 0, r.output
    r = run(runner, "score", "--space", "toy", "--ose", "u2", "--epoch", "9", *common)
    assert r.exit_code == 2 and "no checkpoint at epoch 9; saved epochs: 1" in r.output
    r = run(
        runner,
        "score",
        "--space",
        "toy",
        "--ose",
        "u2",
        "--ensemble",
        "3",
        "--batches",
        "1",
        "--batch-size",
        "16",
        *common,
    )
    assert r.exit_code == 2 and "needs 3 checkpoints" in r.output
    ckpt = tmp_path / "estbench_runs" / "toy" / "u2" / "epoch_00001.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # truncated
    r = run(runner, "score", "--space", "toy", "--ose", "u2", "--batches", "1", "--batch-size", "16", *common)
    assert r.exit_code == 2 and "not a readable supernet checkpoint" in r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1
