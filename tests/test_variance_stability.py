"""`estbench variance stability` (paper Sec. 5.3, Fig. 7; Sec. 6.1, Fig. 8) against a
direct implementation on a synthetic toy store (tests/variance_support.py): points per
epoch / seed rebuilt from the arrays, relative criteria by counting pairs and sorting
ranks on the classes both sides have, true criteria likewise and against `criteria`."""

from __future__ import annotations

import csv
import io
import itertools
import json

import numpy as np
import pytest
from conftest import app
from tests_support import one_line_error
from variance_support import (
    METRIC,
    SEEDS,
    arch_scores,
    close,
    criteria_direct,
    hib,
    make_variance_store,
    points,
    set_criteria,
    tau_b,
)


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_variance_store(str(tmp_path_factory.mktemp("stability") / "syn.duckdb"), seed=3)


def _invoke(runner, syn, *args, fmt="json"):
    cmd = ["variance", "stability", "--space", "toy", "--store", syn.path, "--format", fmt, *args]
    return runner.invoke(app(), cmd)


def _json(runner, syn, *args):
    r = _invoke(runner, syn, *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _ens(syn, row) -> int:
    return {h: e for (est, e), h in syn.hashes.items() if est == row["estimator"]}[row["config_hash"]]


def direct_points(syn, est, ens, epoch, seeds, protocol, post_deiso):
    """(cls, rep, truth, score) of criteria's points (scores: mean over ok batches, then seeds)."""
    return points(syn, arch_scores(syn, est, ens, epoch, seeds, None), protocol, post_deiso)


def direct_relative(a, b, est, k=0.05) -> dict:
    """Relative criteria of points ``a`` against ``b`` (as truth) on the classes both have."""
    sign = 1 if hib(est) else -1
    sa = dict(zip(a[0].tolist(), a[3]))
    sb = dict(zip(b[0].tolist(), b[3]))
    common = sorted(set(sa) & set(sb))
    x = np.array([sign * sa[c] for c in common])
    y = np.array([sign * sb[c] for c in common])
    tag = f"{k * 100:g}%"
    sets = set_criteria(y, x, common, k)
    return {"n": len(common), "kd": tau_b(y, x), f"p_top@{tag}": sets[f"p_top@{tag}"],
            f"p_bottom@{tag}": sets[f"p_bottom@{tag}"]}  # fmt: skip


# ---- epochs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "protocol,post_deiso,seeds",
    [("deiso", False, SEEDS), ("iso", False, SEEDS), ("deiso", True, SEEDS), ("iso", False, (20,))],  # fmt: skip
)
def test_consecutive_epochs_match_direct(runner, syn, protocol, post_deiso, seeds):
    args = ["-e", "os_acc", "-e", "os_loss", "--protocol", protocol] + ["--post-deiso"] * post_deiso
    if seeds != SEEDS:
        args += [x for s in seeds for x in ("--seed", str(s))]
    got = _json(runner, syn, *args)
    want = []
    for est in ("os_acc", "os_loss"):
        for ens in (1, 3, 5):
            epochs = sorted({ep for e, ep in syn.groups(est) if e == ens
                             if any((est, ens, ep, s) in syn.values for s in seeds)})  # fmt: skip
            for e1, e2 in zip(epochs[:-1], epochs[1:]):
                a = direct_points(syn, est, ens, e1, seeds, protocol, post_deiso)
                b = direct_points(syn, est, ens, e2, seeds, protocol, post_deiso)
                want.append(((est, ens, e1, e2), direct_relative(a, b, est)))
    assert [(r["estimator"], _ens(syn, r), r["epoch_from"], r["epoch_to"]) for r in got] == [w[0] for w in want]
    for r, (_, w) in zip(got, want):
        for key, v in w.items():
            assert close(r[key if key == "n" else f"rel_{key}"], v), (r, key, v)


def test_k_option(runner, syn):
    got = _json(runner, syn, "-e", "os_loss", "--protocol", "iso", "--k", "20%", "--k", "0.5")
    assert {"rel_p_top@20%", "rel_p_bottom@50%"} <= set(got[0]) and "rel_p_top@5%" not in got[0]
    for r in got:
        a = direct_points(syn, "os_loss", _ens(syn, r), r["epoch_from"], SEEDS, "iso", False)
        b = direct_points(syn, "os_loss", _ens(syn, r), r["epoch_to"], SEEDS, "iso", False)
        for k in (0.2, 0.5):
            w = direct_relative(a, b, "os_loss", k)
            tag = f"{k * 100:g}%"
            assert close(r[f"rel_p_top@{tag}"], w[f"p_top@{tag}"]) and close(
                r[f"rel_p_bottom@{tag}"], w[f"p_bottom@{tag}"]
            )


