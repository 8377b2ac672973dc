"""`estbench bias complexity` (complexity-level bias, paper Sec. 5.1, Fig. 5) against a
direct implementation on a synthetic toy store: points (classes, class truths,
representative or mean scores) rebuilt from the arrays the store was built from, ranks
by sorting, groups by counting smaller values, Kendall's tau-b by counting pairs."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from bias_support import make_store
from conftest import app
from tests_support import one_line_error

from estbench.analysis.complexity import complexity_bias
from estbench.estimators import ESTIMATORS as REGISTRY

ESTIMATORS = {"synflow": ("synflow", 0.5), "os_loss": ("os_loss", 0.5), "snip": ("snip", 0.5)}
METRIC = "cifar10-test"


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("complexity") / "syn.duckdb")
    return make_store(path, "toy", ESTIMATORS, representatives_only=("snip",))


def _invoke(runner, path, *args, fmt="json"):
    return runner.invoke(app(), ["bias", "complexity", "--space", "toy", "--store", path, "--format", fmt, *args])


def _json(runner, syn, *args):
    r = _invoke(runner, syn.path, *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


# ---- the direct implementation -------------------------------------------------------


def tau_b(x, y) -> float:
    """Kendall's tau-b by counting all pairs."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 2:
        return float("nan")
    conc = disc = tie_x = tie_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            tie_x += dx == 0
            tie_y += dy == 0
            if dx * dy > 0:
                conc += 1
            elif dx * dy < 0:
                disc += 1
    pairs = n * (n - 1) // 2
    den = math.sqrt((pairs - tie_x) * (pairs - tie_y))
    return (conc - disc) / den if den else float("nan")


def direct_points(syn, name, protocol="deiso", post_deiso=False):
    """(rep, truth, score) per point, sorted by rep, from the arrays."""
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
        out.append((min(scored), float(np.mean(truth[members])), s))
    out.sort()
    return [np.array(c) for c in zip(*out)]


