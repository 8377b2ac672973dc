"""NB301 measured truth: NASLib's zero-cost table and NB301's training-data json
directories (fixtures written in their formats), the ``surrogate`` flag of metrics in the
store (migration, ``truth list``, ``--merge`` refusal)."""

import json
from pathlib import Path

import pytest
from conftest import app
from tests_support import one_line_error

from estbench.errors import BadInput, MissingData
from estbench.spaces.nb301 import genotype as gt
from estbench.spaces.nb301 import truth as T
from estbench.store import store as store_mod
from estbench.store.schema import MIGRATIONS
from estbench.store.store import Store
from estbench.truth.model import MetricInfo, TruthTable

NORMAL = (("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
          ("skip_connect", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("dil_conv_3x3", 2))  # fmt: skip
REDUCE = (("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
          ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1))  # fmt: skip
A = gt.make(NORMAL, REDUCE)
B = gt.make(REDUCE, NORMAL)
C = gt.make(NORMAL, NORMAL)
HYPER = {
    "SimpleLearningrateSchedulerSelector:cosine_annealing:T_max": 100,
    "NetworkSelectorDatasetInfo:darts:init_channels": 32,
    "NetworkSelectorDatasetInfo:darts:layers": 8,
    "OptimizerSelector:sgd:learning_rate": 0.025,
}


# ---- NASLib's table ------------------------------------------------------------------------


def write_naslib(tmp_path: Path, rows: dict, name: str = "naslib_zc_nb301.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"cifar10": rows}))
    return path


def naslib_entry(acc):
    return {"val_accuracy": acc, "params": {"score": 0.8, "time": 0.1}, "synflow": {"score": 1.0, "time": 0.2}}


def test_naslib_table_gives_one_seed_valid_at_100_epochs(tmp_path):
    path = write_naslib(tmp_path, {gt.to_naslib(A): naslib_entry(93.5), gt.to_naslib(B): naslib_entry(91.25)})
    known = {gt.to_str(B): 7}
    t = T.read_naslib(path, known)
    assert t.arch_strs == [gt.to_str(A), gt.to_str(B)]
    assert t.arch_ids == [-1, 7]  # A is new to the store (open space): load_truth adds it
    info = t.metrics["cifar10-valid-1seed"]
    assert (info.epoch, info.seed_mean, info.surrogate, info.higher_is_better) == (100, False, False, True)
    assert "one training run" in info.description and "%" in info.description
    assert t.values["cifar10-valid-1seed"] == [93.5, 91.25]


def test_naslib_keys_of_one_arch_merge_when_equal_and_are_refused_when_not(tmp_path):
    key = gt.to_naslib(A)
    swapped = str([[cell[1], cell[0], *cell[2:]] for cell in json.loads(key.replace("(", "[").replace(")", "]"))])
    assert gt.from_naslib(swapped) == A and swapped != key  # operands written the other way round
    t = T.read_naslib(write_naslib(tmp_path, {key: naslib_entry(93.5), swapped: naslib_entry(93.5)}), {})
    assert (len(t.arch_ids), t.duplicates) == (1, 1)
    path = write_naslib(tmp_path, {key: naslib_entry(93.5), swapped: naslib_entry(92.0)})
    with pytest.raises(BadInput, match="same architecture .* another val_accuracy"):
        T.read_naslib(path, {})


@pytest.mark.parametrize(
    "content, match",
    [
        ("not json", "not a JSON file"),
        ('{"cifar100": {}}', r"expected \{'cifar10'"),
        ('{"cifar10": {}}', "holds no architectures"),
        ('{"cifar10": {"[[(0, 9)], []]": {"val_accuracy": 90}}}', "op index 9"),
        ('{"cifar10": {"KEY": {"val_accuracy": 190}}}', "val_accuracy 190 is not a percentage"),
        ('{"cifar10": {"KEY": {"params": 1}}}', "val_accuracy None"),
        ('{"cifar10": {"KEY": 5}}', "entry is a int"),
    ],
)
def test_naslib_bad_files_are_one_line_naming_the_file(tmp_path, content, match):
    path = tmp_path / "z.json"
    path.write_text(content.replace("KEY", gt.to_naslib(A)))
    with pytest.raises(BadInput, match=match) as exc:
        T.read_naslib(path, {})
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_naslib_missing_file_and_unknown_metric(tmp_path):
    with pytest.raises(MissingData, match="does not exist"):
        T.read_naslib(tmp_path / "nope.json", {})
    path = write_naslib(tmp_path, {gt.to_naslib(A): naslib_entry(93.5)})
    with pytest.raises(BadInput, match="no metric cifar10-test"):
        T.read_naslib(path, {}, metrics=["cifar10-test"])
    assert list(T.read_naslib(path, {}, metrics=["cifar10-valid-1seed"]).metrics) == ["cifar10-valid-1seed"]


# ---- NB301's training-data directories ------------------------------------------------------


def write_run(path: Path, g, val, test=None, budget=100, hyper=None, config=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = config if config is not None else {**HYPER, **(hyper or {}), **gt.to_config(g)}
    info = [{"train_loss": 0.7, "val_accuracy": val, "val_cross_entropy": 0.2, "epochs": 98}]
    data = {"final_metric_score": -val, "optimized_hyperparamater_config": cfg, "budget": budget, "info": info,
            "runtime": 1234}  # fmt: skip
    if test is not None:
        data["test_accuracy"] = test
    path.write_text(json.dumps(data))
    return path


def test_nb301_dir_means_repeated_runs_and_reads_test_where_present(tmp_path):
    root = tmp_path / "nb_301_v13_lc_iclr_final"
    write_run(root / "rs" / "results_1.json", A, 93.0, 92.5)
    write_run(root / "darts" / "results_0.json", B, 90.0)  # no test accuracy
    write_run(root / "rs" / "results_0.json", A, 94.0, 93.5)  # a second run of A
    write_run(root / "re" / "results_7.json", C, 91.0, 90.0)
    t = T.read_nb301_dir(root, {gt.to_str(C): 3})
    # sorted by relative path: darts/results_0, re/results_7, rs/results_0, rs/results_1
    assert t.arch_strs == [gt.to_str(B), gt.to_str(C), gt.to_str(A)]
    assert t.arch_ids == [-1, 3, -1]
    assert t.values["cifar10-valid"] == [90.0, 91.0, 93.5]
    assert t.values["cifar10-test"] == [None, 90.0, 93.0]
    for name in ("cifar10-valid", "cifar10-test"):
        info = t.metrics[name]
        assert (info.epoch, info.seed_mean, info.surrogate) == (100, True, False)
        assert "4 runs of 3 archs; 1 with more than one" in info.description


def test_nb301_dir_of_single_runs_is_not_a_seed_mean_and_other_budgets_are_named(tmp_path):
    write_run(tmp_path / "a" / "results_0.json", A, 93.0)
    t = T.read_nb301_dir(tmp_path / "a", {})
    assert list(t.metrics) == ["cifar10-valid"]  # no file has test_accuracy
    assert not t.metrics["cifar10-valid"].seed_mean and "one training run" in t.metrics["cifar10-valid"].description
    hyper = {"SimpleLearningrateSchedulerSelector:cosine_annealing:T_max": 50}
    write_run(tmp_path / "b" / "results_0.json", A, 80.0, 79.0, budget=50, hyper=hyper)
    t = T.read_nb301_dir(tmp_path / "b", {})
    assert sorted(t.metrics) == ["cifar10-test-50ep", "cifar10-valid-50ep"]
    assert t.metrics["cifar10-valid-50ep"].epoch == 50


def test_nb301_dir_refuses_mixed_training_settings(tmp_path):
    write_run(tmp_path / "results_0.json", A, 93.0)
    other = tmp_path / "zfid" / "results_0.json"  # sorted after results_0.json
    write_run(other, B, 97.0, hyper={"NetworkSelectorDatasetInfo:darts:init_channels": 50})
    with pytest.raises(BadInput, match="50 channels.*100 epochs, 32 channels, 8 cells.*mixes training settings") as e:
        T.read_nb301_dir(tmp_path, {})
    assert str(other) in str(e.value)


def test_nb301_dir_bad_files_name_the_file(tmp_path):
    root = tmp_path / "d"
    write_run(root / "results_0.json", A, 93.0)
    cases = {
        "not json {": "not a JSON file",
        "[1, 2]": "expected an NB301 result object",
        json.dumps({"info": [{"val_accuracy": 90}]}): "no 'optimized_hyperparamater_config'",
        json.dumps({"optimized_hyperparamater_config": gt.to_config(A), "info": []}): r"no info\[0\]",
    }
    bad = root / "z" / "results_9.json"
    bad.parent.mkdir()
    for text, match in cases.items():
        bad.write_text(text)
        with pytest.raises(BadInput, match=match) as e:
            T.read_nb301_dir(root, {})
        assert str(bad) in str(e.value) and "\n" not in str(e.value)
    wrong_op = {**HYPER, **gt.to_config(A), "NetworkSelectorDatasetInfo:darts:edge_normal_0": "conv_7x7"}
    wrong_input = {**HYPER, **gt.to_config(A), "NetworkSelectorDatasetInfo:darts:inputs_node_normal_3": "0_3"}
    for cfg, match in ((wrong_op, "unknown op 'conv_7x7'"), (wrong_input, "takes input 3")):
        write_run(bad, A, 90.0, config=cfg)
        with pytest.raises(BadInput, match=match) as e:
            T.read_nb301_dir(root, {})
        assert str(bad) in str(e.value)
    write_run(bad, A, 190.0)
    with pytest.raises(BadInput, match="val_accuracy 190.0 is not a percentage"):
        T.read_nb301_dir(root, {})


def test_nb301_dir_missing_or_empty(tmp_path):
    with pytest.raises(MissingData, match="is not a directory"):
        T.read_nb301_dir(tmp_path / "nope", {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="no .json files"):
        T.read_nb301_dir(tmp_path / "empty", {})


def test_truth_load_of_a_dir_adds_archs_and_truth_list_shows_surrogate(tmp_path, runner):
    root = tmp_path / "data" / "nb301" / "nb_301_v13_lc_iclr_final"
    write_run(root / "rs" / "results_0.json", A, 93.0, 92.0)
    write_run(root / "rs" / "results_1.json", B, 91.0, 90.5)
    store = str(tmp_path / "s.duckdb")
    r = runner.invoke(app(), ["truth", "load", "--space", "nb301", "--file", str(root), "--store", store])
    assert r.exit_code == 0, r.output
    assert "2 architectures added" in r.output
    with Store(store) as st:
        assert st.arch_strings("nb301") == [gt.to_str(A), gt.to_str(B)]
        assert st.truth_values("nb301", "cifar10-test") == {0: 92.0, 1: 90.5}
        assert not st.metric_is_surrogate("nb301", "cifar10-valid")
        assert st.metric_info("nb301", "cifar10-valid").epoch == 100
    r = runner.invoke(app(), ["truth", "list", "--store", store, "--format", "csv"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0] == "space,metric,epoch,seed_mean,surrogate,archs,source"
    assert lines[1].startswith("nb301,cifar10-test,100,False,False,2,")
    bad = tmp_path / "bad"
    write_run(bad / "results_0.json", A, 93.0, config={"NetworkSelectorDatasetInfo:darts:edge_normal_0": "x"})
    r = runner.invoke(app(), ["truth", "load", "--space", "nb301", "--file", str(bad), "--store", store])
    assert str(bad / "results_0.json") in one_line_error(r)


# ---- the surrogate flag in the store ---------------------------------------------------------


def surrogate_table(ids, strs, values, name="cifar10-valid-1seed") -> TruthTable:
    t = TruthTable(ids, strs)
    t.add(MetricInfo(name=name, epoch=98, seed_mean=False, source="model.onnx", surrogate=True), values)
    return t


def test_migration_adds_surrogate_false_to_existing_metrics(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    monkeypatch.setattr(store_mod, "MIGRATIONS", [m for m in MIGRATIONS if m[0] < 7])
    with Store(path) as st:
        st.put_archs("toy", [{"arch_id": 0, "arch_str": "a", "iso_key": "a", "comp_key": "a", "degenerate": False}])
        st.query("INSERT INTO metrics (space, metric, epoch, seed_mean) VALUES ('toy', 'cifar10-test', 200, true)")
    monkeypatch.setattr(store_mod, "MIGRATIONS", MIGRATIONS)
    with Store(path) as st:
        assert st.schema_version() == MIGRATIONS[-1][0] >= 7
        assert not st.metric_is_surrogate("toy", "cifar10-test")
        assert not st.metric_is_surrogate("toy", "no-such-metric") and st.metric_info("toy", "x") is None
        st.put_truth("toy", surrogate_table([0], ["a"], [90.0], "cifar10-valid-surrogate"))
        assert st.metric_is_surrogate("toy", "cifar10-valid-surrogate")
        info = st.metric_info("toy", "cifar10-valid-surrogate")
        assert (info.epoch, info.surrogate, info.source) == (98, True, "model.onnx")
        assert "surrogate" in st.truth_metrics("toy")[0]


def test_merge_refuses_to_mix_surrogate_and_measured(tmp_path, monkeypatch):
    from estbench.data.lookup import DataDir
    from estbench.spaces import get_space
    from estbench.truth import load as load_mod

    space = get_space("nb301")
    naslib = write_naslib(tmp_path, {gt.to_naslib(A): naslib_entry(93.5)})
    with Store(tmp_path / "s.duckdb") as st:
        load_mod.load_truth(st, space, DataDir(None), str(naslib), "naslib", [])
        s_a, s_b = gt.to_str(A), gt.to_str(B)
        fake = surrogate_table([0, -1], [s_a, s_b], [92.0, 91.0])  # the measured metric's name, predicted values
        monkeypatch.setattr(load_mod, "read_truth", lambda *a, **k: fake)
        with pytest.raises(BadInput, match="never averaged with measured truth"):
            load_mod.load_truth(st, space, DataDir(None), str(naslib), "naslib", [], merge=True)
        assert st.arch_count("nb301") == 1 and st.truth_values("nb301", "cifar10-valid-1seed") == {0: 93.5}
        done = load_mod.load_truth(st, space, DataDir(None), str(naslib), "naslib", [], replace=True)
        assert done.n_values == 2 and st.metric_is_surrogate("nb301", "cifar10-valid-1seed")  # replacing is fine
        fake2 = surrogate_table([0, 1, -1], [s_a, s_b, gt.to_str(C)], [1.0, 2.0, 90.5])
        monkeypatch.setattr(load_mod, "read_truth", lambda *a, **k: fake2)
        done = load_mod.load_truth(st, space, DataDir(None), str(naslib), "naslib", [], merge=True)
        assert st.truth_values("nb301", "cifar10-valid-1seed") == {0: 92.0, 1: 91.0, 2: 90.5}  # surrogate + surrogate
        monkeypatch.setattr(load_mod, "read_truth", lambda *a, **k: T.read_naslib(naslib, {s_a: 0}))
        with pytest.raises(BadInput, match="holds a surrogate's predictions in the store and the file gives measured"):
            load_mod.load_truth(st, space, DataDir(None), str(naslib), "naslib", [], merge=True)


# ---- the real data -------------------------------------------------------------------------


@pytest.mark.data
def test_real_naslib_table_loads_725_distinct_archs(shared_data):
    path = shared_data / "nb301" / "naslib_zc_nb301.json"
    t = T.read_naslib(path, {})
    assert len(t.arch_strs) == len(set(t.arch_strs)) == 725 and t.duplicates == 0
    assert all(a == -1 for a in t.arch_ids)
    vals = t.values["cifar10-valid-1seed"]
    assert 91.0 < min(vals) < max(vals) < 95.0
    assert len({gt.canonical(gt.parse(s)) for s in t.arch_strs}) == 725  # no two isomorphic
    assert T.read_naslib(path, {t.arch_strs[5]: 42}).arch_ids[5] == 42