# ---- seeds -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol,post_deiso", [("deiso", False), ("iso", False), ("deiso", True)])
def test_seeds_match_direct(runner, syn, protocol, post_deiso):
    args = ["-e", "os_acc", "-e", "os_loss", "--show", "seeds", "--protocol", protocol] + ["--post-deiso"] * post_deiso
    got = _json(runner, syn, *args)
    want = []
    for est in ("os_acc", "os_loss"):
        for ens, ep in syn.groups(est):
            seeds = syn.seeds(est, ens, ep)
            if len(seeds) < 2:
                continue
            per = {s: direct_points(syn, est, ens, ep, (s,), protocol, post_deiso) for s in seeds}
            for a, b in itertools.combinations(seeds, 2):
                want.append(((est, ens, ep, f"seed {a}", f"seed {b}"), direct_relative(per[a], per[b], est)))
            mean = direct_points(syn, est, ens, ep, seeds, protocol, post_deiso)
            for tag, p in [(f"seed {s}", per[s]) for s in seeds] + [
                (f"mean of seeds {','.join(map(str, seeds))}", mean)
            ]:
                crit = criteria_direct(p[2], p[3], p[1], hib(est))
                want.append(((est, ens, ep, tag, METRIC), {"n": len(p[1]), "kd": crit["kd"],
                             "p_top@5%": crit["p_top@5%"], "p_bottom@5%": crit["p_bottom@5%"]}))  # fmt: skip
    keys = [(r["estimator"], _ens(syn, r), r["epoch"], r["scores"], r["against"]) for r in got]
    assert sorted(keys) == sorted(w[0] for w in want)
    rows = dict(zip(keys, got))
    for key, w in want:
        for c, v in w.items():
            assert close(rows[key][c], v), (key, c, rows[key][c], v)


def test_seed_rows_are_criteria(runner, syn):
    """Each seed's and the mean's true criteria are `criteria --seed S` / `criteria`'s."""
    got = _json(runner, syn, "-e", "os_acc", "--show", "seeds")

    def crit(*args):
        cmd = ["criteria", "--space", "toy", "--store", syn.path, "-f", "json", "-e", "os_acc", *args]
        r = runner.invoke(app(), cmd)
        assert r.exit_code == 0, r.output
        return {(x["config_hash"], x["epoch"]): x for x in json.loads(r.output)}

    ref = {"mean": crit(), **{f"seed {s}": crit("--seed", str(s)) for s in SEEDS}}
    checked = 0
    for r in got:
        if r["against"] != METRIC:
            continue
        c = ref["mean" if r["scores"].startswith("mean") else r["scores"]][(r["config_hash"], r["epoch"])]
        assert r["n"] == c["points"]
        for key in ("kd", "p_top@5%", "p_bottom@5%"):
            assert r[key] == c[key]
        checked += 1
    assert checked >= 9


# ---- ensembles ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["deiso", "iso"])
def test_ensembles_match_direct(runner, syn, protocol):
    got = _json(runner, syn, "--show", "ensembles", "--protocol", protocol)
    want = []
    for family, est in enumerate(("os_acc", "os_loss"), start=1):
        for ep in sorted({ep for _, ep in syn.groups(est)}):
            settings = sorted(ens for ens, e in syn.groups(est) if e == ep)
            if len(settings) < 2:
                continue
            for ens in settings:
                p = direct_points(syn, est, ens, ep, SEEDS, protocol, False)
                want.append(((est, ep, family, ens), {"n": len(p[1]), **criteria_direct(p[2], p[3], p[1], hib(est))}))
    assert [(r["estimator"], r["epoch"], r["family"], r["ensemble"]) for r in got] == [w[0] for w in want]
    for r, (_, w) in zip(got, want):
        assert r["config_hash"] == syn.hashes[(r["estimator"], r["ensemble"])]
        for key, v in w.items():
            assert close(r[key], v), (r, key, v)


# ---- formats and errors ----------------------------------------------------------------


@pytest.mark.parametrize("show", ["epochs", "seeds", "ensembles"])
def test_every_format(runner, syn, show):
    rows = _json(runner, syn, "--show", show)
    assert rows and {r["estimator"] for r in rows} == {"os_acc", "os_loss"}  # structural: one epoch, one seed
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
        (["-e", "params"], "2 or more checkpoint epochs"),
        (["-e", "os_acc", "--epoch", "15"], "2 or more checkpoint epochs"),
        (["--show", "seeds", "--seed", "20"], "2 or more seeds"),
        (["--show", "seeds", "-e", "params"], "2 or more seeds"),
        (["--show", "ensembles", "-e", "params"], "differ only in --ensemble"),
        (["--show", "ensembles", "--epoch", "5"], "differ only in --ensemble"),
        (["--show", "checkpoints"], "--show 'checkpoints'"),
        (["--k", "150%"], "--k '150%'"),
        (["--epoch", "99"], "nothing to show"),
        (["--show", "seeds", "--epoch", "99"], "nothing to show"),
        (["-e", "os_los"], "os_loss"),
    ],
)
def test_errors_one_line(runner, syn, args, text):
    line = one_line_error(_invoke(runner, syn, *args))
    assert text in line, line
