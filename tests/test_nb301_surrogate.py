"""The NB301 ONNX surrogate: the input encoding (order from the parameter set, values from
the encoding json, written here), bad inputs, and on the real YAHPO model its ranking of
NASLib's 725 measured archs."""

import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from estbench.errors import BadInput, MissingData
from estbench.spaces.nb301 import genotype as gt
from estbench.spaces.nb301 import surrogate as S

OPS_LEVELS = ", ".join(f'"{o}"' for o in gt.OPS)
INPUT_LEVELS = {3: ("0_1", "0_2", "1_2"), 4: ("0_1", "0_2", "0_3", "1_2", "1_3", "2_3"),
                5: ("0_1", "0_2", "0_3", "0_4", "1_2", "1_3", "1_4", "2_3", "2_4", "3_4")}  # fmt: skip
PREFIX = "NetworkSelectorDatasetInfo_COLON_darts_COLON_"
A = gt.make(
    [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
     ("skip_connect", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
     ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
)  # fmt: skip


def param_names() -> list[str]:
    """YAHPO's declaration order: edges normal, edges reduce, inputs normal, inputs reduce."""
    names = [f"{PREFIX}edge_{c}_{e}" for c in gt.CELL_TYPES for e in range(14)]
    return names + [f"{PREFIX}inputs_node_{c}_{k}" for c in gt.CELL_TYPES for k in (3, 4, 5)]


def write_param_set(path: Path, names: list[str], epoch: tuple[int, int] = (1, 98)) -> Path:
    lines = ["ps = ParamSet$new(list("]
    for n in names:
        levels = OPS_LEVELS if "_edge_" in n else ", ".join(f'"{v}"' for v in INPUT_LEVELS[int(n[-1])])
        lines.append(f'  ParamFct$new("{n}",\n    levels = c({levels}),\n    default = "x"),')
    lines.append(
        f'  ParamInt$new("epoch", lower = {epoch[0]}L, upper = {epoch[1]}L, default = 1L, tags = "budget"))\n)'
    )
    lines.append(f'ps$add_dep("{names[2]}", on = "{names[-6]}", cond = CondAnyOf$new(c("0_1", "0_2")))')
    path.write_text("\n".join(lines))
    return path


def encoding(names: list[str]) -> dict[str, dict[str, int]]:
    """Codes as YAHPO's: #na# 0, then the values in sorted order (keys in sorted order too)."""
    out = {}
    for n in sorted(names):
        values = gt.OPS if "_edge_" in n else INPUT_LEVELS[int(n[-1])]
        out[n] = {"#na#": 0, **{v: k + 1 for k, v in enumerate(sorted(values))}}
    return out


def model_dir(tmp_path: Path, model: bytes | None = b"garbage, not a protobuf") -> Path:
    d = tmp_path / "yahpo"
    d.mkdir()
    write_param_set(d / "param_set_v2.R", param_names())
    (d / "encoding_v2.json").write_text(json.dumps(encoding(param_names())))
    if model is not None:
        (d / "model_v2.onnx").write_bytes(model)
    return d


def test_param_order_comes_from_the_param_set_file(tmp_path):
    names = param_names()
    order, bounds = S.read_param_order(write_param_set(tmp_path / "p.R", names, (1, 98)))
    assert order == [*names, "epoch"] and bounds == {"epoch": (1, 98)}
    shuffled = names[:]
    random.Random(0).shuffle(shuffled)
    assert S.read_param_order(write_param_set(tmp_path / "q.R", shuffled))[0][:-1] == shuffled


def test_encoder_follows_param_order_and_codes_inactive_edges_as_na(tmp_path):
    names = param_names()
    enc = encoding(names)
    row = S.Encoder(enc, [*names, "epoch"], "p.R").row(A)
    cfg = {k.replace(":", "_COLON_"): v for k, v in gt.to_config(A).items()}
    assert len(row) == 34 and sum(c != 0 for c in row) == 2 * 8 + 6  # 8 active edges + 3 input choices per cell
    for n, code in zip(names, row):
        assert code == (enc[n][cfg[n]] if n in cfg else 0)
    # normal node 0 = edges 0, 1: sep_conv_3x3 (code 6 among the sorted ops); inputs of node 3: "0_1"
    assert row[0] == row[1] == sorted(gt.OPS).index("sep_conv_3x3") + 1
    assert row[names.index(f"{PREFIX}inputs_node_normal_3")] == 1
    other = S.Encoder(enc, [*reversed(names), "epoch"], "p.R")
    assert other.row(A) == row[::-1]  # the file's order, not the encoding's


def test_encoder_refuses_a_parameter_set_that_does_not_fit(tmp_path):
    names = param_names()
    enc = encoding(names)
    with pytest.raises(BadInput, match="one continuous parameter, epoch"):
        S.Encoder(enc, names, "p.R")
    with pytest.raises(BadInput, match="is not in the parameter set"):
        S.Encoder(enc, [*names[1:], "epoch"], "p.R")
    bad = {**enc, names[0]: {k: v for k, v in enc[names[0]].items() if k != "#na#"}}
    with pytest.raises(BadInput, match=r"no code for an inactive value \(#na#\)"):
        S.Encoder(bad, [*names, "epoch"], "p.R")
    short = {**enc, names[0]: {"#na#": 0, "max_pool_3x3": 1}}
    with pytest.raises(BadInput, match="no value 'sep_conv_3x3'"):
        S.Encoder(short, [*names, "epoch"], "p.R").row(A)


def test_missing_and_invalid_companion_files_are_one_line(tmp_path):
    d = model_dir(tmp_path)
    (d / "encoding_v2.json").write_text("{not json")
    with pytest.raises(BadInput, match="encoding_v2.json: not a JSON file"):
        S.read_surrogate(d / "model_v2.onnx", {gt.to_str(A): 0})
    (d / "encoding_v2.json").write_text('{"a": {"#na#": "zero"}}')
    with pytest.raises(BadInput, match="expected {parameter: {value: integer code}}"):
        S.read_surrogate(d / "model_v2.onnx", {})
    (d / "encoding_v2.json").unlink()
    with pytest.raises(MissingData, match=f"{d / 'encoding_v2.json'} does not exist"):
        S.read_surrogate(d / "model_v2.onnx", {})
    (d / "encoding_v2.json").write_text(json.dumps(encoding(param_names())))
    (d / "param_set_v2.R").write_text("ps = list()")
    with pytest.raises(BadInput, match="no Param"):
        S.read_surrogate(d, {})  # the directory: its model_v2.onnx
    (d / "param_set_v2.R").unlink()
    with pytest.raises(MissingData, match="param_set_v2.R does not exist"):
        S.read_surrogate(d / "model_v2.onnx", {})
    with pytest.raises(MissingData, match="nope.onnx does not exist .*encoding_v2.json"):
        S.read_surrogate(tmp_path / "nope.onnx", {})
    assert S.companion_paths(Path("/x/model_v3.onnx")) == (Path("/x/encoding_v3.json"), Path("/x/param_set_v3.R"))


def test_epoch_and_metric_options_are_checked(tmp_path):
    d = model_dir(tmp_path)
    with pytest.raises(BadInput, match="predicts epochs 1..98"):
        S.read_surrogate(d / "model_v2.onnx", {}, epoch=100)
    with pytest.raises(BadInput, match="no metric cifar10-valid .*gives cifar10-valid-surrogate"):
        S.read_surrogate(d / "model_v2.onnx", {}, metrics=["cifar10-valid"])
    assert S.metric_name(98) == "cifar10-valid-surrogate" and S.metric_name(50) == "cifar10-valid-50ep-surrogate"


def test_a_file_that_is_not_onnx_is_one_line(tmp_path):
    pytest.importorskip("onnxruntime")
    d = model_dir(tmp_path)
    with pytest.raises(BadInput, match=r"model_v2.onnx: not an ONNX model \(") as e:
        S.read_surrogate(d / "model_v2.onnx", {gt.to_str(A): 0})
    assert "\n" not in str(e.value)


def test_without_onnxruntime_the_error_says_how_to_install(tmp_path, monkeypatch):
    d = model_dir(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with pytest.raises(BadInput, match=r"needs onnxruntime: pip install 'estbench\[nb301\]'"):
        S.read_surrogate(d / "model_v2.onnx", {gt.to_str(A): 0})


def test_predict_batches_and_takes_column_0(tmp_path):
    class Session:  # stands in for onnxruntime: column 0 = a function of the inputs
        calls = []

        def run(self, _, feeds):
            x, e = feeds["x_cat"], feeds["x_cont"]
            assert x.dtype == np.int32 and e.dtype == np.float32 and e.shape == (len(x), 1)
            self.calls.append(len(x))
            return [np.stack([x.sum(axis=1) / 1000 + e[:, 0] / 1e4, np.ones(len(x))], axis=1)]

    x = np.arange(10 * 34, dtype=np.int32).reshape(10, 34)
    acc = S.predict(Session(), x, 98, batch=4)
    assert Session.calls == [4, 4, 2]
    np.testing.assert_allclose(acc, x.sum(axis=1) / 1000 + 98 / 1e4, rtol=1e-6)


# ---- the real YAHPO model --------------------------------------------------------------------


@pytest.mark.data
def test_real_surrogate_ranks_naslib_archs_as_documented(shared_data):
    pytest.importorskip("onnxruntime")
    from scipy.stats import kendalltau, spearmanr

    from estbench.spaces.nb301 import truth as T

    measured = T.read_naslib(shared_data / "nb301" / "naslib_zc_nb301.json", {})
    ids = {s: k for k, s in enumerate(measured.arch_strs)}
    model = shared_data / "nb301" / "yahpo_surrogate" / "model_v2.onnx"
    t = S.read_surrogate(model, ids)
    info = t.metrics["cifar10-valid-surrogate"]
    assert (info.epoch, info.surrogate, info.seed_mean) == (98, True, False)
    assert sorted(t.arch_ids) == list(range(725))
    pred = dict(zip(t.arch_ids, t.values["cifar10-valid-surrogate"]))
    y = measured.values["cifar10-valid-1seed"]
    p = [pred[k] for k in range(725)]
    assert 80.0 < min(p) < max(p) < 100.0  # percent
    assert abs(kendalltau(p, y)[0] - 0.416) < 0.01
    assert abs(spearmanr(p, y)[0] - 0.590) < 0.01
    # the encoding json's key order is the wrong column order: the ranking gets worse
    enc_path, params_path = S.companion_paths(model)
    enc = S.read_encoding(enc_path)
    wrong = S.Encoder(enc, [*enc, "epoch"], "enc order")
    session = S.load_session(model, 34)
    x = np.asarray([wrong.row(gt.parse(s)) for s in measured.arch_strs], dtype=np.int32)
    assert kendalltau(S.predict(session, x, 98), y)[0] < 0.38
    with pytest.raises(BadInput, match="the store holds no nb301 architectures"):
        S.read_surrogate(model, {})
