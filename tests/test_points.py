"""Point sets: the paper's deiso semantics (a class's score is its representative's; the
mean over members only with --post-deiso) and the space protocol's mutation pairs."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from bias_support import make_store

from estbench.analysis.evaluate import evaluate
from estbench.analysis.points import complexity_groups, load_points
from estbench.spaces import get_space
from estbench.spaces.base import SearchSpace
from estbench.store import Store


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("points") / "syn.duckdb")
    return make_store(path, "toy", {"synflow": ("synflow", 0.5), "snip": ("snip", 0.5)}, representatives_only=("snip",))


def _direct(syn, name: str, post_deiso: bool):
    """{class key: (truth mean over members, score)} computed from the arrays."""
    score, truth = syn.scores.get(name, getattr(syn, name, None)), syn.truth["cifar10-test"]
    out = {}
    for k in dict.fromkeys(syn.iso_keys):
        members = [i for i, key in enumerate(syn.iso_keys) if key == k]
        scored = [i for i in members if not np.isnan(score[i])]
        if not scored:
            continue
        s = float(np.mean(score[scored])) if post_deiso else float(score[min(scored)])
        out[min(scored)] = (float(np.mean(truth[members])), s)
    return out


@pytest.mark.parametrize("post_deiso", [False, True])
@pytest.mark.parametrize("name", ["params", "synflow", "snip"])
def test_class_score_is_the_representatives_unless_post_deiso(syn, name, post_deiso):
    with Store(syn.path, read_only=True) as st:
        (p,) = load_points(st, "toy", "cifar10-test", "deiso", [name], post_deiso=post_deiso)
    want = _direct(syn, name, post_deiso)
    assert sorted(want) == p.rep.tolist()
    np.testing.assert_allclose([want[r][0] for r in p.rep], p.truth)
    np.testing.assert_allclose([want[r][1] for r in p.rep], p.score)


def test_post_deiso_changes_only_estimators_scored_on_several_members(syn):
    with Store(syn.path, read_only=True) as st:
        rep = {g.estimator: g.values["kd"] for g in evaluate(st, "toy", "cifar10-test", "deiso")}
        mean = {g.estimator: g.values["kd"] for g in evaluate(st, "toy", "cifar10-test", "deiso", post_deiso=True)}
    assert rep["snip"] == mean["snip"]  # one scored member per class: nothing to average
    assert rep["synflow"] != mean["synflow"]  # every member scored, with different noise


def test_subset_reranks(syn):
    with Store(syn.path, read_only=True) as st:
        (p,) = load_points(st, "toy", "cifar10-test", "iso", ["synflow"])
    q = p.subset(p.rep % 2 == 0)
    assert sorted(q.score_rank.tolist()) == list(range(1, len(q) + 1))
    assert q.rep[np.argmin(q.score_rank)] == q.rep[np.argmax(q.s)]


def test_complexity_groups_keep_ties_together():
    v = np.array([1, 1, 1, 1, 2, 3, 4, 5, 6, 7], dtype=float)
    g = complexity_groups(v, 5)
    assert len(set(g[:4])) == 1 and g[0] == 0
    assert all(g[i] <= g[i + 1] for i in range(len(v) - 1))
    assert g[-1] == 4
    np.testing.assert_array_equal(complexity_groups(np.arange(10.0), 5), np.repeat(np.arange(5), 2))


@pytest.mark.parametrize("name", ["toy", "nb201"])
def test_mutation_pairs_match_the_generic_protocol(name):
    sp = get_space(name)
    strs = sp.arch_list(None)
    fast = sp.mutation_pairs(strs)
    if name == "toy":
        assert sorted(zip(*fast)) == sorted(zip(*SearchSpace.mutation_pairs(sp, strs)))
    counts = collections.Counter(fast[2])
    k, e = len(sp.cell.ops), len(sp.cell.edges)
    # every ordered kind a->b: e edges x k^(e-1) settings of the other edges (NB201: 6 x 5^5 = 18,750)
    assert len(counts) == k * (k - 1) and set(counts.values()) == {e * k ** (e - 1)}
    i, j = fast[0][0], fast[1][0]
    a, b = sp.parse(strs[i]), sp.parse(strs[j])
    assert b in sp.mutations(a) and fast[2][0] == sp.mutation_kind(a, b)


def test_op_counts():
    sp = get_space("nb201")
    arch = sp.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert sp.op_counts(arch) == {
        "none": 2, "skip_connect": 1, "nor_conv_1x1": 0, "nor_conv_3x3": 3, "avg_pool_3x3": 0,
    }  # fmt: skip


def test_no_analysis_imports_torch(syn):
    """Every analysis reads the store only: none of them may load torch (one subprocess
    runs them all)."""
    import subprocess
    import sys

    runs = [
        ["criteria", "--ci", "90", "--resamples", "20", "--protocol", "iso", "-e", "synflow"], ["report"],
        ["bias", "complexity", "--groups", "3"],
        ["bias", "op", "--by", "params", "--show", "hist"], ["bias", "arch", "--k", "3"],
        ["bias", "agreement", "--spearman"], ["bias", "pareto", "--show", "fronts"],
        ["bias", "compare", "-e", "synflow", "-e", "params", "--resamples", "20", "--protocol", "iso"],
    ]  # fmt: skip
    code = (
        "import sys; from typer.testing import CliRunner; from estbench.cli import app\n"
        f"for args in {runs!r}:\n"
        f"    r = CliRunner().invoke(app, args + ['--space', 'toy', '--store', {syn.path!r}])\n"
        "    assert r.exit_code == 0, (args, r.output)\n"
        "    assert 'torch' not in sys.modules, f'{args} imported torch'\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr + p.stdout
