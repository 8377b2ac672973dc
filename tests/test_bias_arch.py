"""`estbench bias arch` (architecture-level bias, paper Sec. 5.2, Fig. 6, A25-A28) against
a direct implementation on a synthetic toy store: points rebuilt from the arrays the
store was built from, ranks by sorting, op counts by reading the arch strings, class
sizes by counting keys."""

from __future__ import annotations

import csv
import io
import json
import math
import re

import numpy as np
import pytest
from bias_support import make_store
from conftest import app
from tests_support import one_line_error

from estbench.analysis.archbias import extremes
from estbench.estimators import ESTIMATORS as REGISTRY
from estbench.spaces import get_space

ESTIMATORS = {"synflow": ("synflow", 0.5), "os_loss": ("os_loss", 0.5), "snip": ("snip", 0.5)}
METRIC = "cifar10-test"


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("archbias") / "syn.duckdb")
    return make_store(path, "toy", ESTIMATORS, representatives_only=("snip",))


def _invoke(runner, path, *args, fmt="json"):
    return runner.invoke(app(), ["bias", "arch", "--space", "toy", "--store", path, "--format", fmt, *args])


def _json(runner, path, *args):
    r = _invoke(runner, path, *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


# ---- the direct implementation -------------------------------------------------------


def direct_points(syn, name, protocol="deiso", post_deiso=False):
    """Per point (sorted by rep): rep, truth, score, scored members, class size."""
    score = syn.scores[name] if name in syn.scores else getattr(syn, name)
    truth = syn.truth[METRIC]
    keys = syn.iso_keys if protocol == "deiso" else [str(i) for i in range(len(truth))]
    out = []
    for k in dict.fromkeys(keys):
        members = [i for i, key in enumerate(keys) if key == k]
        scored = [i for i in members if not np.isnan(score[i])]
        if not scored:
            continue
        s = float(np.mean(score[scored])) if post_deiso else float(score[min(scored)])
        out.append((min(scored), float(np.mean(truth[members])), s, len(scored), len(members)))
    out.sort()
    return out


def direct(syn, name, k, which="both", protocol="deiso", post_deiso=False):
    pts = direct_points(syn, name, protocol, post_deiso)
    m = len(pts)
    sign = 1 if REGISTRY.meta(name)["higher_is_better"] else -1
    by_score = sorted(range(m), key=lambda i: (-sign * pts[i][2], pts[i][0]))
    by_truth = sorted(range(m), key=lambda i: (-pts[i][1], pts[i][0]))
    est_rank = {i: p + 1 for p, i in enumerate(by_score)}
    true_rank = {i: p + 1 for p, i in enumerate(by_truth)}
    kk = min(k, m)
    picks = []
    if which in ("top", "both"):
        picks += [("top", i) for i in by_score[:kk]]
    if which in ("bottom", "both"):
        picks += [("bottom", i) for i in by_score[::-1][:kk]]
    rows = []
    for label, i in picks:
        rep, truth, score, scored, size = pts[i]
        s = syn.arch_strs[rep]
        ops = re.findall(r"\|([a-z_0-9]+)~\d+", s)
        row = {
            "estimator": name, "points": m, "which": label, "est_rank": est_rank[i], "arch_id": rep, "arch_str": s,
            "score": score, "true_rank": true_rank[i], "truth": truth, "params": float(syn.params[rep]),
            "flops": float(syn.flops[rep]), "iso_size": syn.iso_keys.count(syn.iso_keys[rep]),
        }  # fmt: skip
        row.update({op: ops.count(op) for op in get_space("toy").cell.ops})
        if protocol != "iso":
            row.update(class_size=size, scored=scored)
        rows.append(row)
    return rows


def _same(got, want):
    assert set(got) == set(want) | {"config_hash", "epoch"}, set(got) ^ set(want)
    for key, v in want.items():
        if isinstance(v, float):
            if math.isnan(v):
                assert got[key] is None, (key, got)
            else:
                assert got[key] == pytest.approx(v, rel=1e-12), (key, got, want)
        else:
            assert got[key] == v, (key, got, want)


# ---- tests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "protocol,post_deiso,k,which",
    [("deiso", False, 3, "both"), ("deiso", True, 2, "top"), ("iso", False, 4, "bottom"), ("iso", False, 30, "both")],
)
def test_matches_direct(runner, syn, protocol, post_deiso, k, which):
    args = ["--protocol", protocol, "--k", str(k), "--which", which] + ["--post-deiso"] * post_deiso
    rows = _json(runner, syn.path, *args)
    names = ["flops", "os_loss", "params", "snip", "synflow"]
    assert sorted({r["estimator"] for r in rows}) == names
    for name in names:
        got = [r for r in rows if r["estimator"] == name]
        want = direct(syn, name, k, which, protocol, post_deiso)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)


