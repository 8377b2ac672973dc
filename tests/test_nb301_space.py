"""The nb301 space through the search-space protocol and the CLI: an open space whose
archs arrive with NASLib's table and samples, every command on --space nb301, the
default truth (never a surrogate unless named) and the surrogate named in titles."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import app
from tests_support import one_line_error

from estbench.analysis.points import resolve_truth
from estbench.errors import BadInput
from estbench.estimators import ESTIMATORS
from estbench.spaces import get_space
from estbench.spaces.nb301 import genotype as gt
from estbench.store import Store
from estbench.truth.model import MetricInfo, TruthTable


def _naslib_file(tmp_path, n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = {gt.to_naslib(gt.sample(rng)): {"val_accuracy": 92.0 + k * 0.3} for k in range(n)}
    path = tmp_path / "naslib_zc_nb301.json"
    path.write_text(json.dumps({"cifar10": rows}))
    return path


def test_the_space_answers_the_protocol():
    space = get_space("nb301")
    assert not space.enumerable and space.protocols == ("iso",)
    rng = np.random.default_rng(1)
    arch = space.sample(rng)
    text = space.to_str(arch)
    assert space.parse(text) == arch and space.parse(gt.to_darts(arch)) == arch
    facts = space.describe(text)
    assert facts["iso_key"] == gt.canonical(arch) and facts["degenerate"] is False
    assert len(space.mutations(arch)) == 120
    graphs = space.cell_graphs(text)
    assert [g.name for g in graphs] == ["normal", "reduce"]
    assert all(len(g.edges) == 8 + 4 and len(g.nodes) == 7 for g in graphs)
    assert space.structural(arch, "params", c=4, n=2) > 0
    x = torch.randn(2, 3, 16, 16)
    assert space.build(arch, c=4, n=2)(x).shape == (2, 10)
    supernet = space.supernet(c=4, n=2, dropout=0.0)
    assert space.supernet_settings(supernet.state_dict())["c"] == 4
    assert torch.equal(space.candidate(supernet, arch)(x), supernet(x, arch))
    assert set(space.sampler_names()) == {"uniform", "fairnas"}
    assert all(e in ESTIMATORS for e in space.vote_experts)
    assert space.default_oneshot == "os_loss"
    assert [s.kind for s in space.truth_sources] == ["naslib", "nb301-dir", "surrogate", "table"]


def test_truth_scores_and_criteria_from_the_cli(runner, tmp_path):
    store = str(tmp_path / "s.duckdb")
    f = _naslib_file(tmp_path)
    r = runner.invoke(app(), ["truth", "load", "--space", "nb301", "--file", str(f), "--store", store])
    assert r.exit_code == 0, r.output
    assert "6 architectures added" in r.output
    r = runner.invoke(app(), ["score", "--space", "nb301", "-e", "params", "-e", "relu", "--archs", "sample:3@5",
                              "--store", store])  # fmt: skip
    assert r.exit_code == 0, r.output
    with Store(store, read_only=True) as st:
        assert len(st.arch_strings("nb301")) == 9  # the table's 6 and 3 sampled
    r = runner.invoke(app(), ["score", "--space", "nb301", "-e", "params", "--store", store])
    assert r.exit_code == 0, r.output
    # no --truth: NASLib's one run is the space's default metric
    r = runner.invoke(app(), ["criteria", "--space", "nb301", "--protocol", "iso", "--store", store, "-f", "json"])
    assert r.exit_code == 0, r.output
    assert {row["estimator"] for row in json.loads(r.stdout)} == {"params"}
    r = runner.invoke(app(), ["criteria", "--space", "nb301", "--protocol", "iso", "--store", store])
    assert "vs truth cifar10-valid-1seed" in r.output and "SURROGATE" not in r.output


def test_zero_shot_scores_a_small_network(runner, tmp_path):
    store = str(tmp_path / "s.duckdb")
    r = runner.invoke(app(), ["score", "--space", "nb301", "--zse", "synflow", "--zse", "relu_logdet", "--archs",
                              "sample:2@0", "--channels", "4", "--cells", "2", "--batch-size", "4", "--batches", "1",
                              "--store", store])  # fmt: skip
    assert r.exit_code == 0, r.output
    with Store(store, read_only=True) as st:
        rows = st.query("SELECT count(*) FROM scores WHERE space = 'nb301' AND status = 'ok'")[1]
    assert rows[0][0] == 4


def test_default_truth_never_picks_a_surrogate(tmp_path):
    with Store(str(tmp_path / "s.duckdb")) as st:
        st.add_archs("nb301", [get_space("nb301").describe(gt.to_str(gt.sample(np.random.default_rng(0))))])
        sur = TruthTable([0], [""])
        sur.add(MetricInfo("cifar10-valid-surrogate", 98, False, surrogate=True), [93.0])
        st.put_truth("nb301", sur)
        with pytest.raises(BadInput, match="all surrogate predictions"):
            resolve_truth(st, "nb301", None)
        assert resolve_truth(st, "nb301", "cifar10-valid-surrogate") == "cifar10-valid-surrogate"
        measured = TruthTable([0], [""])
        measured.add(MetricInfo("cifar10-valid-1seed", 100, False), [92.0])
        st.put_truth("nb301", measured)
        assert resolve_truth(st, "nb301", None) == "cifar10-valid-1seed"


@pytest.mark.parametrize(
    "line, message",
    [
        ("normal:|conv_7x7~0|sep_conv_3x3~1|+|a~0|b~1|+|c~0|d~1|+|e~0|f~1|;reduce:|x~0|y~1|", "unknown op 'conv_7x7'"),
        (gt.to_darts(gt.sample(np.random.default_rng(0))).replace("', 1)", "', 9)", 1), "takes input 9"),
    ],
)
def test_a_bad_genotype_in_an_arch_file_is_one_line(runner, tmp_path, line, message):
    f = tmp_path / "archs.txt"
    f.write_text(line + "\n")
    r = runner.invoke(app(), ["score", "--space", "nb301", "-e", "params", "--archs", str(f),
                              "--store", str(tmp_path / "s.duckdb")])  # fmt: skip
    assert message in one_line_error(r)


def test_a_missing_or_bad_surrogate_is_one_line(runner, tmp_path):
    store = str(tmp_path / "s.duckdb")
    runner.invoke(app(), ["truth", "load", "--space", "nb301", "--file", str(_naslib_file(tmp_path)), "--store", store])
    missing = tmp_path / "nowhere" / "model_v2.onnx"
    r = runner.invoke(app(), ["truth", "load", "--space", "nb301", "--source", "surrogate", "--file", str(missing),
                              "--store", store])  # fmt: skip
    assert "does not exist" in one_line_error(r)
    bad = tmp_path / "model_v2.onnx"
    bad.write_bytes(b"not a model at all")
    for companion in ("encoding_v2.json", "param_set_v2.R"):
        (tmp_path / companion).write_text("")
    r = runner.invoke(app(), ["truth", "load", "--space", "nb301", "--source", "surrogate", "--file", str(bad),
                              "--store", store])  # fmt: skip
    one_line_error(r)


@pytest.mark.data
def test_the_real_surrogate_loads_as_a_surrogate_and_criteria_say_so(runner, tmp_path, shared_data):
    store = str(tmp_path / "s.duckdb")
    data = ["--data-dir", str(shared_data)]
    for extra in ([], ["--source", "surrogate"]):
        r = runner.invoke(app(), ["truth", "load", "--space", "nb301", *extra, "--store", store, *data])
        assert r.exit_code == 0, r.output
    r = runner.invoke(app(), ["score", "--space", "nb301", "-e", "params", "--store", store])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app(), ["criteria", "--space", "nb301", "--truth", "cifar10-valid-surrogate", "--protocol",
                              "iso", "--store", store])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "SURROGATE" in r.output
    with Store(store, read_only=True) as st:
        assert st.metric_is_surrogate("nb301", "cifar10-valid-surrogate")
        assert not st.metric_is_surrogate("nb301", "cifar10-valid-1seed")
