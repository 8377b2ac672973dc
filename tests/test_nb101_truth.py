"""NAS-Bench-101 truth readers: the official tfrecord (fixtures in the official framing),
the nasbench-vis JSON copies and NASLib's zero-cost file."""

import json
from pathlib import Path

import pytest

from estbench.errors import BadInput, MissingData
from estbench.spaces.nb101 import truth as T
from estbench.spaces.nb101.tfrecord import EvaluationData, ModelMetrics, Row, encode_row, write_records
from estbench.truth.model import metric_from_column

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nb101"
H1, H2 = "a" * 32, "b" * 32
ADJ1 = "0110000000100000010000000100000001000000010000000"
OPS1 = "input,conv3x3-bn-relu,conv1x1-bn-relu,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,output"


def run(h, epochs, valid, test, adj="011001000", ops="input,maxpool3x3,output", params=1000, train=1.0):
    evals = [EvaluationData(0.0, 0.0, 0.1, 0.1, 0.1), EvaluationData(epochs / 2, 5.0, 0.5, 0.5, 0.5)]
    evals.append(EvaluationData(float(epochs), 10.0, train, valid, test))
    return encode_row(Row(h, epochs, adj, ops, ModelMetrics(evals, params, 12.0)))


def write(tmp_path, payloads, name="nb.tfrecord"):
    path = tmp_path / name
    write_records(path, payloads)
    return path


def test_metric_names_follow_estbench_columns():
    assert T.metric_name("valid") == "cifar10-valid"
    assert T.metric_name("test", 36) == "cifar10-test-36ep"
    assert T.metric_name("valid", 4, one_seed=True) == "cifar10-valid-4ep-1seed"
    for name in ("cifar10-valid", "cifar10-test-1seed", "cifar10-valid-12ep", "cifar10-test-4ep-1seed"):
        info = T.metric_info(name, "src")
        ref = metric_from_column(name.replace("-", "_"), 108, "src")
        assert (info.name, info.epoch, info.seed_mean) == (ref.name, ref.epoch, ref.seed_mean)
        assert "%" in info.description
    with pytest.raises(BadInput, match="NB101 split 'x'"):
        T.metric_name("x")


def test_official_means_repeat0_and_epochs(tmp_path):
    rows = [
        run(H1, 108, 0.90, 0.89, ADJ1, OPS1, params=2_000_000),
        run(H2, 108, 0.50, 0.40),
        run(H1, 108, 0.93, 0.92, ADJ1, OPS1),
        run(H1, 36, 0.80, 0.78, ADJ1, OPS1),
        run(H1, 108, 0.96, 0.95, ADJ1, OPS1),
    ]
    got = list(T.read_official(write(tmp_path, rows)))
    assert [r.module_hash for r in got] == [H1, H2]
    a, b = got
    assert a.params == 2_000_000 and b.params == 1000
    assert a.ops == OPS1.split(",") and len(a.matrix) == 7 and a.matrix[0] == [0, 1, 1, 0, 0, 0, 0]
    assert b.matrix == [[0, 1, 1], [0, 0, 1], [0, 0, 0]] and b.ops == ["input", "maxpool3x3", "output"]
    assert set(a.metrics) == {
        "cifar10-valid",
        "cifar10-test",
        "cifar10-valid-1seed",
        "cifar10-test-1seed",
        "cifar10-valid-36ep",
        "cifar10-test-36ep",
        "cifar10-valid-36ep-1seed",
        "cifar10-test-36ep-1seed",
    }
    assert a.metrics["cifar10-valid"] == pytest.approx(93.0)
    assert a.metrics["cifar10-test"] == pytest.approx(92.0)
    assert a.metrics["cifar10-valid-1seed"] == pytest.approx(90.0)
    assert a.metrics["cifar10-test-36ep"] == pytest.approx(78.0)
    assert b.metrics == pytest.approx(
        {"cifar10-valid": 50.0, "cifar10-test": 40.0, "cifar10-valid-1seed": 50.0, "cifar10-test-1seed": 40.0}
    )
    (c,) = T.read_official(write(tmp_path, [run(H2, 108, 0.5, 0.4, train=0.75)], "t.tfrecord"), splits=("train",))
    assert c.metrics == pytest.approx({"cifar10-train": 75.0, "cifar10-train-1seed": 75.0})


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"ops": "input,conv5x5,output"}, "unknown operation 'conv5x5'"),
        ({"ops": "conv3x3-bn-relu,maxpool3x3,output"}, "do not run from input to output"),
        ({"adj": "011101000"}, "not upper triangular"),
    ],
)
def test_official_bad_spec(tmp_path, kw, message):
    with pytest.raises(BadInput, match=rf"nb\.tfrecord row 0 \(hash a+\): .*{message}"):
        list(T.read_official(write(tmp_path, [run(H1, 108, 0.9, 0.9, **kw)])))


