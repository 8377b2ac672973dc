"""`estbench variance batches` (paper Sec. 4.1, Fig. 3, A3) against a direct implementation
on a synthetic toy store (tests/variance_support.py): b-batch scores as numpy means of
the first b batches of the arrays the store was built from, points by looping over the
classes, Kendall's tau-b by counting pairs, Spearman from average ranks, the set
criteria from sorted ranks; and b = B against `criteria`."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from conftest import app
from tests_support import one_line_error
from variance_support import (
    FAILED,
    SEEDS,
    SHORT,
    arch_scores,
    close,
    criteria_direct,
    hib,
    make_variance_store,
    points,
    tau_b,
)

CRITERIA = ("kd", "spearman", "p_top@5%", "p_bottom@5%", "br@5%")


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_variance_store(str(tmp_path_factory.mktemp("batches") / "syn.duckdb"))


def _invoke(runner, syn, *args, fmt="json"):
    return runner.invoke(app(), ["variance", "batches", "--space", "toy", "--store", syn.path, "--format", fmt, *args])


def _json(runner, syn, *args):
    r = _invoke(runner, syn, *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _n_batches(syn, est, ens, epoch, seeds) -> int:
    return max(int(syn.rows[(est, ens, epoch, s)].max()) for s in seeds if (est, ens, epoch, s) in syn.rows)


def direct_curve(syn, est, ens, epoch, protocol="deiso", post_deiso=False, seeds=SEEDS, k=0.05):
    big = _n_batches(syn, est, ens, epoch, seeds)
    out = []
    for b in range(1, big + 1):
        score = arch_scores(syn, est, ens, epoch, seeds, b)
        if np.isnan(score).all():
            continue
        _, rep, truth, s = points(syn, score, protocol, post_deiso)
        crit = criteria_direct(truth, s, rep, hib(est), k)
        out.append({"batches": b, "of_batches": big, "points": len(rep), "distinct": len(np.unique(s)), **crit})
    return out


def _group(syn, row) -> tuple[str, int, int]:
    ens = {h: e for (est, e), h in syn.hashes.items() if est == row["estimator"]}[row["config_hash"]]
    return row["estimator"], ens, row["epoch"]


@pytest.mark.parametrize(
    "protocol,post_deiso,seeds",
    [("deiso", False, SEEDS), ("iso", False, SEEDS), ("deiso", True, SEEDS), ("iso", False, (2020,))],
)
def test_criteria_per_batch_count_match_direct(runner, syn, protocol, post_deiso, seeds):
    args = ["--protocol", protocol] + ["--post-deiso"] * post_deiso
    if seeds != SEEDS:
        args += [x for s in seeds for x in ("--seed", str(s))]
    got = _json(runner, syn, "-e", "os_acc", "-e", "os_loss", *args)
    by_group: dict[tuple, list] = {}
    for row in got:
        by_group.setdefault(_group(syn, row), []).append(row)
    want_groups = {
        (est, ens, ep)
        for est in ("os_acc", "os_loss")
        for ens, ep in syn.groups(est)
        if any((est, ens, ep, s) in syn.values for s in seeds)
    }
    assert set(by_group) == want_groups
    for (est, ens, ep), rows in by_group.items():
        want = direct_curve(syn, est, ens, ep, protocol, post_deiso, seeds)
        assert [r["batches"] for r in rows] == [w["batches"] for w in want]
        for r, w in zip(rows, want):
            for key, v in w.items():
                assert close(r[key], v), (est, ens, ep, r["batches"], key, r[key], v)


def test_failed_and_short_archs_leave_at_their_prefix(runner, syn):
    """A failed batch, and an arch scored with fewer batches, end that (arch, seed)'s
    prefix: with only that seed, the arch is a point up to the prefix and not after."""
    for est, ens, ep, sd, _, n_ok in (SHORT, FAILED):
        got = _json(runner, syn, "-e", est, "--protocol", "iso", "--seed", str(sd), "--epoch", str(ep))
        rows = [r for r in got if _group(syn, r) == (est, ens, ep)]
        assert [r["points"] for r in rows] == [27 if b <= n_ok else 26 for b in range(1, 5)]


def test_last_batch_count_is_criteria(runner, syn):
    """At b = B the values are criteria's, wherever every arch has all B batches ok."""
    r = runner.invoke(
        app(), ["criteria", "--space", "toy", "--store", syn.path, "-f", "json", "-e", "os_acc", "-e", "os_loss"]
    )
    assert r.exit_code == 0, r.output
    crit = {(x["estimator"], x["config_hash"], x["epoch"]): x for x in json.loads(r.output)}
    got = _json(runner, syn, "-e", "os_acc", "-e", "os_loss")
    irregular = {FAILED[:3], SHORT[:3]}
    checked = 0
    for row in got:
        if row["batches"] != row["of_batches"] or _group(syn, row) in irregular:
            continue
        c = crit[(row["estimator"], row["config_hash"], row["epoch"])]
        assert row["points"] == c["points"]
        for key in CRITERIA:
            assert row[key] == c[key], (row, key)
        checked += 1
    assert checked == len(crit) - len(irregular)


