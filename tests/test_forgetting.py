"""The forgetting probe (issue 11 item 3; paper Sec. 5.3, Fig. A14) on the toy space:
`train --probe-forgetting N` records N rows per epoch without changing training (bit-
identical weights, losses, RNG streams), stays exact across a kill and a resume (also
when the probe is switched on, off or changed at the resume), and `variance forgetting`
agrees with direct numpy on the stored rows; bad input is one line, exit code 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from tests_support import one_line_error, write_fake_cifar

from estbench.cli import app
from estbench.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD, ImageSet
from estbench.data.lookup import DataDir
from estbench.estimators.oneshot import train as trainmod
from estbench.estimators.oneshot.evaluate import model_from_checkpoint
from estbench.estimators.oneshot.train import (
    ForgettingProbe,
    TrainConfig,
    load_checkpoint,
    probe_batch,
    probe_steps,
    split_indices,
    train_supernet,
)
from estbench.runs.train import train_run
from estbench.spaces import get_space
from estbench.store import Store

TOY = dict(c=4, n=1, num_classes=10)
CLI_TRAIN = ["--preset", "cpu-small", "--train-images", "64", "--batch-size", "16", "--checkpoint-every", "2"]
PROBE = ["--probe-forgetting", "3", "--probe-batch", "16"]
ROWS = "SELECT epoch, arch_id, step, acc_after_step, acc_after_epoch FROM forgetting WHERE run_name = ? ORDER BY ALL"


@pytest.fixture(scope="module")
def space():
    return get_space("toy")


@pytest.fixture(scope="module")
def images() -> ImageSet:
    rng = np.random.default_rng(0)
    return ImageSet(rng.integers(0, 256, (100, 8, 8, 3), dtype=np.uint8), rng.integers(0, 10, 100), "synthetic:test")


def toy_config(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=16, checkpoint_every=1, lr_patience=1, seed=3, train_images=64, **TOY)
    return TrainConfig(**{**base, **kw})


def same_tensors(a, b) -> bool:
    """Deep equality of checkpoint parts (dicts, lists, tensors, numbers), bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_tensors(x, y) for x, y in zip(a, b))
    return a == b


# ---- where and what the probe measures ----------------------------------------------
def test_probe_steps_are_the_middles_of_equal_slices():
    for n, steps in [(50, 313), (3, 4), (7, 7), (1, 10), (13, 100)]:
        got = probe_steps(n, steps)
        expected = np.floor((np.arange(n) + 0.5) * steps / n).astype(int).tolist()
        assert got == expected and len(set(got)) == n and 0 <= got[0] and got[-1] < steps
    assert probe_steps(5, 3) == [0, 1, 2]  # more probes than steps: every step
    assert probe_steps(0, 10) == []
    gaps = np.diff(probe_steps(50, 313))
    assert set(gaps.tolist()) <= {6, 7}  # 313 / 50 = 6.26


def test_probe_batch_is_fixed_held_out_and_seeded_by_the_run(images):
    cfg = toy_config()
    train, valid = split_indices(cfg, len(images))
    x, y = probe_batch(cfg, ForgettingProbe(3, 10), images)
    assert x.shape == (10, 3, 8, 8)
    mean, std = np.asarray(CIFAR10_MEAN).reshape(1, 3, 1, 1), np.asarray(CIFAR10_STD).reshape(1, 3, 1, 1)
    pixels = np.rint((x.numpy() * std + mean) * 255).astype(np.int64)
    source = images.images.transpose(0, 3, 1, 2).astype(np.int64)
    idx = [int(np.flatnonzero((source == p).all(axis=(1, 2, 3)))[0]) for p in pixels]
    assert set(idx) <= set(valid.tolist()) and not set(idx) & set(train.tolist())
    assert np.array_equal(images.labels[idx], y.numpy())
    again = probe_batch(cfg, ForgettingProbe(5, 10), images)
    assert torch.equal(again[0], x)  # the same images whatever N, every epoch and session
    other = probe_batch(toy_config(seed=4), ForgettingProbe(3, 10), images)
    assert not torch.equal(other[0], x)
    with pytest.raises(Exception, match="validation split holds only 20 images"):
        probe_batch(cfg, ForgettingProbe(3, 21), images)