def ranks(values, rep):
    """1-based ranks, highest value first, ties by rep."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], rep[i]))
    r = np.empty(len(values), dtype=int)
    for pos, i in enumerate(order):
        r[i] = pos + 1
    return r


def direct(syn, name, by="flops", groups=3, protocol="deiso", post_deiso=False):
    rep, truth, score = direct_points(syn, name, protocol, post_deiso)
    rep = rep.astype(int)
    s = score if REGISTRY.meta(name)["higher_is_better"] else -score
    yr, sr = ranks(truth, rep), ranks(s, rep)
    c = getattr(syn, by)[rep]
    m = len(rep)
    g = np.array([min(int((c < v).sum()) * groups // m, groups - 1) for v in c])
    rows = []
    for i in range(groups):
        at = np.flatnonzero(g == i)
        if not len(at):
            rows.append({"group": i, "n": 0, "points": m})
            continue
        rows.append(
            {
                "group": i, "n": len(at), "points": m, f"{by}_min": c[at].min(), f"{by}_max": c[at].max(),
                "kd": tau_b(truth[at], s[at]), "mean_rd": float(np.mean((yr[at] - sr[at]) / m)),
                "mean_true_rank": float(np.mean(yr[at])) / m, "mean_est_rank": float(np.mean(sr[at])) / m,
                "mean_truth": float(np.mean(truth[at])), "mean_score": float(np.mean(score[at])),
            }
        )  # fmt: skip
    return rows


def _same(got, want):
    for key, v in want.items():
        g = got[key]
        if isinstance(v, float) and math.isnan(v):
            assert g is None, (key, got)
        else:
            assert g == pytest.approx(v, rel=1e-9, abs=1e-12), (key, got, want)
    for key in ("kd", "mean_rd", "mean_true_rank", "mean_est_rank", "mean_truth", "mean_score"):
        if key not in want:
            assert got[key] is None, (key, got)


# ---- tests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "protocol,post_deiso,by,groups",
    [
        ("deiso", False, "flops", 3),
        ("deiso", True, "params", 2),
        ("iso", False, "flops", 5),
        ("iso", False, "params", 3),
    ],
)
def test_matches_direct(runner, syn, protocol, post_deiso, by, groups):
    args = ["--protocol", protocol, "--by", by, "--groups", str(groups)] + ["--post-deiso"] * post_deiso
    rows = _json(runner, syn, *args)
    names = ["flops", "os_loss", "params", "snip", "synflow"]
    assert sorted({r["estimator"] for r in rows}) == names
    for name in names:
        got = [r for r in rows if r["estimator"] == name]
        want = direct(syn, name, by, groups, protocol, post_deiso)
        assert [r["group"] for r in got] == list(range(groups))
        for g, w in zip(got, want):
            _same(g, w)


def test_representatives_only_estimator_has_one_point_per_class(runner, syn):
    rows = _json(runner, syn, "--protocol", "iso", "-e", "snip", "-e", "synflow", "--groups", "2")
    points = {r["estimator"]: r["points"] for r in rows}
    assert points == {"snip": len(set(syn.iso_keys)), "synflow": len(syn.arch_strs)}


def test_library_against_direct_with_ties():
    rng = np.random.default_rng(3)
    m = 60
    y = rng.integers(0, 8, m).astype(float)  # many ties
    s = y + rng.integers(-3, 4, m)
    rep = np.arange(m)
    yr, sr = ranks(y, rep), ranks(s, rep)
    g = rng.integers(0, 4, m)
    g[g == 2] = 3  # group 2 left empty
    c = rng.normal(size=m)
    d = complexity_bias(y, s, yr, sr, g, 4, c)
    assert d["n"].tolist() == [int((g == i).sum()) for i in range(4)]
    assert d["n"][2] == 0 and np.isnan(d["kd"][2]) and np.isnan(d["mean_rd"][2]) and np.isnan(d["c_min"][2])
    for i in (0, 1, 3):
        at = g == i
        assert d["kd"][i] == pytest.approx(tau_b(y[at], s[at]))
        assert d["mean_rd"][i] == pytest.approx(np.mean(yr[at] - sr[at]) / m)
        assert d["mean_rd"][i] == pytest.approx(d["mean_true_rank"][i] - d["mean_est_rank"][i])
        assert (d["c_min"][i], d["c_max"][i]) == (c[at].min(), c[at].max())


def test_sign_positive_means_overestimated():
    """A score that lifts the largest group above its truth gives that group mean RD > 0
    and the rest mean RD < 0 (the ranks are over all points, so the shifts sum to 0)."""
    rng = np.random.default_rng(0)
    m = 100
    y = rng.normal(size=m)
    c = np.arange(m, dtype=float)
    g = (c * 5 // m).astype(int)
    s = y + 10.0 * (g == 4)
    rep = np.arange(m)
    d = complexity_bias(y, s, ranks(y, rep), ranks(s, rep), g, 5)
    assert d["mean_rd"][4] > 0.3 and all(d["mean_rd"][:4] < 0)
    assert np.dot(d["mean_rd"], d["n"]) == pytest.approx(0.0, abs=1e-12)
    assert d["kd"][4] == pytest.approx(tau_b(y[g == 4], s[g == 4]))


def test_lower_is_better_estimator_enters_negated(runner, syn):
    """os_loss is stored as -(quality): as an estimator it ranks like synflow does on the
    same noise, i.e. its intra-group KD is positive where it orders archs well."""
    rows = _json(runner, syn, "--protocol", "iso", "-e", "os_loss", "--groups", "2")
    want = direct(syn, "os_loss", "flops", 2, "iso")
    assert [r["kd"] for r in rows] == pytest.approx([w["kd"] for w in want])
    assert rows[0]["mean_score"] == pytest.approx(want[0]["mean_score"])  # the stored (unnegated) score


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "markdown", "latex"])
def test_every_format(runner, syn, fmt):
    r = _invoke(runner, syn.path, "--groups", "3", fmt=fmt)
    assert r.exit_code == 0, r.output
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(r.output)))
        assert len(rows) == 5 * 3 and {"kd", "mean_rd", "flops_min", "flops_max", "n"} <= set(rows[0])
    elif fmt == "json":
        assert len(json.loads(r.output)) == 15
    elif fmt == "table":
        assert "kd_g0" in r.output and "rd_g2" in r.output and "overestimated" in r.output


def test_errors_are_one_line(runner, syn, tmp_path):
    assert "nope" in one_line_error(_invoke(runner, syn.path, "-e", "nope", fmt="table"))
    assert "--groups" in one_line_error(_invoke(runner, syn.path, "--groups", "10", fmt="table"))  # 9 classes
    assert "--groups" in one_line_error(_invoke(runner, syn.path, "--groups", "0", fmt="table"))
    assert "--by" in one_line_error(_invoke(runner, syn.path, "--by", "relu", fmt="table"))
    assert "epoch" in one_line_error(_invoke(runner, syn.path, "--epoch", "7", fmt="table"))


def test_missing_complexity_scores_and_tiny_groups(runner, tmp_path):
    from estbench.store import Store

    syn = make_store(str(tmp_path / "few.duckdb"), "toy", {"synflow": ("synflow", 0.5)})
    distinct = [int(np.flatnonzero(syn.flops == v)[0]) for v in np.unique(syn.flops)[:3]]
    keep = ", ".join(map(str, distinct))
    with Store(syn.path) as st:
        st.query("DELETE FROM scores WHERE estimator = 'params'")
        st.query(f"DELETE FROM scores WHERE estimator = 'synflow' AND arch_id NOT IN ({keep})")
    line = one_line_error(_invoke(runner, syn.path, "--by", "params", fmt="table"))
    assert "params" in line and "estbench score" in line
    # three points of distinct flops in three groups: no group has two points
    line = one_line_error(_invoke(runner, syn.path, "--protocol", "iso", "-e", "synflow", "--groups", "3", fmt="table"))
    assert "two points" in line
    ok = _invoke(runner, syn.path, "--protocol", "iso", "-e", "synflow", "--groups", "2")
    assert ok.exit_code == 0, ok.output
    rows = json.loads(ok.output)
    assert [r["n"] for r in rows] == [2, 1] and rows[1]["kd"] is None  # one point: no KD, not an error
