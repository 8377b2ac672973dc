"""Zero-shot measures on trained weights (`score --weights supernet:RUN@EPOCH`, paper
Table A11) and `variance epochs`, on the toy space: a tiny supernet run trains in
seconds; stored values are checked against a direct computation (the supernet built by
hand from the checkpoint, the candidate scored with ``engine.score_model``), the table
against a direct numpy Kendall tau-b and P@topK."""

import json

import numpy as np
import pytest
import torch
from bias_support import make_store
from tests_support import one_line_error, write_fake_cifar

from estbench.cli import app
from estbench.config import config_hash
from estbench.runs.loop import record_config
from estbench.spaces import get_space
from estbench.store import ScoreKey, ScoreRow
from estbench.store.store import Store

TRAIN = ["--preset", "cpu-small", "--train-images", "64", "--batch-size", "32", "--checkpoint-every", "1"]
ZS = ["--batches", "2", "--batch-size", "16"]
MEASURES = ["--zse", "plain", "--zse", "synflow"]


@pytest.fixture
def env(tmp_path, runner, toy_truth_file, monkeypatch):
    """A store with toy truth and run u1 (2 epochs, checkpoints at 1 and 2); ``init``: the
    weights the trainer built before its first step, captured from inside training."""
    import estbench.estimators.oneshot.train as train_mod

    data = write_fake_cifar(tmp_path / "data", n_per_batch=40)
    store = str(tmp_path / "zt.duckdb")
    common = ["--store", store, "--data-dir", str(data)]
    r = runner.invoke(app, ["truth", "load", "--space", "toy", "--file", str(toy_truth_file), "--store", store])
    assert r.exit_code == 0, r.output
    captured = {}
    real_build = train_mod.build_supernet

    def recording_build(cfg, space):
        model = real_build(cfg, space)
        captured.setdefault("init", {k: v.detach().clone() for k, v in model.state_dict().items()})
        return model

    with monkeypatch.context() as m:
        m.setattr(train_mod, "build_supernet", recording_build)
        r = runner.invoke(app, ["train", "--space", "toy", "--run", "u1", "--epochs", "2", *TRAIN, *common])
    assert r.exit_code == 0, r.output
    return store, common, data, tmp_path, captured["init"]


def run(runner, *args):
    return runner.invoke(app, list(args))


def rows_of(store, sql, params=None):
    with Store(store, read_only=True) as st:
        return st.query(sql, params)[1] if params else st.query(sql)[1]


def direct_values(space, weights, arch_str, data_dir, measures=("plain", "synflow")):
    """Per batch, the measures of ``arch_str`` as a candidate of a supernet built here
    from ``weights`` (dropout off), on the fixed training batches (seed 0)."""
    from estbench.data.cifar10 import fixed_batches, load_cifar10
    from estbench.data.lookup import DataDir
    from estbench.estimators.zeroshot.engine import score_model

    net = space.supernet(dropout=0.0, **space.supernet_settings(weights))
    net.load_state_dict(weights)
    cand = space.candidate(net, space.parse(arch_str), True)
    batches = fixed_batches(load_cifar10(DataDir(str(data_dir)), "train"), 16, 2, seed=0)
    out = []
    for x, y in batches:
        values, _, errors = score_model(cand, x, y, list(measures))
        assert not errors
        out.append(values)
    return out


