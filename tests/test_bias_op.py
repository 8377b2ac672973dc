"""`estbench bias op` (op-level bias, paper Sec. 5.1, A.2.2) against a direct Python
implementation on a synthetic toy store: pairs enumerated arch by arch from the space's
``mutations``, classes and their truths/scores recomputed from the arrays the store was
built from, statistics with loops and ``statistics.median``."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter, defaultdict

import numpy as np
import pytest
from bias_support import make_store
from conftest import app
from tests_support import one_line_error

from estbench.analysis import opbias
from estbench.spaces import get_space

ESTIMATORS = {"synflow": ("synflow", 0.5), "os_loss": ("os_loss", 0.5), "snip": ("snip", 0.5)}
METRIC = "cifar10-test"


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("opbias") / "syn.duckdb")
    return make_store(path, "toy", ESTIMATORS, representatives_only=("snip",))


def _invoke(runner, syn, *args, fmt="json"):
    r = runner.invoke(app(), ["bias", "op", "--space", syn.space, "--store", syn.path, "--format", fmt, *args])
    return r


def _json(runner, syn, *args):
    r = _invoke(runner, syn, *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


# ---- the direct implementation -------------------------------------------------------


def _arch_pairs(space_name, strs):
    """(i, j, kind) for every ordered edit-distance-1 pair, one arch at a time."""
    sp = get_space(space_name)
    index = {s: i for i, s in enumerate(strs)}
    out = []
    for i, s in enumerate(strs):
        arch = sp.parse(s)
        for nb in sp.mutations(arch):
            diff = [(a, b) for a, b in zip(arch, nb) if a != b]
            assert len(diff) == 1
            out.append((i, index[sp.to_str(nb)], f"{diff[0][0]}->{diff[0][1]}"))
    return out


def _points(syn, name, protocol, post_deiso=False):
    """{rep arch id: (oriented truth, oriented score)} and {arch id: rep of its class}."""
    from estbench.estimators import ESTIMATORS as REG

    hib = REG.meta(name)["higher_is_better"] if name in REG.names() else True
    score = syn.scores[name] if name in syn.scores else getattr(syn, name)
    truth = syn.truth[METRIC]
    n = len(syn.arch_strs)
    keys = [str(i) for i in range(n)] if protocol == "iso" else syn.iso_keys
    classes = defaultdict(list)
    for i, k in enumerate(keys):
        classes[k].append(i)
    points, rep_of = {}, {}
    for members in classes.values():
        scored = [i for i in members if not np.isnan(score[i])]
        if not scored:
            continue
        s = statistics.fmean(score[i] for i in scored) if post_deiso else score[min(scored)]
        points[min(scored)] = (statistics.fmean(truth[i] for i in members), s if hib else -s)
        for i in members:
            rep_of[i] = min(scored)
    return points, rep_of


def _groups(points, by_values, n_groups):
    reps = sorted(points)
    v = [by_values[r] for r in reps]
    return {r: min(sum(x < v[k] for x in v) * n_groups // len(v), n_groups - 1) for k, r in enumerate(reps)}


def _pairs(syn, name, protocol, post_deiso=False, by=None, n_groups=5):
    """[(group or None, kind, from rep, to rep, d_truth, d_score)] by the definition."""
    points, rep_of = _points(syn, name, protocol, post_deiso)
    triples = set()
    for i, j, kind in _arch_pairs(syn.space, syn.arch_strs):
        if i in rep_of and j in rep_of and rep_of[i] != rep_of[j]:
            triples.add((rep_of[i], rep_of[j], kind))
    grp = _groups(points, getattr(syn, by), n_groups) if by else None
    out = []
    for a, b, kind in sorted(triples):
        if grp is not None and grp[a] != grp[b]:
            continue
        g = grp[a] if grp is not None else None
        out.append((g, kind, a, b, points[b][0] - points[a][0], points[b][1] - points[a][1]))
    return out


def _summary(pairs):
    seg = defaultdict(list)
    for g, kind, _, _, dt, ds in pairs:
        seg[(g, kind)].append((dt, ds))
    out = {}
    for key, v in seg.items():
        dts, dss = [x[0] for x in v], [x[1] for x in v]
        tu = sum(1 for x in dts if x > 0) / len(v)
        su = sum(1 for x in dss if x > 0) / len(v)
        out[key] = {
            "n": len(v), "truth_up": tu, "score_up": su, "diff": su - tu,
            "mean_d_truth": statistics.fmean(dts), "median_d_truth": statistics.median(dts),
            "mean_d_score": statistics.fmean(dss), "median_d_score": statistics.median(dss),
        }  # fmt: skip
    return out


def _check_summary(rows, want, name, grouped):
    got = {(r["group"] if grouped else None, r["kind"]): r for r in rows if r["estimator"] == name}
    assert set(got) == set(want)
    for key, w in want.items():
        for col, v in w.items():
            assert got[key][col] == pytest.approx(v, rel=1e-9, abs=1e-9), (name, key, col)


# ---- tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["iso", "deiso"])
@pytest.mark.parametrize("post_deiso", [False, True])
def test_summary_matches_direct(runner, syn, protocol, post_deiso):
    names = ["params", "synflow", "os_loss", "snip"]
    args = ["--protocol", protocol] + (["--post-deiso"] if post_deiso else [])
    rows = _json(runner, syn, *args, *sum((["-e", n] for n in names), []))
    assert {r["estimator"] for r in rows} == set(names)
    for name in names:
        _check_summary(rows, _summary(_pairs(syn, name, protocol, post_deiso)), name, grouped=False)


@pytest.mark.parametrize("protocol", ["iso", "deiso"])
@pytest.mark.parametrize("by", ["params", "flops"])
def test_groups_match_direct(runner, syn, protocol, by):
    rows = _json(runner, syn, "--protocol", protocol, "--by", by, "--groups", "3", "-e", "synflow", "-e", "snip")
    for name in ("synflow", "snip"):
        _check_summary(rows, _summary(_pairs(syn, name, protocol, by=by, n_groups=3)), name, grouped=True)
    top = max(r["group"] for r in rows if r["estimator"] == "synflow")
    one = _json(runner, syn, "--protocol", protocol, "--by", by, "--groups", "3", "--group", str(top), "-e", "synflow")
    assert one and {r["group"] for r in one} == {top}
    assert one == [r for r in rows if r["estimator"] == "synflow" and r["group"] == top]


def test_lower_is_better_is_oriented(runner, syn):
    """os_loss is a loss: a loss decrease counts as an estimate increase."""
    rows = _json(runner, syn, "--protocol", "iso", "--show", "pairs", "-e", "os_loss")
    loss = syn.scores["os_loss"]
    for r in rows:
        assert r["d_score"] == pytest.approx(-(loss[r["to_arch"]] - loss[r["from_arch"]]))


@pytest.mark.parametrize("protocol", ["iso", "deiso"])
def test_pairs_match_direct(runner, syn, protocol):
    rows = _json(runner, syn, "--protocol", protocol, "--show", "pairs", "-e", "synflow", "-e", "snip")
    for name in ("synflow", "snip"):
        got = [
            (r["kind"], r["from_arch"], r["to_arch"], r["d_truth"], r["d_score"])
            for r in rows
            if r["estimator"] == name
        ]
        want = [p[1:] for p in _pairs(syn, name, protocol)]
        assert sorted(x[:3] for x in got) == sorted(x[:3] for x in want)
        gd = {x[:3]: x[3:] for x in got}
        for x in want:
            assert gd[x[:3]] == pytest.approx(x[3:])


def test_deiso_counts_each_class_pair_once_and_drops_isomorphic_mutations(syn):
    strs, keys = syn.arch_strs, syn.iso_keys
    src, dst, kinds = get_space("toy").mutation_pairs(strs)
    pairs = opbias.class_pairs(src, dst, kinds, np.asarray(keys))
    node = pairs.node_of_arch
    want = {(node[i], node[j], k) for i, j, k in _arch_pairs("toy", strs) if keys[i] != keys[j]}
    got = list(zip(pairs.src.tolist(), pairs.dst.tolist(), [pairs.kinds[k] for k in pairs.kind]))
    assert len(got) == len(set(got)) and set(got) == want
    assert any(keys[i] == keys[j] for i, j, _ in _arch_pairs("toy", strs))  # the toy space has some to drop


def test_hist_matches_numpy_histogram(runner, syn):
    rows = _json(runner, syn, "--protocol", "iso", "--show", "hist", "--bins", "7", "-e", "synflow")
    by_kind = defaultdict(list)
    for p in _pairs(syn, "synflow", "iso"):
        by_kind[p[1]].append(p[4:])
    assert {r["kind"] for r in rows} == set(by_kind)
    for kind, v in by_kind.items():
        dt, ds = np.array([x[0] for x in v]), np.array([x[1] for x in v])
        lo, hi = min(dt.min(), ds.min()), max(dt.max(), ds.max())
        nt, edges = np.histogram(dt, bins=7, range=(lo, hi))
        ns, _ = np.histogram(ds, bins=7, range=(lo, hi))
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["bin"])
        assert [r["n_truth"] for r in mine] == nt.tolist() and [r["n_score"] for r in mine] == ns.tolist()
        np.testing.assert_allclose([r["bin_lo"] for r in mine], edges[:-1])
        np.testing.assert_allclose([r["bin_hi"] for r in mine], edges[1:])
        assert sum(nt) == sum(ns) == len(v)


def test_histogram_of_constant_changes():
    h = opbias.histogram([0, 1], [1, 0], [0, 0], [1.0, 1.0], [2.0, 2.0], 1, bins=4)
    assert h["n_truth"].tolist() == [0, 0, 4 // 2, 0] and h["n_score"].tolist() == [0, 0, 2, 0]
    assert h["bin_lo"][0] == -0.5 and h["bin_hi"][-1] == 0.5


def test_ties_count_as_not_increasing():
    s = opbias.summarize([0, 1, 0], [1, 0, 2], [0, 0, 0], [1.0, 1.0, 2.0], [0.0, 1.0, 0.0], 1)
    # d_truth: 0, 0, +1; d_score: +1, -1, 0
    assert s["truth_up"].tolist() == [pytest.approx(1 / 3)] and s["score_up"].tolist() == [pytest.approx(1 / 3)]
    assert s["median_d_truth"].tolist() == [0.0] and s["n"].tolist() == [3]


def test_pair_count_per_kind_is_edges_times_ops_to_the_edges_minus_one(runner, syn):
    sp = get_space("toy")
    ops, edges = len(sp.cell.ops), len(sp.cell.edges)
    rows = _json(runner, syn, "--protocol", "iso", "-e", "params")
    assert len(rows) == ops * (ops - 1)
    assert {r["n"] for r in rows} == {edges * ops ** (edges - 1)}


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "markdown", "latex"])
@pytest.mark.parametrize("show", ["summary", "pairs", "hist"])
def test_every_format(runner, syn, fmt, show):
    r = _invoke(runner, syn, "--show", show, "--by", "params", "--groups", "2", "-e", "synflow", fmt=fmt)
    assert r.exit_code == 0, r.output
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(r.output)))
        assert rows and {"estimator", "group", "kind"} <= set(rows[0])
        ref = _json(runner, syn, "--show", show, "--by", "params", "--groups", "2", "-e", "synflow")
        assert len(rows) == len(ref)
    elif fmt == "json":
        assert json.loads(r.output)
    elif fmt == "markdown":
        assert r.output.startswith("| estimator |") and "| kind |" in r.output.splitlines()[0]
    elif fmt == "latex":
        assert "\\begin{tabular}" in r.output and "kind" in r.output
    else:
        assert "op-level bias" in r.output and "kind" in r.output


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--show", "bars"], "--show"),
        (["--bins", "0"], "--bins"),
        (["--by", "depth"], "--by"),
        (["--groups", "0"], "--groups"),
        (["--group", "1"], "--group needs --by"),
        (["--by", "params", "--group", "5"], "--group 5"),
        (["-e", "nosuch"], "nosuch"),
        (["--truth", "imagenet-top1"], "imagenet-top1"),
        (["--protocol", "half"], "protocol"),
        (["--epoch", "7"], "nothing to show"),
    ],
)
def test_errors_are_one_line(runner, syn, args, needle):
    assert needle in one_line_error(_invoke(runner, syn, *args, fmt="table"))


def test_no_pairs_is_one_line(runner, tmp_path):
    """An estimator scored on two archs that are no mutation of each other has no pair."""
    syn = make_store(str(tmp_path / "few.duckdb"), "toy", {"synflow": ("synflow", 0.5)})
    from estbench.store import Store

    with Store(syn.path) as st:
        st.query("DELETE FROM scores WHERE estimator = 'synflow' AND arch_id NOT IN (0, 26)")
    line = one_line_error(_invoke(runner, syn, "--protocol", "iso", "-e", "synflow", fmt="table"))
    assert "no mutation pairs" in line


@pytest.mark.slow
def test_nb201_pair_counts(runner, tmp_path):
    """Paper Fig. A13: on NB201 (iso) every ordered kind a->b has 6 x 5^5 = 18,750 pairs;
    under deiso the class pairs are the distinct (class, class, kind) triples."""
    syn = make_store(str(tmp_path / "nb201.duckdb"), "nb201")
    rows = _json(runner, syn, "--protocol", "iso", "-e", "params")
    sp = get_space("nb201")
    ops, edges = len(sp.cell.ops), len(sp.cell.edges)
    assert (ops, edges) == (5, 6)
    assert len(rows) == 20 and {r["n"] for r in rows} == {6 * 5**5} == {edges * ops ** (edges - 1)}
    src, dst, kinds = sp.mutation_pairs(syn.arch_strs)
    keys = syn.iso_keys
    triples = {(keys[i], keys[j], k) for i, j, k in zip(src, dst, kinds) if keys[i] != keys[j]}
    rows = _json(runner, syn, "-e", "params")  # params is scored on every arch: every class is a point
    assert {r["kind"]: r["n"] for r in rows} == dict(Counter(k for _, _, k in triples))
