"""`estbench bias pareto` (paper A.2.1, Fig. A8-A10) against a direct implementation:
levels by brute-force O(n^2) domination (peel the points no other remaining point
dominates), complexity groups and gaps with loops over the points rebuilt from the
arrays the synthetic toy store was written from. Tie semantics: a point dominates
another when it is no worse in both (score >=, cost <=) and strictly better in one, so
equal points share a level."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict

import numpy as np
import pytest
from bias_support import make_store
from conftest import app
from tests_support import one_line_error

from estbench.analysis.pareto import front_levels, non_dominated, pareto_gap
from estbench.store import Store
from estbench.truth.model import MetricInfo, TruthTable

ESTIMATORS = {"synflow": ("synflow", 0.5), "os_loss": ("os_loss", 0.7), "snip": ("snip", 0.5)}
METRIC = "cifar10-test"


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("pareto") / "syn.duckdb")
    syn = make_store(path, "toy", ESTIMATORS, representatives_only=("snip",))
    # a lower-is-better truth metric
    rng = np.random.default_rng(3)
    error = 100 - syn.truth[METRIC] + rng.normal(0, 2.0, size=len(syn.arch_strs))
    table = TruthTable(list(range(len(syn.arch_strs))), syn.arch_strs)
    table.add(MetricInfo("cifar10-error", 200, True, "synthetic", higher_is_better=False), error.tolist())
    with Store(path) as st:
        st.put_truth("toy", table)
    syn.truth["cifar10-error"] = error
    return syn


def _invoke(runner, syn, *args, fmt="json"):
    return runner.invoke(app(), ["bias", "pareto", "--space", "toy", "--store", syn.path, "--format", fmt, *args])


def _json(runner, syn, *args):
    r = _invoke(runner, syn, *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


# ---- the direct implementation -------------------------------------------------------


def _dominates(p, q):
    """p = (score, cost) dominates q: no worse in both, strictly better in one."""
    return p[0] >= q[0] and p[1] <= q[1] and (p[0] > q[0] or p[1] < q[1])


def _brute_levels(score, cost, max_levels):
    pts = list(zip(map(float, score), map(float, cost)))
    level = [0] * len(pts)
    left = set(range(len(pts)))
    for lv in range(1, max_levels + 1):
        front = {i for i in left if not any(_dominates(pts[j], pts[i]) for j in left if j != i)}
        for i in front:
            level[i] = lv
        left -= front
    return np.array(level)


def _hib(name):
    from estbench.estimators import ESTIMATORS as REG

    return REG.meta(name)["higher_is_better"]


def _points(syn, name, protocol="deiso", post_deiso=False, metric=METRIC):
    """[(rep, oriented truth, oriented score, stored score, stored truth)] sorted by rep."""
    score, truth = syn.scores.get(name, getattr(syn, name, None)), syn.truth[metric]
    sign = -1.0 if metric == "cifar10-error" else 1.0
    keys = [str(i) for i in range(len(syn.arch_strs))] if protocol == "iso" else syn.iso_keys
    classes = defaultdict(list)
    for i, k in enumerate(keys):
        classes[k].append(i)
    out = []
    for mem in classes.values():
        scored = [i for i in mem if not np.isnan(score[i])]
        if scored:
            s = float(np.mean(score[scored])) if post_deiso else float(score[min(scored)])
            t = float(np.mean(truth[mem]))
            out.append((min(scored), sign * t, s if _hib(name) else -s, s, t))
    return sorted(out)


def _groups(values, n_groups):
    return [min(sum(x < v for x in values) * n_groups // len(values), n_groups - 1) for v in values]


def _gap(syn, name, by="params", n_groups=5, levels=5, inverse=False, protocol="deiso", metric=METRIC):
    """{(group, L): (n_group, n_front, gt_best, pareto_best, gap)} by loops; gt_best and
    pareto_best as stored (an error: the lowest), the gap oriented (>= 0)."""
    pts = _points(syn, name, protocol, metric=metric)
    sign = -1.0 if metric == "cifar10-error" else 1.0
    c = [float(getattr(syn, by)[p[0]]) for p in pts]
    lv = _brute_levels([p[2] for p in pts], [-x if inverse else x for x in c], levels)
    grp = _groups(c, n_groups)
    out = {}
    for g in sorted(set(grp)):
        idx = [i for i in range(len(pts)) if grp[i] == g]
        best = max(pts[i][1] for i in idx)
        for L in range(1, levels + 1):
            on = [i for i in idx if 1 <= lv[i] <= L]
            pb = max((pts[i][1] for i in on), default=float("nan"))
            out[(g, L)] = (len(idx), len(on), sign * best, sign * pb, best - pb)
    return out


def _fronts(syn, name, by="params", levels=5, inverse=False):
    """{(front, level, arch id)} of both fronts, by brute force."""
    pts = _points(syn, name)
    c = [float(getattr(syn, by)[p[0]]) for p in pts]
    cost = [-x if inverse else x for x in c]
    out = set()
    for front, sc in (("estimate", [p[2] for p in pts]), ("truth", [p[1] for p in pts])):
        for p, lv in zip(pts, _brute_levels(sc, cost, levels)):
            if lv:
                out.add((front, int(lv), p[0]))
    return out


# ---- the level algorithm -------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_levels_match_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    span = int(rng.integers(1, 8))  # few distinct values: many ties in score and in cost
    score, cost = rng.integers(0, span, n).astype(float), rng.integers(0, span, n).astype(float)
    np.testing.assert_array_equal(front_levels(score, cost, n), _brute_levels(score, cost, n))
    np.testing.assert_array_equal(front_levels(score, cost, 3), _brute_levels(score, cost, 3))
    np.testing.assert_array_equal(non_dominated(score, cost), _brute_levels(score, cost, 1) == 1)


def test_tie_semantics():
    #                 a    b    c    d    e    f
    score = np.array([5.0, 5.0, 4.0, 5.0, 3.0, 6.0])
    cost = np.array([1.0, 1.0, 1.0, 2.0, 0.0, 3.0])
    # a and b are equal (neither dominates the other): both level 1; c has a's cost and a
    # lower score, d a's score and a higher cost: both dominated by a; e is cheapest, f best
    assert front_levels(score, cost, 5).tolist() == [1, 1, 2, 2, 1, 1]
    assert front_levels(score, cost, 1).tolist() == [1, 1, 0, 0, 1, 1]
    assert front_levels(np.array([]), np.array([]), 3).tolist() == []


def test_gap_on_arrays():
    y = np.array([1.0, 3.0, 2.0, 5.0])
    level = np.array([1, 2, 0, 1])
    groups = np.array([0, 0, 1, 1])
    d = pareto_gap(y, level, np.array([1.0, 2.0, 3.0, 4.0]), groups, 2)
    assert d["gap"][:2].tolist() == [2.0, 0.0]  # group 0: best 3 is on level 2
    assert d["n_front"].tolist() == [1, 2, 1, 1] and d["gap"][2:].tolist() == [0.0, 0.0]
    d = pareto_gap(y, np.array([1, 1, 0, 0]), np.arange(4.0), groups, 1)
    assert math.isnan(d["gap"][1]) and d["n_front"][1] == 0


def test_levels_are_fast():
    import time

    rng = np.random.default_rng(0)
    score, cost = rng.normal(size=200_000), rng.integers(0, 50, 200_000).astype(float)
    t = time.perf_counter()
    front_levels(score, cost, 5)
    assert time.perf_counter() - t < 2.0  # an O(n^2) pass would take minutes


# ---- the command ---------------------------------------------------------------------


def _check_gap(rows, want, name):
    got = {(r["group"], r["levels"]): r for r in rows if r["estimator"] == name}
    assert set(got) == set(want), name
    for key, (n_group, n_front, best, pb, gap) in want.items():
        r = got[key]
        assert (r["n_group"], r["n_front"]) == (n_group, n_front), (name, key)
        assert r["gt_best"] == pytest.approx(best, abs=1e-9)
        if math.isnan(gap):
            assert r["pareto_best"] is None and r["gap"] is None, (name, key)
        else:
            assert r["pareto_best"] == pytest.approx(pb, abs=1e-9) and r["gap"] == pytest.approx(gap, abs=1e-9)


@pytest.mark.parametrize("name", ["synflow", "os_loss", "snip"])
@pytest.mark.parametrize("options", [(), ("--inverse",), ("--by", "flops", "--groups", "3", "--levels", "2")])
def test_gap_matches_direct(runner, syn, name, options):
    rows = _json(runner, syn, "-e", name, *options)
    by = "flops" if "flops" in options else "params"
    groups, levels = (3, 2) if "flops" in options else (5, 5)
    _check_gap(rows, _gap(syn, name, by, groups, levels, inverse="--inverse" in options), name)
    assert all(r["gap"] is None or r["gap"] >= 0 for r in rows)


@pytest.mark.parametrize("name", ["synflow", "os_loss"])
def test_gap_lower_is_better_truth(runner, syn, name):
    rows = _json(runner, syn, "-e", name, "-t", "cifar10-error", "--levels", "3")
    _check_gap(rows, _gap(syn, name, levels=3, metric="cifar10-error"), name)
    assert all(r["gap"] is None or (r["gap"] >= 0 and r["pareto_best"] >= r["gt_best"]) for r in rows)


def test_gap_iso_and_every_estimator(runner, syn):
    rows = _json(runner, syn, "--protocol", "iso", "--levels", "3")
    assert {r["estimator"] for r in rows} == {"flops", "os_loss", "params", "snip", "synflow"}
    for name in ESTIMATORS:
        _check_gap(rows, _gap(syn, name, levels=3, protocol="iso"), name)


@pytest.mark.parametrize("options", [(), ("--inverse",), ("--levels", "1")])
def test_fronts_match_direct(runner, syn, options):
    rows = _json(runner, syn, "--show", "fronts", *options)
    levels = 1 if "1" in options else 5
    for name in ESTIMATORS:
        mine = [r for r in rows if r["estimator"] == name]
        got = {(r["front"], r["level"], r["arch_id"]) for r in mine}
        assert got == _fronts(syn, name, levels=levels, inverse="--inverse" in options), name
        pts = {p[0]: p for p in _points(syn, name)}
        for r in mine:
            assert r["arch_str"] == syn.arch_strs[r["arch_id"]]
            assert r["params"] == syn.params[r["arch_id"]]
            assert r["score"] == pytest.approx(pts[r["arch_id"]][3]) and r["truth"] == pytest.approx(
                pts[r["arch_id"]][4]
            )


def test_formats_parse(runner, syn):
    r = _invoke(runner, syn, fmt="csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert list(rows[0]) == ["estimator", "group", "lo", "hi", "levels", "n_group", "n_front", "gt_best",
                             "pareto_best", "gap"]  # fmt: skip
    r = _invoke(runner, syn, "--show", "fronts", fmt="csv")
    assert list(next(csv.reader(io.StringIO(r.output)))) == [
        "estimator", "front", "level", "arch_id", "arch_str", "params", "score", "truth",
    ]  # fmt: skip
    for fmt, needle in (("table", "Pareto"), ("markdown", "| estimator |"), ("latex", r"\begin{tabular}")):
        r = _invoke(runner, syn, fmt=fmt)
        assert r.exit_code == 0 and needle in r.output, r.output


@pytest.mark.parametrize(
    "args, needle",
    [
        (["-t", "cifar10-tset"], "cifar10-test"),
        (["-e", "grasp"], "grasp"),  # registered, not scored
        (["--show", "bogus"], "--show"),
        (["--by", "relu"], "--by"),
        (["--levels", "0"], "--levels"),
        (["--groups", "0"], "--groups"),
        (["--epoch", "3"], "nothing to show"),
    ],
)
def test_bad_input_is_one_line(runner, syn, args, needle):
    assert needle in one_line_error(_invoke(runner, syn, *args, fmt="table"))


def test_missing_params_is_one_line(runner, tmp_path):
    syn = make_store(str(tmp_path / "noparams.duckdb"), "toy", {"synflow": ("synflow", 0.5)})
    with Store(syn.path) as st:
        st.query("DELETE FROM scores WHERE estimator = 'params'")
    line = one_line_error(_invoke(runner, syn, "-e", "synflow", fmt="table"))
    assert "params" in line and "estbench score" in line
    assert _invoke(runner, syn, "-e", "synflow", "--by", "flops").exit_code == 0
