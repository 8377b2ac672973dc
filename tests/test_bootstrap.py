"""Bootstrap intervals (`criteria --ci`) and the paired comparison (`bias compare`).

The vectorised resample criteria are checked against ``compute_criteria`` on explicitly
materialised resamples (``np.repeat`` of the drawn points, ordinal ranks with ties
broken by the original rank), so every shortcut (cumulative counts, count-weighted
Pearson and Spearman, the set criteria from consecutive ranks, Kendall from counts) is
held to the definition, ties included."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from bias_support import make_store
from conftest import app
from scipy import stats
from tests_support import one_line_error

from estbench.analysis import bootstrap as bs
from estbench.analysis.criteria import DEFAULT_KS, compute_criteria, ordinal_ranks
from estbench.analysis.points import PointSet, load_points

KS = DEFAULT_KS + (1.0,)


def _case(m, seed=0, ties=None, hib=True, noise=1.0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=m)
    s = y + rng.normal(scale=noise, size=m)
    if ties == "truth":
        y = np.round(y, 1)
    elif ties == "score":
        s = np.round(s)
    elif ties == "both":  # also points tied in both truth and score
        y, s = np.round(y), np.round(s)
    elif ties == "flat":  # one distinct truth point: many resamples have a constant truth
        y = np.where(np.arange(m) == 0, 1.0, 0.0)
    score = s if hib else -s
    rep = np.sort(rng.choice(10 * m, m, replace=False))
    return y, score, ordinal_ranks(y, True, rep), ordinal_ranks(score, hib, rep), hib


def _materialised(y, score, yr, sr, hib, counts, ks=KS):
    """compute_criteria on each resample, spelled out."""
    out = []
    for c in counts:
        pick = np.repeat(np.arange(len(y)), c)
        ry = ordinal_ranks(y[pick], True, yr[pick])  # copies: consecutive ranks, by position
        rs = ordinal_ranks(score[pick], hib, sr[pick])
        out.append(compute_criteria(y[pick], score[pick], ry, rs, hib, ks))
    return out


def _assert_rows_equal(got, ref, tol=1e-9):
    for b, row in enumerate(ref):
        for name, want in row.items():
            if name == "n":
                continue
            have = got[name][b]
            if np.isnan(want):
                assert np.isnan(have), (name, b, have)
            else:
                assert have == pytest.approx(want, abs=tol), (name, b, have, want)


@pytest.mark.parametrize(
    "m,ties,hib",
    [(60, None, True), (60, "truth", True), (60, "score", False), (80, "both", True), (10, "both", False),
     (12, "flat", True), (257, "both", True), (33, None, False)],
)  # fmt: skip
def test_vectorised_criteria_equal_materialised_resamples(m, ties, hib):
    y, score, yr, sr, hib = _case(m, seed=m, ties=ties, hib=hib)
    counts = bs.resample_counts(m, 60, seed=3)
    got = bs.resampled_criteria(y, score if hib else -score, score, yr, sr, counts, KS)
    _assert_rows_equal(got, _materialised(y, score, yr, sr, hib, counts))
    if ties == "flat":
        assert np.isnan(got["kd"]).any() and not np.isnan(got["kd"]).all()


def test_huge_scores_like_synflow():
    """Scores near 1e160 (synflow reaches 1e49 on NB201): their squares must not overflow."""
    y, s, _, _, _ = _case(80, seed=9)
    score = np.exp(360 + 3 * s)
    yr, sr = ordinal_ranks(y, True, np.arange(80)), ordinal_ranks(score, True, np.arange(80))
    counts = bs.resample_counts(80, 20, seed=2)
    got = bs.resampled_criteria(y, score, score, yr, sr, counts, (0.05,))
    ref = _materialised(y, score, yr, sr, True, counts, (0.05,))
    np.testing.assert_allclose(got["lc"], [r["lc"] for r in ref], atol=1e-9)
    np.testing.assert_allclose(got["mean"], [r["mean"] for r in ref], rtol=1e-12)


def test_kendall_from_counts_equals_scipy_and_the_numpy_fallback(monkeypatch):
    y, score, yr, sr, hib = _case(300, seed=5, ties="both")
    counts = bs.resample_counts(300, 20, seed=1)
    fast = bs.resampled_criteria(y, score, score, yr, sr, counts, (0.05,))["kd"]
    ref = [stats.kendalltau(np.repeat(y, c), np.repeat(score, c)).statistic for c in counts]
    np.testing.assert_allclose(fast, ref, atol=1e-12)
    monkeypatch.setattr(bs, "_kendall_dis", None)  # a scipy without the private routine
    slow = bs.resampled_criteria(y, score, score, yr, sr, counts, (0.05,))["kd"]
    np.testing.assert_allclose(slow, ref, atol=1e-12)


@pytest.mark.parametrize("ties", [None, "both"])
def test_key_criteria_equal_compute_criteria(ties):
    """The permutation test's criteria of integer scores, against compute_criteria."""
    rng = np.random.default_rng(7)
    m = 120
    y = rng.normal(size=m)
    if ties:
        y = np.round(y, 1)
    yr = ordinal_ranks(y, True, np.arange(m))
    keys = rng.integers(0, 12 if ties else 5 * m, size=(40, m))
    names = ["kd", "spearman"] + [f"{c}@{t}" for c in bs.SET_CRITERIA for t in ("1%", "5%", "50%", "100%")]
    got = bs.key_criteria(y, yr, keys, names)
    for i, row in enumerate(keys):
        v = row.astype(float)
        ref = compute_criteria(y, v, yr, ordinal_ranks(v, True, np.arange(m)), True, (0.01, 0.05, 0.5, 1.0))
        for n in names:
            assert got[n][i] == pytest.approx(ref[n], abs=1e-12), (n, i)


