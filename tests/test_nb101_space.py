"""The two NB101 spaces through the search-space protocol and the CLI: nb101 is open
(archs from truth files and samples), nb101-1shot3 enumerated (14,580 archs); truth
files reach archs by spec string (nb101) or module hash (1shot3, the 20k table)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import app
from tests_support import one_line_error

from estbench.spaces import get_space
from estbench.spaces.nb101 import oneshot3
from estbench.spaces.nb101 import spec as nb
from estbench.store import Store

CHAIN = "0100.0010.0001.0000:input,conv3x3-bn-relu,maxpool3x3,output"
CHAIN_PERMUTED_OPS = "0100.0010.0001.0000:input,maxpool3x3,conv3x3-bn-relu,output"


def _vis(tmp_path, specs, accs, with_spec=True, name="vis.json"):
    """A nasbench_vis-style table (column-oriented) of ``specs`` (Spec objects)."""
    codes = {"input": -1, "output": -2, nb.OPS[0]: 0, nb.OPS[1]: 1, nb.OPS[2]: 2}
    cols = {f"{e}_final_validation_accuracy": [a / 100 for a in accs] for e in (4, 12, 36, 108)}
    cols["key"] = [nb.module_hash(s) for s in specs]
    cols["trainable_parameters"] = [1000] * len(specs)
    if with_spec:
        cols["adjacency"] = [[list(r) for r in s.matrix] for s in specs]
        cols["operations"] = [[codes[o] for o in s.ops] for s in specs]
    path = tmp_path / name
    path.write_text(json.dumps(cols))
    return path


def test_the_spaces_are_registered_with_their_protocol():
    full, ss3 = get_space("nb101"), get_space("nb101-1shot3")
    assert not full.enumerable and ss3.enumerable
    archs = ss3.arch_list(None)
    assert len(archs) == 14580 and len(set(archs)) == 14580
    a = ss3.parse(archs[123])
    assert ss3.canonical(a) == nb.module_hash(oneshot3.to_nb101(a))
    assert ss3.to_str(a) == archs[123]
    spec = full.parse(CHAIN)
    assert full.canonical(spec) == nb.module_hash(spec)
    s = full.sample(np.random.default_rng(0))
    assert full.parse(full.to_str(s)) == s
    graphs = full.cell_graphs(CHAIN)
    assert graphs[0].nodes == ("input", "conv3x3-bn-relu", "maxpool3x3", "output")
    assert full.op_counts(spec) == {"conv3x3-bn-relu": 1, "conv1x1-bn-relu": 0, "maxpool3x3": 1}
    assert all(full.mutation_kind(spec, m) for m in full.mutations(spec))
    assert ss3.mutations(a) and all(ss3.to_str(m) in set(archs) for m in ss3.mutations(a))


def test_nb101_truth_brings_its_archs_and_sampling_adds_more(runner, tmp_path):
    store = str(tmp_path / "s.duckdb")
    specs = [nb.parse(CHAIN), nb.parse(CHAIN_PERMUTED_OPS)]
    f = _vis(tmp_path, specs, [91.0, 85.5])
    r = runner.invoke(app(), ["truth", "load", "--space", "nb101", "--file", str(f), "--store", store])
    assert r.exit_code == 0, r.output
    assert "2 architectures added" in r.output
    st = Store(store, read_only=True)
    assert st.arch_strings("nb101") == [CHAIN, CHAIN_PERMUTED_OPS]
    assert st.truth_values("nb101", "cifar10-valid-1seed") == {0: pytest.approx(91.0), 1: pytest.approx(85.5)}
    st.close() if hasattr(st, "close") else None
    r = runner.invoke(app(), ["score", "--space", "nb101", "-e", "params", "--archs", "sample:3@1", "--store", store])
    assert r.exit_code == 0, r.output
    st = Store(store, read_only=True)
    assert st.arch_count("nb101") >= 3


def test_the_20k_table_reaches_1shot3_archs_by_hash(runner, tmp_path):
    store = str(tmp_path / "s.duckdb")
    archs = oneshot3.enumerate_archs()
    picked = [oneshot3.to_nb101(oneshot3.parse(archs[i])) for i in (0, 500, 9000)]
    # written with the vertices of the first in another topological order: same hash
    f = _vis(tmp_path, picked, [90.0, 91.0, 92.0], with_spec=False, name="vis_20k.json")
    r = runner.invoke(app(), ["truth", "load", "--space", "nb101-1shot3", "--file", str(f), "--store", store])
    assert r.exit_code == 0, r.output
    st = Store(store, read_only=True)
    assert st.arch_count("nb101-1shot3") == 14580
    vals = st.truth_values("nb101-1shot3", "cifar10-valid-1seed")
    assert vals == {0: pytest.approx(90.0), 500: pytest.approx(91.0), 9000: pytest.approx(92.0)}


def test_bad_nb101_inputs_are_one_line(runner, tmp_path):
    store = str(tmp_path / "s.duckdb")
    bad = tmp_path / "archs.txt"
    bad.write_text("0100.0010.0001.0000:input,conv5x5,maxpool3x3,output\n")
    line = one_line_error(runner.invoke(app(), ["score", "--space", "nb101", "-e", "params", "--archs", str(bad),
                                                "--store", store]))  # fmt: skip
    assert "conv5x5" in line
    line = one_line_error(runner.invoke(app(), ["score", "--space", "nb101", "-e", "params", "--store", store]))
    assert "no nb101 architectures yet" in line
    f = tmp_path / "t.json"
    f.write_text('{"key": ["x"]}')
    line = one_line_error(runner.invoke(app(), ["truth", "load", "--space", "nb101", "--file", str(f), "--store",
                                                store]))  # fmt: skip
    assert str(f) in line