def replay_archs(space, cfg: TrainConfig, steps: int) -> dict[tuple[int, int], tuple]:
    """The first architecture of every step, drawn again from a fresh sampler stream."""
    sampler = space.make_sampler(cfg.sampler, np.random.default_rng([cfg.seed, 2]))
    out = {}
    for epoch in range(1, cfg.epochs + 1):
        for step in range(steps):
            out[(epoch, step)] = [a for _ in range(cfg.mc_samples) for a in sampler.step()][0]
    return out


def direct_accuracy(path, space, arch, batch) -> float:
    """Accuracy of ``arch`` in the checkpoint's supernet with BN on batch statistics."""
    model = model_from_checkpoint(path, space).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.train()  # a throwaway copy: its running statistics may change
    x, y = batch
    with torch.no_grad():
        return (model(x.contiguous(memory_format=torch.channels_last), arch).argmax(1) == y).double().mean().item()


@pytest.mark.parametrize(
    "kw", [dict(), dict(mc_samples=2), dict(sampler="fairnas"), dict(sampler="deiso", channels_last=False)]
)
def test_probe_leaves_training_bit_identical(space, images, tmp_path, kw):
    cfg = toy_config(**kw)
    plain = train_supernet(cfg, space, images, tmp_path / "plain")
    got: dict[int, list] = {}
    probe = ForgettingProbe(3, 10)
    probed = train_supernet(
        cfg, space, images, tmp_path / "probed", probe=probe, on_probes=lambda e, rows: got.setdefault(e, rows)
    )
    assert [(s.epoch, s.train_loss, s.lr, s.steps) for s in plain] == [
        (s.epoch, s.train_loss, s.lr, s.steps) for s in probed
    ]
    for epoch in range(1, cfg.epochs + 1):
        a = load_checkpoint(tmp_path / "plain" / f"epoch_{epoch:05d}.pt")
        b = load_checkpoint(tmp_path / "probed" / f"epoch_{epoch:05d}.pt")
        for part in ("model", "optimizer", "scheduler", "rng"):
            assert same_tensors(a[part], b[part]), (epoch, part)
    steps = plain[0].steps
    archs = replay_archs(space, cfg, steps)
    batch = probe_batch(cfg, probe, images)
    assert sorted(got) == [1, 2, 3]
    for epoch, rows in got.items():
        assert [r.step for r in rows] == probe_steps(3, steps)
        assert [r.arch for r in rows] == [archs[(epoch, r.step)] for r in rows]  # the sampler's own draw
        for r in rows:
            assert 0 <= r.acc_after_step <= 1 and 0 <= r.acc_after_epoch <= 1
            for acc in (r.acc_after_step, r.acc_after_epoch):  # k of 10 images (a float32 mean, as os_acc)
                assert acc * 10 == pytest.approx(round(acc * 10), abs=1e-5)
            ckpt = tmp_path / "probed" / f"epoch_{epoch:05d}.pt"
            assert r.acc_after_epoch == pytest.approx(direct_accuracy(ckpt, space, r.arch, batch), abs=1e-6)