def test_trained_weights_rows_config_values_resume(runner, env):
    store, common, data, _, init = env
    toy = get_space("toy")
    r = run(runner, "score", "--space", "toy", *MEASURES, "--weights", "supernet:u1@0,2", *ZS, *common)
    assert r.exit_code == 0, r.output
    # a second call adds epoch 1 to the same configs
    r = run(runner, "score", "--space", "toy", *MEASURES, "--weights", "supernet:u1@1", *ZS, *common)
    assert r.exit_code == 0, r.output
    got = rows_of(
        store,
        "SELECT estimator, epoch, seed, count(DISTINCT config_hash), count(DISTINCT arch_id), count(*) "
        "FROM scores GROUP BY ALL ORDER BY ALL",
    )
    assert got == [("plain", e, 20, 1, 27, 54) for e in (0, 1, 2)] + [("synflow", e, 20, 1, 27, 27) for e in (0, 1, 2)]
    # one config per measure over all epochs; the run's identity (no epoch, no seed) under init
    cfgs = rows_of(store, "SELECT estimator, config, label FROM configs ORDER BY 1")
    assert [c[0] for c in cfgs] == ["plain", "synflow"]
    for _, config, label in cfgs:
        settings = json.loads(config)
        train = settings["init"]["supernet"]
        assert label == "supernet:u1" and "seed" not in train and "epochs" not in train
        assert train["sampler"] == "uniform" and (settings["c"], settings["n"]) == (train["c"], train["n"])
    # values equal a direct computation at a checkpoint epoch and at epoch 0
    from estbench.estimators.oneshot.checkpoint import load_checkpoint

    run_dir = data.parent / "estbench_runs" / "toy" / "u1"
    ckpt2 = load_checkpoint(run_dir / "epoch_00002.pt")["model"]
    strs = {i: s for i, s in rows_of(store, "SELECT arch_id, arch_str FROM archs WHERE space = 'toy'")}
    for arch_id in (5, 26):
        for epoch, weights in ((2, ckpt2), (0, init)):
            direct = direct_values(toy, weights, strs[arch_id], data)
            stored = dict(
                ((m, b), v)
                for m, b, v in rows_of(
                    store,
                    f"SELECT estimator, batch, value FROM scores WHERE arch_id = {arch_id} AND epoch = {epoch}",
                )
            )
            assert stored[("plain", 0)] == pytest.approx(direct[0]["plain"], rel=1e-9, abs=0)
            assert stored[("plain", 1)] == pytest.approx(direct[1]["plain"], rel=1e-9, abs=0)
            assert stored[("synflow", 0)] == pytest.approx(direct[0]["synflow"], rel=1e-9, abs=0)
    # the epochs differ (trained weights are not the initial ones)
    by_epoch = dict(rows_of(store, "SELECT epoch, sum(value) FROM scores WHERE estimator = 'plain' GROUP BY 1"))
    assert len({round(v, 12) for v in by_epoch.values()}) == 3
    # resumable: a rerun computes nothing
    r = run(runner, "score", "--space", "toy", *MEASURES, "--weights", "supernet:u1", *ZS, *common)
    assert r.exit_code == 0, r.output
    assert r.output.count("54 requested, 54 cached, 0 computed") == 2  # epochs 1 and 2 (supernet:u1 = checkpoints)
    # criteria: one row per epoch
    r = run(runner, "criteria", "--space", "toy", "--protocol", "iso", "--store", store, "-f", "json")
    assert r.exit_code == 0, r.output
    shown = sorted((d["estimator"], d["epoch"]) for d in json.loads(r.output))
    assert shown == [("plain", 0), ("plain", 1), ("plain", 2), ("synflow", 0), ("synflow", 1), ("synflow", 2)]


def test_epoch_zero_is_the_runs_initialisation(env):
    """`@0` rebuilds what training started from (captured inside train_supernet), and
    leaves the caller's RNG streams alone."""
    import random

    from estbench.estimators.oneshot.train import TrainConfig
    from estbench.runs.zeroshot import initial_weights

    store, _, _, _, init = env
    config = dict(json.loads(rows_of(store, "SELECT config FROM runs WHERE kind = 'train'")[0][0]))
    config.pop("run_dir")
    torch.manual_seed(123)
    random.seed(5)
    before = (torch.rand(1).item(), random.random())
    torch.manual_seed(123)
    random.seed(5)
    rebuilt = initial_weights(TrainConfig.from_dict(config), get_space("toy"))
    assert (torch.rand(1).item(), random.random()) == before
    assert rebuilt.keys() == init.keys()
    assert all(torch.equal(rebuilt[k], init[k]) for k in init)
    other = initial_weights(TrainConfig.from_dict({**config, "seed": 21}), get_space("toy"))
    assert not all(torch.equal(other[k], init[k]) for k in init if init[k].is_floating_point())