def test_rank_keys_keep_order_and_ties():
    s = np.array([3.0, 1.0, 1.0, 7.0, 3.0])
    k = bs.rank_keys(s)
    assert k.tolist() == (2 * stats.rankdata(s)).astype(int).tolist()
    assert ordinal_ranks(k.astype(float), True, np.arange(5)).tolist() == ordinal_ranks(s, True, np.arange(5)).tolist()


def test_resamples_are_seeded_and_shared_by_size():
    a, b = bs.resample_indices(50, 30, 4), bs.resample_indices(50, 30, 4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, bs.resample_indices(50, 30, 5))
    counts = bs.counts_of(a, 50)
    assert counts.shape == (30, 50) and (counts.sum(axis=1) == 50).all()
    assert np.array_equal(counts[3], np.bincount(a[3], minlength=50))
    draws = bs.Resamples(30, 4)
    assert draws.counts(50) is draws.counts(50) and np.array_equal(draws.counts(50), counts)


def _pointset(y, score, hib=True, name="x", rep=None):
    rep = np.arange(len(y)) if rep is None else np.asarray(rep)
    return PointSet(
        name, "h", 0, rep=rep, members=np.ones(len(y), dtype=np.int64), truth=np.asarray(y, float),
        score=np.asarray(score, float), truth_rank=ordinal_ranks(y, True, rep), score_rank=ordinal_ranks(score, hib, rep),
        higher_is_better=hib, truth_higher_is_better=True,
    )  # fmt: skip