def test_official_bad_files(tmp_path):
    with pytest.raises(BadInput, match="holds no records"):
        list(T.read_official(write(tmp_path, [])))
    with pytest.raises(BadInput, match="no evaluation data"):
        list(T.read_official(write(tmp_path, [encode_row(Row(H1, 108, "0100", "input,output", ModelMetrics()))])))
    with pytest.raises(BadInput, match="record at byte 0: the record is a list of 2"):
        list(T.read_official(write(tmp_path, [b'["x", 1]'])))
    raw = bytearray((write(tmp_path, [run(H1, 108, 0.9, 0.9)])).read_bytes())
    (tmp_path / "cut.tfrecord").write_bytes(raw[:-3])
    with pytest.raises(BadInput, match=r"cut\.tfrecord: truncated record at byte 0"):
        list(T.read_official(tmp_path / "cut.tfrecord"))
    with pytest.raises(MissingData):
        list(T.read_official(tmp_path / "none.tfrecord"))


# ---- nasbench-vis ------------------------------------------------------------------------


def vis(n=2, spec=True):
    d = {
        "key": [H1, H2][:n],
        "4_final_validation_accuracy": [0.25, 0.125][:n],
        "12_final_validation_accuracy": [0.5, 0.25][:n],
        "36_final_validation_accuracy": [0.75, 0.5][:n],
        "108_final_validation_accuracy": [0.875, 0.625][:n],
        "final_training_time": [1.0, 2.0][:n],
        "trainable_parameters": [100, 200][:n],
    }
    if spec:
        pad = [[0.0] * 7 for _ in range(7)]
        pad[0][1] = pad[1][2] = pad[0][2] = 1.0  # input -> maxpool -> output, input -> output; 4 pads
        full = [[float(j == i + 1) for j in range(7)] for i in range(7)]
        d["adjacency"] = [full, pad][:n]
        d["operations"] = [[-1, 0, 1, 2, 0, 1, -2], [-1, 2, -2, -3, -3, -3, -3]][:n]
    return d


def dump(tmp_path, obj, name="vis.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def test_vis_1k(tmp_path):
    a, b = T.read_vis_1k(dump(tmp_path, vis()))
    assert a.module_hash == H1 and a.params == 100
    assert a.ops == [
        "input",
        "conv3x3-bn-relu",
        "conv1x1-bn-relu",
        "maxpool3x3",
        "conv3x3-bn-relu",
        "conv1x1-bn-relu",
        "output",
    ]
    assert a.metrics == {
        "cifar10-valid-4ep-1seed": 25.0,
        "cifar10-valid-12ep-1seed": 50.0,
        "cifar10-valid-36ep-1seed": 75.0,
        "cifar10-valid-1seed": 87.5,
    }
    assert b.matrix == [[0, 1, 1], [0, 0, 1], [0, 0, 0]] and b.ops == ["input", "maxpool3x3", "output"]


def test_vis_20k(tmp_path):
    (a, b) = T.read_vis_20k(dump(tmp_path, vis(spec=False)))
    assert (b.module_hash, b.matrix, b.ops, b.params) == (H2, None, None, 200)
    assert b.metrics["cifar10-valid-1seed"] == 62.5


def _broken(change):
    d = vis()
    change(d)
    return d


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2], "expected a JSON object of columns"),
        (_broken(lambda d: d.pop("36_final_validation_accuracy")), "missing column.*36_final_validation_accuracy"),
        (_broken(lambda d: d["trainable_parameters"].pop()), "columns have different lengths"),
        (_broken(lambda d: d.update(key="x")), "column key is not a list"),
        (_broken(lambda d: d["key"].__setitem__(1, H1)), "entry 1: hash a+ appears again"),
        (_broken(lambda d: d["key"].__setitem__(0, "ABC")), "entry 0: module hash 'ABC'"),
        (_broken(lambda d: d["108_final_validation_accuracy"].__setitem__(0, 93.0)), "accuracy 93.0 is not a fraction"),
        (_broken(lambda d: d["trainable_parameters"].__setitem__(0, 1.5)), "trainable_parameters 1.5"),
        (_broken(lambda d: d["operations"][0].__setitem__(3, 7)), "unknown operation code 7"),
        (_broken(lambda d: d["operations"][0].__setitem__(0, 0)), "do not run from input to output"),
        (_broken(lambda d: d["operations"][1].__setitem__(1, -3)), "padding vertices"),
        (_broken(lambda d: d["adjacency"][0][3].__setitem__(0, 1.0)), "not upper triangular"),
        (_broken(lambda d: d["adjacency"][0].pop()), "not a matrix and a list of the same size"),
        (_broken(lambda d: d["adjacency"][0][2].__setitem__(1, 0.5)), "not a 7x7 matrix of 0/1"),
        ({**vis(0)}, "holds no architectures"),
    ],
)
def test_vis_bad(tmp_path, data, message):
    with pytest.raises(BadInput, match=message) as e:
        T.read_vis_1k(dump(tmp_path, data))
    assert "\n" not in str(e.value)