def test_trained_weights_bad_input(runner, env):
    store, common, data, _, _ = env
    bad = [
        ("supernet:nope@1", "no training run 'nope' for toy in the store (known: u1)"),
        ("supernet:u1@7", "no checkpoint at epoch 7; saved epochs: 1, 2"),
        ("supernet:u1@", "expected supernet:RUN@EPOCH"),
        ("supernet:u1@x", "expected supernet:RUN@EPOCH"),
        ("supernet:u1@1,,2", "expected supernet:RUN@EPOCH"),
        ("supernet:", "expected supernet:RUN@EPOCH"),
        ("supernet:../u1@1", "expected supernet:RUN@EPOCH"),
        ("pretrained", "unknown --weights 'pretrained'"),
    ]
    for weights, message in bad:
        r = run(runner, "score", "--space", "toy", *MEASURES, "--weights", weights, *ZS, *common)
        assert message in one_line_error(r), (weights, r.output)
    r = run(runner, "score", "--space", "toy", "--zse", "all", "--weights", "supernet:u1@1", *ZS, *common)
    assert "vote and vote_borda are not computed on trained weights" in one_line_error(r)
    r = run(runner, "score", "--space", "toy", *MEASURES, "--weights", "supernet:u1@1", "--seed", "3", *common)
    assert "--seed does not apply" in one_line_error(r)
    r = run(runner, "score", "--space", "toy", *MEASURES, "--weights", "supernet:u1@1", "--channels", "16", *common)
    assert "--channels 16 (the run's is 8)" in one_line_error(r)
    assert rows_of(store, "SELECT count(*) FROM scores")[0][0] == 0
    # a checkpoint of another space in the run's folder
    from estbench.estimators.oneshot.checkpoint import load_checkpoint, save_checkpoint

    path = data.parent / "estbench_runs" / "toy" / "u1" / "epoch_00001.pt"
    state = load_checkpoint(path)
    save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")} | {"space": "nb201"}, path)
    r = run(runner, "score", "--space", "toy", *MEASURES, "--weights", "supernet:u1@1", *ZS, *common)
    assert "a checkpoint of a nb201 supernet, not toy" in one_line_error(r)


def test_vote_refuses_trained_weights_in_the_library(tmp_path):
    from estbench.errors import BadInput
    from estbench.runs.vote import score_vote

    with Store(str(tmp_path / "v.duckdb")) as st:
        with pytest.raises(BadInput, match="not computed on trained weights"):
            score_vote(st, "toy", ["synflow", "plain"], {"init": "supernet:u1@5"}, ["vote"])


# ---- variance epochs against numpy --------------------------------------------------------
def tau_b(y: np.ndarray, s: np.ndarray) -> float:
    """Kendall's tau-b over all pairs, written out."""
    i, j = np.triu_indices(len(y), 1)
    dy, ds = np.sign(y[i] - y[j]), np.sign(s[i] - s[j])
    n0 = len(i)
    return float(np.sum(dy * ds) / np.sqrt((n0 - np.sum(dy == 0)) * (n0 - np.sum(ds == 0))))


def p_top(y: np.ndarray, s: np.ndarray, ids: np.ndarray, k: float) -> float:
    """Share of the top-k by score among the top-k by truth (higher is better; ties by id)."""
    m = len(y)
    c = max(1, int(np.floor(k * m + 1e-9)))
    top_y = set(ids[np.lexsort((ids, -y))][:c].tolist())
    top_s = set(ids[np.lexsort((ids, -s))][:c].tolist())
    return len(top_y & top_s) / c