def test_interval_covers_the_estimate_and_the_population_value():
    """Bivariate normal, rho = 0.8: the population Kendall tau is 2/pi asin(rho)."""
    rng = np.random.default_rng(11)
    m, rho = 800, 0.8
    y = rng.normal(size=m)
    s = rho * y + np.sqrt(1 - rho**2) * rng.normal(size=m)
    p = _pointset(y, s)
    ci = bs.criteria_intervals(p, (0.05,), 95.0, bs.Resamples(400, 0))
    point = compute_criteria(p.y, p.score, p.truth_rank, p.score_rank, True, (0.05,))
    for name in ("lc", "kd", "spearman", "mean", "p_top@5%", "br@5%"):
        lo, hi = ci[name]
        assert lo <= point[name] <= hi, name
    assert ci["lc"][0] < rho < ci["lc"][1]
    assert ci["kd"][0] < 2 / np.pi * np.arcsin(rho) < ci["kd"][1]
    assert ci["kd"][1] - ci["kd"][0] < 0.1  # and it is informative
    assert ci == bs.criteria_intervals(p, (0.05,), 95.0, bs.Resamples(400, 0))  # reproducible
    wider = bs.criteria_intervals(p, (0.05,), 99.0, bs.Resamples(400, 0))
    assert wider["kd"][0] <= ci["kd"][0] and ci["kd"][1] <= wider["kd"][1]


def test_too_few_points_and_bad_levels():
    from estbench.errors import BadInput

    with pytest.raises(BadInput, match="at least 10"):
        bs.criteria_intervals(_pointset(np.arange(9.0), np.arange(9.0)), name="tiny")
    for ci in (0, 100, -5, 150):
        with pytest.raises(BadInput, match="--ci"):
            bs.check_level(ci, 1000, 0)
    with pytest.raises(BadInput, match="--resamples"):
        bs.check_level(95, 3, 0)


# ---- compare ------------------------------------------------------------------------


def test_compare_a_with_itself():
    y, score, *_ = _case(200, seed=2, ties="score")
    p = _pointset(y, score)
    for c in bs.compare_points(p, p, ["kd", "spearman", "lc", "p_top@5%", "br@5%", "wr@10%"], "both", 200):
        assert c.difference == 0 and c.lo == 0 and c.hi == 0
        assert c.p_bootstrap == 1.0
        assert c.p_permutation == (None if c.criterion == "lc" else 1.0)


def test_compare_finds_a_clearly_better_estimator():
    rng = np.random.default_rng(3)
    m = 300
    y = rng.normal(size=m)
    good, bad = _pointset(y, y + rng.normal(scale=0.4, size=m)), _pointset(y, y + rng.normal(scale=2.0, size=m))
    out = {c.criterion: c for c in bs.compare_points(good, bad, ["kd", "spearman", "p_top@10%"], "both", 500)}
    for name in ("kd", "spearman"):
        c = out[name]
        assert c.difference > 0 and c.lo > 0
        assert c.p_bootstrap < 0.05 and c.p_permutation < 0.05
    # reversed: the same p-values, the difference and interval mirrored
    back = {c.criterion: c for c in bs.compare_points(bad, good, ["kd"], "both", 500)}
    assert back["kd"].difference == pytest.approx(-out["kd"].difference)
    assert back["kd"].p_permutation == pytest.approx(out["kd"].p_permutation)


def test_compare_matches_a_direct_bootstrap_and_permutation():
    """Interval, p_bootstrap and p_permutation recomputed with materialised resamples and
    explicit swaps of the normalised ranks."""
    rng = np.random.default_rng(8)
    m, n_res = 40, 50
    y = np.round(rng.normal(size=m), 1)
    a = _pointset(y, np.round(y + rng.normal(scale=0.7, size=m), 1))
    b = _pointset(y, -(y + rng.normal(scale=1.0, size=m)), hib=False)
    out = {c.criterion: c for c in bs.compare_points(a, b, ["kd", "p_top@10%"], "both", n_res, 90.0, 6)}
    counts = bs.resample_counts(m, n_res, 6)
    ra = _materialised(a.y, a.score, a.truth_rank, a.score_rank, True, counts, (0.1,))
    rb = _materialised(b.y, b.score, b.truth_rank, b.score_rank, False, counts, (0.1,))
    swap = bs.swap_masks(m, n_res, 6)
    ua, ub = stats.rankdata(a.s) / m, stats.rankdata(b.s) / m
    for name in ("kd", "p_top@10%"):
        d = np.array([x[name] - z[name] for x, z in zip(ra, rb)])
        assert (out[name].lo, out[name].hi) == pytest.approx(tuple(np.quantile(d, [0.05, 0.95])))
        p = min(1.0, 2 * (1 + min((d <= 0).sum(), (d >= 0).sum())) / (1 + n_res))
        assert out[name].p_bootstrap == pytest.approx(p)

        def crit(v, name=name):
            return compute_criteria(y, v, a.truth_rank, ordinal_ranks(v, True, a.rep), True, (0.1,))[name]

        d_obs = abs(crit(ua) - crit(ub))
        d_perm = np.array([abs(crit(np.where(w, ub, ua)) - crit(np.where(w, ua, ub))) for w in swap])
        assert out[name].p_permutation == pytest.approx((1 + (d_perm >= d_obs - 1e-12).sum()) / (1 + n_res))