def test_k_option(runner, syn):
    got = _json(runner, syn, "-e", "os_loss", "--protocol", "iso", "--k", "10%", "--k", "0.2")
    assert {"p_top@10%", "p_bottom@20%", "br@20%"} <= set(got[0]) and "p_top@5%" not in got[0]
    for row in got:
        est, ens, ep = _group(syn, row)
        for k, tag in ((0.1, "10%"), (0.2, "20%")):
            w = next(x for x in direct_curve(syn, est, ens, ep, "iso", k=k) if x["batches"] == row["batches"])
            for c in ("p_top", "p_bottom", "br"):
                assert close(row[f"{c}@{tag}"], w[f"{c}@{tag}"])


# ---- levels --------------------------------------------------------------------------


def direct_levels(syn, est, ens, epoch, protocol="iso", seeds=SEEDS):
    big = _n_batches(syn, est, ens, epoch, seeds)
    one = points(syn, arch_scores(syn, est, ens, epoch, seeds, 1), protocol)
    last = points(syn, arch_scores(syn, est, ens, epoch, seeds, big), protocol)
    common = sorted(set(one[0].tolist()) & set(last[0].tolist()))
    sign = 1 if hib(est) else -1
    s1 = {c: v for c, v in zip(one[0].tolist(), one[3])}
    sb = {c: (t, v) for c, t, v in zip(last[0].tolist(), last[2], last[3])}
    levels = sorted({s1[c] for c in common}, key=lambda v: -sign * v)
    rows = []
    for lv in levels:
        members = [c for c in common if s1[c] == lv]
        if len(members) >= 2:
            kd = tau_b([sb[c][0] for c in members], [sign * sb[c][1] for c in members])
            rows.append({"level": lv, "size": len(members), "kd": kd})
    kds = [r["kd"] for r in rows if not np.isnan(r["kd"])]
    summary = {
        "size": len(common), "levels": len(levels), "multi_levels": len(rows),
        "kd": float(np.mean(kds)) if kds else float("nan"),
        "positive": sum(k > 0 for k in kds), "negative": sum(k < 0 for k in kds),
    }  # fmt: skip
    return rows, summary, big


@pytest.mark.parametrize("protocol", ["iso", "deiso"])
def test_levels_match_direct(runner, syn, protocol):
    got = _json(runner, syn, "-e", "os_acc", "-e", "os_loss", "--show", "levels", "--protocol", protocol)
    groups: dict[tuple, list] = {}
    for row in got:
        groups.setdefault(_group(syn, row), []).append(row)
    tied = 0
    for (est, ens, ep), rows in groups.items():
        want, summary, big = direct_levels(syn, est, ens, ep, protocol)
        assert [r["row"] for r in rows] == ["level"] * len(want) + ["summary"]
        assert all(r["batches"] == big for r in rows)
        for r, w in zip(rows, want):
            for key, v in w.items():
                assert close(r[key], v), (est, ens, ep, key, r[key], v)
        s = rows[-1]
        assert s["level"] is None
        for key, v in summary.items():
            assert close(s[key], v), (est, ens, ep, key, s[key], v)
        tied += len(want)
    assert tied > 10  # the 1-batch accuracies do tie, so the test sees levels
    assert any(len(rs) == 1 for (e, _, _), rs in groups.items() if e == "os_loss")  # continuous: no ties


# ---- formats and errors ----------------------------------------------------------------


@pytest.mark.parametrize("show", ["criteria", "levels"])
def test_every_format(runner, syn, show):
    rows = _json(runner, syn, "--show", show)
    assert rows and {r["estimator"] for r in rows} == {"os_acc", "os_loss"}  # structural: one batch, left out
    r = _invoke(runner, syn, "--show", show, fmt="csv")
    assert r.exit_code == 0, r.output
    parsed = list(csv.DictReader(io.StringIO(r.output)))
    assert len(parsed) == len(rows) and list(parsed[0]) == list(rows[0])
    for fmt, mark in (("table", "os_acc"), ("markdown", "| os_acc"), ("latex", r"\begin{tabular}")):
        r = _invoke(runner, syn, "--show", show, fmt=fmt)
        assert r.exit_code == 0 and mark in r.output, r.output
    md = _invoke(runner, syn, "--show", show, fmt="markdown").output.splitlines()
    assert all(line.startswith("|") for line in md)


@pytest.mark.parametrize(
    "args,text",
    [
        (["--show", "histogram"], "--show 'histogram'"),
        (["--k", "0"], "--k '0'"),
        (["--k", "five"], "--k 'five'"),
        (["-e", "params"], "2 or more stored batches"),
        (["--epoch", "99"], "nothing to show"),
        (["-e", "os_acx"], "os_acc"),
        (["--protocol", "isox"], "unknown protocol"),
        (["--truth", "nope"], "nope"),
    ],
)
def test_errors_one_line(runner, syn, args, text):
    line = one_line_error(_invoke(runner, syn, *args))
    assert text in line, line