def test_lower_is_better_top_has_the_lowest_loss(runner, syn):
    rows = _json(runner, syn.path, "--protocol", "iso", "-e", "os_loss", "--k", "1")
    finite = syn.scores["os_loss"]
    top, bottom = rows
    assert top["which"] == "top" and top["score"] == pytest.approx(np.nanmin(finite))
    assert bottom["which"] == "bottom" and bottom["score"] == pytest.approx(np.nanmax(finite))


def test_representatives_only_estimator_is_scored_on_one_member(runner, syn):
    rows = _json(runner, syn.path, "-e", "snip", "--k", "9", "--which", "top")
    assert len(rows) == len(set(syn.iso_keys)) and all(r["scored"] == 1 for r in rows)
    assert max(r["class_size"] for r in rows) > 1  # classes with several members, one scored
    assert all(r["class_size"] == r["iso_size"] for r in rows)  # deiso: the class is the iso class


def test_extremes_library():
    sr = np.array([3, 1, 4, 2, 5])
    pos, labels = extremes(sr, 2)
    assert pos.tolist() == [1, 3, 4, 2] and labels.tolist() == ["top", "top", "bottom", "bottom"]
    pos, labels = extremes(sr, 9, "bottom")
    assert sr[pos].tolist() == [5, 4, 3, 2, 1]


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "markdown", "latex"])
def test_every_format(runner, syn, fmt):
    r = _invoke(runner, syn.path, "--k", "2", fmt=fmt)
    assert r.exit_code == 0, r.output
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(r.output)))
        assert len(rows) == 5 * 4 and {"arch_str", "true_rank", "nor_conv_3x3", "iso_size", "scored"} <= set(rows[0])
    elif fmt == "json":
        assert len(json.loads(r.output)) == 20
    elif fmt == "table":
        assert "arch_str" in r.output and "true_rank" in r.output


def test_missing_structural_scores_are_nan_with_a_note(runner, tmp_path):
    from estbench.store import Store

    syn = make_store(str(tmp_path / "bare.duckdb"), "toy", {"synflow": ("synflow", 0.5)})
    with Store(syn.path) as st:
        st.query("DELETE FROM scores WHERE estimator IN ('params', 'flops')")
    rows = _json(runner, syn.path, "--k", "2")
    assert rows and all(r["params"] is None and r["flops"] is None for r in rows)
    want = direct(syn, "synflow", 2)
    for g, w in zip(rows, want):
        _same(g, {**w, "params": float("nan"), "flops": float("nan")})
    r = _invoke(runner, syn.path, "--k", "2", fmt="table")
    assert r.exit_code == 0 and "no stored params scores" in r.output


def test_errors_are_one_line(runner, syn):
    assert "nope" in one_line_error(_invoke(runner, syn.path, "-e", "nope", fmt="table"))
    assert "--k" in one_line_error(_invoke(runner, syn.path, "--k", "0", fmt="table"))
    assert "--which" in one_line_error(_invoke(runner, syn.path, "--which", "middle", fmt="table"))
    assert "truth" in one_line_error(_invoke(runner, syn.path, "--truth", "nope-test", fmt="table"))