def test_common_points_intersect_classes_and_rerank():
    y = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    a = _pointset(y, np.array([1.0, 2.0, 3.0, 4.0, 5.0]), rep=[0, 3, 6, 9, 12])
    b = _pointset(y[1:], np.array([9.0, 8.0, 8.0, 1.0]), rep=[2, 6, 9, 12])
    ca, cb = np.array(["k0", "k1", "k2", "k3", "k4"]), np.array(["k1", "k2", "k3", "k4"])
    pa, pb = bs.common_points(a, b, ca, cb)
    assert pa.rep.tolist() == pb.rep.tolist() == [2, 6, 9, 12]  # the smaller representative
    assert pa.truth.tolist() == pb.truth.tolist() == [4.0, 3.0, 2.0, 1.0]
    assert pa.score_rank.tolist() == [4, 3, 2, 1] and pb.score_rank.tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "text,want",
    [("kd", "kd"), ("SPEARMAN", "spearman"), ("p_top@5%", "p_top@5%"), ("br@0.05", "br@5%"), ("wr@0.1%", "wr@0.1%")],
)
def test_parse_criterion(text, want):
    assert bs.parse_criterion(text) == want


@pytest.mark.parametrize("text", ["mean", "kendall", "p_top@0", "p_top@x", "br@150%"])
def test_parse_criterion_refuses(text):
    from estbench.errors import BadInput

    with pytest.raises(BadInput, match="--criterion"):
        bs.parse_criterion(text)


# ---- the CLI on a synthetic store -----------------------------------------------------

ESTIMATORS = {"good": ("synflow", 0.3), "bad": ("synflow", 3.0), "os_loss": ("os_loss", 0.5)}


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("bootstrap") / "syn.duckdb")
    return make_store(path, "toy", ESTIMATORS)


def _run(runner, syn, *args, fmt="csv"):
    return runner.invoke(app(), [*args, "--space", "toy", "--store", syn.path, "--format", fmt])


def _csv(r):
    assert r.exit_code == 0, r.output
    return list(csv.DictReader(io.StringIO(r.output)))


def test_criteria_ci_columns_equal_a_direct_bootstrap(runner, syn):
    """Each <criterion>_lo/_hi of the csv is the percentile of compute_criteria over
    materialised resamples drawn with the documented generator."""
    r = _run(runner, syn, "criteria", "--protocol", "iso", "--ci", "90", "--resamples", "120", "--ci-seed", "4")
    rows = {row["estimator"]: row for row in _csv(r)}
    header = r.output.splitlines()[0].split(",")
    for name in bs.criterion_names(DEFAULT_KS):
        i = header.index(name)
        assert header[i + 1 : i + 3] == [f"{name}_lo", f"{name}_hi"]
    from estbench.store import Store

    with Store(syn.path, read_only=True) as st:
        sets = load_points(st, "toy", "cifar10-test", "iso")
    for p in sets:
        counts = bs.resample_counts(len(p), 120, 4)
        ref = _materialised(p.y, p.score, p.truth_rank, p.score_rank, p.higher_is_better, counts, DEFAULT_KS)
        row = rows[p.estimator]
        for name in ("kd", "spearman", "lc", "mean", "p_top@5%", "br@10%", "wr@50%", "p_bottom@20%"):
            lo, hi = np.quantile([x[name] for x in ref], [0.05, 0.95])
            assert float(row[f"{name}_lo"]) == pytest.approx(lo, abs=1e-9), (p.estimator, name)
            assert float(row[f"{name}_hi"]) == pytest.approx(hi, abs=1e-9), (p.estimator, name)