def test_vis_not_json(tmp_path):
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(BadInput, match=r"x\.json: not a JSON file"):
        T.read_vis_20k(tmp_path / "x.json")
    with pytest.raises(MissingData):
        T.read_vis_1k(tmp_path / "missing.json")


# ---- NASLib ------------------------------------------------------------------------------

SCORES = {s: float(i) for i, s in enumerate(T.NASLIB_SCORES)}


def naslib_key(matrix, codes):
    return str(tuple([x for row in matrix for x in row] + codes))


def test_naslib_zc(tmp_path):
    spec = pytest.importorskip("estbench.spaces.nb101.spec")
    m = [[0] * 7 for _ in range(7)]
    m[0][1] = m[1][6] = m[0][6] = 1
    m[2][3] = m[3][6] = 1  # vertices 2 and 3: no path from the input, pruned away
    key = naslib_key(m, [0, 2, 3, 4, 4, 4, 1])
    path = dump(tmp_path, {"nasbench101": {"cifar10": {key: {**SCORES, "val_accuracy": 91.5}}}}, "zc.json")
    (p,) = T.read_naslib_zc(path)
    assert p.key == key and p.scores == SCORES
    assert p.record.ops == ["input", "maxpool3x3", "output"]
    assert p.record.matrix == [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert p.record.module_hash == spec.module_hash(spec.prune(p.record.matrix, p.record.ops))
    assert p.record.metrics == {"cifar10-valid-1seed": 91.5} and p.record.params is None


@pytest.mark.parametrize(
    "rows, message",
    [
        ({}, "holds no architectures"),
        ({"(0, 1)": {}}, "key is not 49 adjacency digits"),
        ({"os.system('x')": {}}, "key is not a tuple of integers"),
        (
            {naslib_key([[0] * 7] * 7, [0, 2, 2, 2, 2, 2, 1]): {**SCORES, "val_accuracy": 90}},
            "zc.json .*no path from the input",
        ),
        ({naslib_key([[0, 1] + [0] * 5] + [[0] * 7] * 6, [0, 9, 2, 2, 2, 2, 1]): {}}, "op codes outside 0..4"),
    ],
)
def test_naslib_bad(tmp_path, rows, message):
    pytest.importorskip("estbench.spaces.nb101.spec")
    with pytest.raises(BadInput, match=message):
        T.read_naslib_zc(dump(tmp_path, {"nasbench101": {"cifar10": rows}}, "zc.json"))


def test_naslib_bad_values(tmp_path):
    pytest.importorskip("estbench.spaces.nb101.spec")
    m = [[0] * 7 for _ in range(7)]
    m[0][6] = 1
    key = naslib_key(m, [0, 2, 2, 2, 2, 2, 1])
    for entry, message in (
        ({**SCORES, "val_accuracy": 0.9e3}, "val_accuracy 900.0 is not a percentage"),
        ({**SCORES, "val_accuracy": 90, "snip": "x"}, "proxy snip is 'x'"),
        ([], "entry is a list"),
    ):
        with pytest.raises(BadInput, match=message):
            T.read_naslib_zc(dump(tmp_path, {"nasbench101": {"cifar10": {key: entry}}}, "zc.json"))
    with pytest.raises(BadInput, match="expected"):
        T.read_naslib_zc(dump(tmp_path, {"nasbench201": {}}, "zc.json"))


# ---- the real files ----------------------------------------------------------------------


@pytest.mark.data
def test_real_vis_and_naslib_files():
    if not SHARED.is_dir():
        pytest.skip("real data not found")
    spec = pytest.importorskip("estbench.spaces.nb101.spec")
    one_k = T.read_vis_1k(SHARED / "nasbench_vis_1k.json")
    assert len(one_k) == 1000
    # the op codes 0/1/2 are the official hash labels: every spec hashes to its key
    assert all(spec.module_hash(spec.prune(r.matrix, r.ops)) == r.module_hash for r in one_k)
    twenty = {r.module_hash: r for r in T.read_vis_20k(SHARED / "nasbench_vis_20k.json")}
    assert len(twenty) == 20001
    assert all(twenty[r.module_hash].metrics == r.metrics and twenty[r.module_hash].params == r.params for r in one_k)
    zc = T.read_naslib_zc(SHARED / "naslib_zc_nb101.json")
    assert len(zc) == 500 and len({p.record.module_hash for p in zc}) == 292
    shared = [p for p in zc if p.record.module_hash in twenty]
    assert len(shared) == 94
    # NASLib's params (millions) equal the official count except for one unpruned key
    same = sum(round(p.scores["params"] * 1e6) == twenty[p.record.module_hash].params for p in shared)
    assert same == 93
    accs = [r.metrics["cifar10-valid-1seed"] for r in twenty.values()]
    assert 9.0 < min(accs) and max(accs) < 96.0