def test_variance_epochs_against_numpy(runner, tmp_path):
    """os_acc at epochs 5 and 10 over two seeds and two batches, a zero-shot-like
    estimator at epoch 0: every cell equals tau-b / P@topK of the seed- and batch-mean
    scores, computed here; an unscored epoch is an empty cell."""
    path = str(tmp_path / "syn.duckdb")
    syn = make_store(path, "toy", {"synflow": ("synflow", 0.5)})
    rng = np.random.default_rng(3)
    n = len(syn.arch_strs)
    base = syn.truth["cifar10-test"]
    os_values = {}  # epoch -> (seeds x batches x archs)
    with Store(path) as st:
        settings = {"space": "toy", "synthetic": "os"}
        chash = record_config(st, "os_acc", settings)
        assert chash == config_hash({"estimator": "os_acc", **settings})
        rows = []
        for epoch, noise in ((5, 4.0), (10, 1.0)):
            v = base[None, None, :] / 100 + rng.normal(0, noise / 100, size=(2, 2, n))
            os_values[epoch] = v
            for si, seed in enumerate((20, 2020)):
                key = ScoreKey("toy", "os_acc", chash, epoch, seed)
                rows += [ScoreRow.of(key, a, b, float(v[si, b, a]), 0.0, None) for b in range(2) for a in range(n)]
        st.upsert_scores(rows)
    ids = np.arange(n)
    for k_opt, k in (("5%", 0.05), ("0.2", 0.2)):
        r = run(runner, "variance", "epochs", "--space", "toy", "--protocol", "iso", "--k", k_opt, "--store", path)
        assert r.exit_code == 0, r.output
        r = run(
            runner,
            "variance",
            "epochs",
            "--space",
            "toy",
            "--protocol",
            "iso",
            "--k",
            k_opt,
            "--store",
            path,
            "-f",
            "json",
        )
        assert r.exit_code == 0, r.output
        out = {d["estimator"]: d for d in json.loads(r.output)}
        tag = f"{k * 100:g}%"
        assert list(out) == ["flops", "os_acc", "params", "synflow"]
        assert list(out["os_acc"])[3:] == [f"{c}@ep{e}" for e in (0, 5, 10) for c in ("points", "kd", f"p_top@{tag}")]
        for epoch in (5, 10):
            s = os_values[epoch].mean(axis=1).mean(axis=0)  # batches, then seeds
            assert out["os_acc"][f"points@ep{epoch}"] == n
            assert out["os_acc"][f"kd@ep{epoch}"] == pytest.approx(tau_b(base, s), abs=1e-12)
            assert out["os_acc"][f"p_top@{tag}@ep{epoch}"] == pytest.approx(p_top(base, s, ids, k), abs=1e-12)
        assert out["os_acc"]["kd@ep0"] is None and out["synflow"]["kd@ep5"] is None
        s0 = syn.scores["synflow"]
        assert out["synflow"]["kd@ep0"] == pytest.approx(tau_b(base, s0), abs=1e-12)
        assert out["synflow"][f"p_top@{tag}@ep0"] == pytest.approx(p_top(base, s0, ids, k), abs=1e-12)
    # --epoch narrows the columns; --seed picks one supernet
    r = run(
        runner, "variance", "epochs", "--space", "toy", "--protocol", "iso", "-e", "os_acc", "--epoch", "10",
        "--seed", "2020", "--store", path, "-f", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)
    s = os_values[10][1].mean(axis=0)
    assert [c for c in row if c.startswith("kd@")] == ["kd@ep10"]
    assert row["kd@ep10"] == pytest.approx(tau_b(base, s), abs=1e-12)
    # errors: one line, exit 2
    for args, message in (
        (["--k", "0"], "--k '0'"),
        (["--k", "five"], "--k 'five'"),
        (["-e", "nope"], "nope"),
        (["--epoch", "7"], "nothing to show"),
    ):
        r = run(runner, "variance", "epochs", "--space", "toy", "--store", path, *args)
        assert message in one_line_error(r), (args, r.output)


def test_variance_epochs_on_trained_zse(runner, env):
    """The table of ZSEs on trained weights next to os_acc: the cells of `criteria`."""
    store, common, _, _, _ = env
    r = run(runner, "score", "--space", "toy", *MEASURES, "--weights", "supernet:u1@0,1,2", *ZS, *common)
    assert r.exit_code == 0, r.output
    r = run(runner, "score", "--space", "toy", "--ose", "u1", "--epoch", "1", "--epoch", "2", *ZS, *common)
    assert r.exit_code == 0, r.output
    r = run(runner, "criteria", "--space", "toy", "--store", store, "-f", "json")
    crit = {(d["estimator"], d["epoch"]): d for d in json.loads(r.output)}
    r = run(runner, "variance", "epochs", "--space", "toy", "--store", store, "-f", "json")
    assert r.exit_code == 0, r.output
    table = {d["estimator"]: d for d in json.loads(r.output)}
    assert set(table) == {"os_acc", "os_loss", "plain", "synflow"}
    for (est, epoch), d in crit.items():
        assert table[est][f"kd@ep{epoch}"] == pytest.approx(d["kd"], abs=1e-12)
        assert table[est][f"p_top@5%@ep{epoch}"] == pytest.approx(d["p_top@5%"], abs=1e-12)
        assert table[est][f"points@ep{epoch}"] == d["points"]
    assert table["os_acc"]["kd@ep0"] is None and table["plain"]["kd@ep0"] is not None
    r = run(runner, "variance", "epochs", "--space", "toy", "--store", store)
    assert r.exit_code == 0 and "KD ep0" in r.output and "P@top5% ep2" in r.output