def test_criteria_ci_formats_parse(runner, syn):
    base = ("criteria", "--protocol", "iso", "--ci", "95", "--resamples", "50")
    table = _run(runner, syn, *base, fmt="table")
    assert table.exit_code == 0, table.output
    js = json.loads(_run(runner, syn, *base, fmt="json").output)
    cell = r"-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]"
    assert len(re.findall(cell, table.output)) == 6 * len(js)  # kd, spearman, 4 set criteria per row
    assert "95% percentile bootstrap intervals, 50 resamples, seed 0" in table.output
    assert {"kd", "kd_lo", "kd_hi", "wr@50%_hi"} <= set(js[0])
    assert all(r["kd_lo"] <= r["kd_hi"] for r in js)
    for fmt in ("markdown", "latex"):
        out = _run(runner, syn, *base, fmt=fmt)
        assert out.exit_code == 0 and len(re.findall(cell, out.output)) == 6 * len(js), out.output
    plain = _run(runner, syn, "criteria", "--protocol", "iso", fmt="json")
    assert not any(c.endswith("_lo") for c in json.loads(plain.output)[0])  # unchanged without --ci


def test_criteria_ci_seeds(runner, syn):
    def out(*seed):
        return _run(runner, syn, "criteria", "--protocol", "iso", "--ci", "95", "--resamples", "40", *seed).output

    assert out() == out("--ci-seed", "0")
    assert out() != out("--ci-seed", "1")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--ci", "0"], "--ci 0"),
        (["--ci", "100"], "--ci 100"),
        (["--ci", "-3"], "--ci -3"),
        (["--ci", "95", "--resamples", "2"], "--resamples 2"),
        (["--resamples", "200"], "only apply with --ci"),
        (["--ci-seed", "2"], "only apply with --ci"),
    ],
)
def test_criteria_ci_bad_options_before_the_store(runner, tmp_path, args, needle):
    missing = str(tmp_path / "nowhere" / "none.duckdb")
    r = runner.invoke(app(), ["criteria", "--space", "toy", "--store", missing, *args])
    assert needle in one_line_error(r)


def test_criteria_ci_too_few_points_names_the_group(runner, syn):
    r = _run(runner, syn, "criteria", "--ci", "95", fmt="table")  # deiso: 9 classes on toy
    line = one_line_error(r)
    assert "bad has 9 points" in line and "at least 10" in line