def test_every_step_probed_and_the_last_one_forgets_nothing(space, images, tmp_path):
    got: dict[int, list] = {}
    train_supernet(
        toy_config(epochs=2), space, images, tmp_path, probe=ForgettingProbe(99, 10), on_probes=got.setdefault
    )
    for rows in got.values():
        assert [r.step for r in rows] == list(range(64 // 16))  # more probes than steps: every step
        assert rows[-1].acc_after_step == rows[-1].acc_after_epoch  # nothing trains after the last step


# ---- runs, store and resume -----------------------------------------------------------
@pytest.fixture
def env(tmp_path, runner, toy_truth_file):
    data = write_fake_cifar(tmp_path / "data", n_per_batch=40)
    store = str(tmp_path / "fg.duckdb")
    r = runner.invoke(app, ["truth", "load", "--space", "toy", "--file", str(toy_truth_file), "--store", store])
    assert r.exit_code == 0, r.output
    return store, data, tmp_path


class Kill(Exception):
    pass


def run_cfg(**kw) -> TrainConfig:
    return toy_config(epochs=4, checkpoint_every=2, **kw)


def rows_of(store: str, run: str) -> list[tuple]:
    with Store(store, read_only=True) as st:
        return st.query(ROWS, [run])[1]


def epochs_of(store: str, run: str) -> list[tuple]:
    sql = "SELECT epoch, train_loss, lr, steps FROM train_epochs WHERE run_name = ? ORDER BY 1"
    with Store(store, read_only=True) as st:
        return st.query(sql, [run])[1]


def killed_at(epoch: int):
    def on_epoch(stats) -> None:
        if stats.epoch == epoch:
            raise Kill

    return on_epoch


def test_resume_with_the_probe_is_exact(space, env, monkeypatch):
    store, data, tmp_path = env
    runs, probe = tmp_path / "runs", ForgettingProbe(3, 16)
    st, dd = Store(store), DataDir(str(data))
    ref = train_run(st, space, "ref", run_cfg(), dd, runs, False, probe=probe)
    assert ref.probes == 4 * 3
    want = rows_of(store, "ref")
    assert [r[0] for r in want] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    # killed after epoch 3 (checkpoint at 2); its epoch-3 rows are marked, then replaced
    with pytest.raises(Kill):
        train_run(st, space, "k", run_cfg(), dd, runs, False, on_epoch=killed_at(3), probe=probe)
    st.query("UPDATE forgetting SET acc_after_step = -1 WHERE run_name = 'k' AND epoch = 3")
    train_run(st, space, "k", run_cfg(), dd, runs, True, probe=probe)
    assert rows_of(store, "k") == want and epochs_of(store, "k") == epochs_of(store, "ref")
    a, b = (load_checkpoint(runs / "toy" / n / "epoch_00004.pt") for n in ("ref", "k"))
    assert same_tensors(a["model"], b["model"])
    # killed after the probe rows of epoch 4 were written, before its checkpoint
    real_save = trainmod.save_checkpoint

    def save(state, path):
        if state["epoch"] == 4:
            raise Kill
        real_save(state, path)

    monkeypatch.setattr(trainmod, "save_checkpoint", save)
    with pytest.raises(Kill):
        train_run(st, space, "c", run_cfg(), dd, runs, False, probe=probe)
    assert [r[0] for r in rows_of(store, "c")][-1] == 4
    monkeypatch.setattr(trainmod, "save_checkpoint", real_save)
    train_run(st, space, "c", run_cfg(), dd, runs, True, probe=probe)
    assert rows_of(store, "c") == want
    # the probe switched off at the resume: the killed attempt's epoch-3 rows go, 1-2 stay
    with pytest.raises(Kill):
        train_run(st, space, "off", run_cfg(), dd, runs, False, on_epoch=killed_at(3), probe=probe)
    train_run(st, space, "off", run_cfg(), dd, runs, True)
    assert rows_of(store, "off") == [r for r in want if r[0] <= 2]
    assert epochs_of(store, "off") == epochs_of(store, "ref")
    # ... and switched on at a resume of a run trained without it: the same rows as ref's
    train_run(st, space, "on", toy_config(epochs=2, checkpoint_every=2), dd, runs, False)
    train_run(st, space, "on", run_cfg(), dd, runs, True, probe=probe)
    assert rows_of(store, "on") == [r for r in want if r[0] >= 3]
    c = load_checkpoint(runs / "toy" / "on" / "epoch_00004.pt")
    assert same_tensors(a["model"], c["model"])


def test_store_replaces_an_epochs_probes(tmp_path):
    st = Store(str(tmp_path / "s.duckdb"))
    st.put_forgetting("toy", "r", 1, [(3, 0, 0.5, 0.25), (4, 1, 0.5, 0.75)])
    st.put_forgetting("toy", "r", 2, [(5, 0, 0.1, 0.2)])
    st.put_forgetting("toy", "r", 1, [(6, 2, 0.0, 1.0)])
    assert st.query(ROWS, ["r"])[1] == [(1, 6, 2, 0.0, 1.0), (2, 5, 0, 0.1, 0.2)]
    assert st.forgetting_epochs("toy", "r") == [1, 2] and st.forgetting_epochs("toy", "x") == []
    st.drop_forgetting_after("toy", "r", 1)
    assert st.forgetting_epochs("toy", "r") == [1]
    st.drop_forgetting_after("toy", "r", 0)
    assert st.forgetting_epochs("toy", "r") == []


# ---- the analysis ---------------------------------------------------------------------
def direct_summary(rows: list[tuple]) -> dict[int, dict]:
    """Per epoch from (epoch, arch_id, step, acc1, acc2) rows, written out in numpy."""
    out = {}
    for e in sorted({r[0] for r in rows}):
        a1 = np.array([r[3] for r in rows if r[0] == e])
        a2 = np.array([r[4] for r in rows if r[0] == e])
        fv = a2 - a1
        p10, p50, p90 = np.percentile(fv, [10, 50, 90])
        out[e] = dict(
            probes=len(fv), mean_fv=np.mean(fv), std_fv=np.sqrt(np.mean((fv - fv.mean()) ** 2)), min_fv=fv.min(),
            q10_fv=p10, median_fv=p50, q90_fv=p90, max_fv=fv.max(), neg_share=np.sum(fv < 0) / len(fv),
            zero_share=np.sum(fv == 0) / len(fv), acc_after_step=a1.mean(), acc_after_epoch=a2.mean(),
        )  # fmt: skip
    return out


def check_summary(output: str, rows: list[tuple]) -> None:
    import json

    got = {d["epoch"]: d for d in json.loads(output)}
    want = direct_summary(rows)
    assert sorted(got) == sorted(want)
    for e, d in want.items():
        for k, v in d.items():
            assert got[e][k] == pytest.approx(v, abs=1e-12), (e, k)


def test_summary_matches_numpy_on_a_synthetic_store(tmp_path, runner):
    store = str(tmp_path / "syn.duckdb")
    rng = np.random.default_rng(7)
    with Store(store) as st:
        for epoch in (1, 2, 5):
            n = int(rng.integers(5, 40))
            a1 = rng.integers(0, 65, n) / 64
            a2 = np.clip(a1 + rng.integers(-8, 9, n) / 64 + (epoch - 2) / 64, 0, 1)  # ties, zeros, both signs
            st.put_forgetting(
                "toy",
                "syn",
                epoch,
                [(int(i), s, float(x), float(y)) for s, (i, x, y) in enumerate(zip(rng.integers(0, 27, n), a1, a2))],
            )
    rows = rows_of(store, "syn")
    r = runner.invoke(app, ["variance", "forgetting", "--space", "toy", "--run", "syn", "--store", store, "-f", "json"])
    assert r.exit_code == 0, r.output
    check_summary(r.output, rows)
    r = runner.invoke(
        app,
        [
            "variance",
            "forgetting",
            "--space",
            "toy",
            "--run",
            "syn",
            "--epoch",
            "5",
            "--epoch",
            "1",
            "--store",
            store,
            "-f",
            "json",
        ],
    )
    check_summary(r.output, [x for x in rows if x[0] in (1, 5)])


def test_train_and_analyse_from_the_cli(env, runner):
    import json

    store, data, tmp_path = env
    common = ["--store", store, "--data-dir", str(data), "--threads", "1"]
    r = runner.invoke(app, ["train", "--space", "toy", "--run", "p", "--epochs", "3", *CLI_TRAIN, *PROBE, *common])
    assert r.exit_code == 0, r.output
    assert "forgetting probes: 9 rows" in r.output
    rows = rows_of(store, "p")
    assert len(rows) == 9 and all(0 <= x <= 1 for row in rows for x in row[3:])
    assert sorted(r[2] for r in rows if r[0] == 1) == probe_steps(3, 4)
    base = ["variance", "forgetting", "--space", "toy", "--run", "p", "--store", store]
    r = runner.invoke(app, [*base, "-f", "json"])
    assert r.exit_code == 0, r.output
    check_summary(r.output, rows)
    r = runner.invoke(app, [*base, "--show", "rows", "--epoch", "2", "-f", "json"])
    shown = json.loads(r.output)
    with Store(store, read_only=True) as st:
        strs = st.arch_strings("toy")
    assert [(d["epoch"], d["arch_id"], d["step"], d["acc_after_step"], d["acc_after_epoch"]) for d in shown] == [
        x for x in sorted(rows, key=lambda x: (x[0], x[2])) if x[0] == 2
    ]
    assert all(d["arch"] == strs[d["arch_id"]] and d["fv"] == d["acc_after_epoch"] - d["acc_after_step"] for d in shown)
    r = runner.invoke(app, base)  # the table renders
    assert r.exit_code == 0 and "forgetting value" in r.output
    # the store is read by the analysis alone: no torch in a fresh process
    code = (
        "import sys; from typer.testing import CliRunner; from estbench.cli import app\n"
        f"r = CliRunner().invoke(app, {base!r} + ['--show', 'rows'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules, 'variance forgetting imported torch'\n"
        "import estbench.analysis.forgetting, estbench.store.forgetting\n"
        "assert 'torch' not in sys.modules\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr + p.stdout


def test_bad_input_is_one_line(env, runner):
    store, data, tmp_path = env
    common = ["--store", store, "--data-dir", str(data), "--threads", "1"]
    base = ["variance", "forgetting", "--space", "toy", "--store", store]
    assert "no training run 'nope' for toy" in one_line_error(runner.invoke(app, [*base, "--run", "nope"]))
    r = runner.invoke(app, ["train", "--space", "toy", "--run", "plain", "--epochs", "2", *CLI_TRAIN, *common])
    assert r.exit_code == 0, r.output
    line = one_line_error(runner.invoke(app, [*base, "--run", "plain"]))
    assert "run 'plain' has no forgetting probes" in line and "--probe-forgetting N" in line
    r = runner.invoke(app, ["train", "--space", "toy", "--run", "p", "--epochs", "2", *CLI_TRAIN, *PROBE, *common])
    assert r.exit_code == 0, r.output
    line = one_line_error(runner.invoke(app, [*base, "--run", "p", "--epoch", "9", "--epoch", "1"]))
    assert "no forgetting probes at epoch 9; probed epochs: 1-2" in line
    assert "--show 'all'" in one_line_error(runner.invoke(app, [*base, "--run", "p", "--show", "all"]))
    before = Store(store, read_only=True).query("SELECT count(*) FROM runs")[1]
    t = ["train", "--space", "toy", "--run", "q", "--epochs", "1", *CLI_TRAIN, *common]
    assert "--probe-forgetting -1" in one_line_error(runner.invoke(app, [*t, "--probe-forgetting", "-1"]))
    assert "--probe-batch 0" in one_line_error(
        runner.invoke(app, [*t, "--probe-forgetting", "2", "--probe-batch", "0"])
    )
    line = one_line_error(runner.invoke(app, [*t, "--probe-forgetting", "2", "--probe-batch", "64"]))
    assert "validation split holds only 40 images" in line
    assert Store(store, read_only=True).query("SELECT count(*) FROM runs")[1] == before  # nothing recorded