def test_compare_cli(runner, syn):
    rows = _csv(
        _run(runner, syn, "bias", "compare", "-e", "good", "-e", "bad", "--protocol", "iso", "--resamples", "200")
    )
    assert [r["criterion"] for r in rows] == list(bs.COMPARE_DEFAULT)
    from estbench.store import Store

    with Store(syn.path, read_only=True) as st:
        sets = {p.estimator: p for p in load_points(st, "toy", "cifar10-test", "iso")}
    ks = (0.05,)
    g, b = sets["good"], sets["bad"]
    vg = compute_criteria(g.y, g.score, g.truth_rank, g.score_rank, True, ks)
    vb = compute_criteria(b.y, b.score, b.truth_rank, b.score_rank, True, ks)
    for r in rows:
        assert r["a"] == "good" and r["b"] == "bad" and r["points"] == "27"
        name = r["criterion"]
        assert float(r["a_value"]) == pytest.approx(vg[name]) and float(r["b_value"]) == pytest.approx(vb[name])
        assert float(r["difference"]) == pytest.approx(vg[name] - vb[name])
        assert float(r["difference_lo"]) <= float(r["difference_hi"])
        assert 0 < float(r["p_bootstrap"]) <= 1 and 0 < float(r["p_permutation"]) <= 1
    table = _run(runner, syn, "bias", "compare", "-e", "good", "-e", "os_loss", "--protocol", "iso", fmt="table")
    assert table.exit_code == 0 and "A = good vs B = os_loss on 27 common points" in table.output
    js = json.loads(
        _run(runner, syn, "bias", "compare", "-e", "good", "-e", "good", "--protocol", "iso", "-c", "kd", "-c", "lc",
             "--method", "bootstrap", fmt="json").output
    )  # fmt: skip
    assert [r["criterion"] for r in js] == ["kd", "lc"] and "p_permutation" not in js[0]
    assert all(r["difference"] == 0 and r["p_bootstrap"] == 1 for r in js)
    perm = _csv(_run(runner, syn, "bias", "compare", "-e", "good", "-e", "bad", "--protocol", "iso", "--method",
                     "permutation", "-c", "lc", "-c", "kd"))  # fmt: skip
    assert "difference_lo" not in perm[0] and perm[0]["p_permutation"] == "" and perm[1]["p_permutation"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["-e", "good"], "exactly two"),
        (["-e", "good", "-e", "bad", "-e", "os_loss"], "exactly two"),
        (["-e", "good", "-e", "bad", "--method", "magic"], "--method"),
        (["-e", "good", "-e", "bad", "-c", "mean"], "--criterion mean"),
        (["-e", "good", "-e", "bad", "--ci", "100"], "--ci 100"),
    ],
)
def test_compare_bad_options_before_the_store(runner, tmp_path, args, needle):
    missing = str(tmp_path / "nowhere" / "none.duckdb")
    r = runner.invoke(app(), ["bias", "compare", "--space", "toy", "--store", missing, *args])
    assert needle in one_line_error(r)


def test_compare_errors_on_the_store(runner, syn):
    r = _run(runner, syn, "bias", "compare", "-e", "good", "-e", "bad", fmt="table")  # deiso: 9 classes
    assert "share 9 points" in one_line_error(r)
    r = _run(runner, syn, "bias", "compare", "-e", "good", "-e", "nosuch", fmt="table")
    assert "nosuch" in one_line_error(r)


def test_compare_several_configs_must_be_narrowed(runner, tmp_path):
    from estbench.config import config_hash
    from estbench.store import ScoreKey, ScoreRow, Store

    syn = make_store(str(tmp_path / "two.duckdb"), "toy", {"good": ("synflow", 0.3), "bad": ("synflow", 3.0)})
    with Store(syn.path) as st:
        settings = {"space": "toy", "synthetic": True, "batch": 2}
        chash = config_hash({"estimator": "good", **settings})
        st.put_config(chash, "good", settings)
        key = ScoreKey("toy", "good", chash, 0, 20)
        st.upsert_scores([ScoreRow.of(key, i, 0, float(v), 0.0, None) for i, v in enumerate(syn.truth["cifar10-test"])])
    r = _run(runner, syn, "bias", "compare", "-e", "good", "-e", "bad", "--protocol", "iso", fmt="table")
    line = one_line_error(r)
    assert "good: 2 groups" in line and "good [batch=2]" in line and "good [batch=null]" in line
    rows = _csv(_run(runner, syn, "bias", "compare", "-e", "good [batch=2]", "-e", "bad", "--protocol", "iso",
                     "-c", "kd", "--resamples", "50"))  # fmt: skip
    assert rows[0]["a"] == "good [batch=2]" and float(rows[0]["a_value"]) == pytest.approx(1.0)
