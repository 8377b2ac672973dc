"""`estbench bias agreement` (paper Fig. 4, A21, A22; Table A10) against a direct
implementation on a synthetic toy store: each column rebuilt from the arrays the store
was written from (class truth = mean over members, class score = the smallest scored
member's, or the mean with --post-deiso; a lower-is-better estimator negated), and
every cell a Kendall tau-b counted pair by pair (concordant, discordant, ties) over the
points both columns have; Spearman through average ranks and a Pearson correlation."""

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
from scipy import stats
from tests_support import one_line_error

from estbench.runs.loop import record_config
from estbench.store import ScoreKey, ScoreRow, Store
from estbench.truth.model import MetricInfo, TruthTable

ESTIMATORS = {"synflow": ("synflow", 0.5), "os_loss": ("os_loss", 0.7), "snip": ("snip", 0.5)}
METRICS = ("cifar10-test", "cifar100-test", "cifar10-valid-valid")
TEST_METRICS = ["cifar10-test", "cifar100-test"]  # the default selection: names ending in -test
DROPPED_CLASSES = 3  # snip: representatives only, and none in three classes (fewer common points)


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("agreement") / "syn.duckdb")
    syn = make_store(path, "toy", ESTIMATORS, metrics=METRICS, representatives_only=("snip",))
    rng = np.random.default_rng(7)
    reps = sorted({min(i for i, k in enumerate(syn.iso_keys) if k == key) for key in set(syn.iso_keys)})
    dropped = reps[-DROPPED_CLASSES:]
    noise = np.full(len(syn.arch_strs), np.nan)
    with Store(path) as st:
        ids = ",".join(map(str, dropped))
        st.query(f"DELETE FROM scores WHERE estimator = 'snip' AND arch_id IN ({ids})")
        # a second config of synflow, as a noise input would give (different values)
        chash = record_config(st, "synflow", {"space": "toy", "synthetic": True, "input": "noise-uniform"})
        key = ScoreKey("toy", "synflow", chash, 0, 20)
        noise = syn.scores["synflow"] + rng.normal(0, 1.0, size=len(noise))
        st.upsert_scores([ScoreRow.of(key, i, 0, float(noise[i]), 0.0, None) for i in range(len(noise))])
        # a lower-is-better truth, and two metrics on different halves of the classes
        table = TruthTable(list(range(len(syn.arch_strs))), syn.arch_strs)
        error = 100 - syn.truth["cifar10-test"] + rng.normal(0, 2.0, size=len(noise))
        table.add(MetricInfo("cifar10-error", 200, True, "synthetic", higher_is_better=False), error.tolist())
        syn.truth["cifar10-error"] = error
        order = list(dict.fromkeys(syn.iso_keys))
        for name, keep in (("half-a", set(order[:6])), ("half-b", set(order[-6:]))):
            v = np.where(
                [k in keep for k in syn.iso_keys], syn.truth["cifar100-test"] + rng.normal(0, 1, len(noise)), np.nan
            )
            table.add(MetricInfo(name, 200, True, "synthetic"), [None if np.isnan(x) else float(x) for x in v])
            syn.truth[name] = v
        st.put_truth("toy", table)
    syn.scores["snip"][dropped] = np.nan
    syn.scores["synflow [input=noise-uniform]"] = noise
    return syn


def _invoke(runner, syn, *args, fmt="json"):
    return runner.invoke(app(), ["bias", "agreement", "--space", "toy", "--store", syn.path, "--format", fmt, *args])


def _json(runner, syn, *args):
    r = _invoke(runner, syn, *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


# ---- the direct implementation -------------------------------------------------------


def _hib(name: str) -> bool:
    from estbench.estimators import ESTIMATORS as REG

    return REG.meta(name.split(" ")[0])["higher_is_better"]


def _columns(syn, names, metrics, protocol="deiso", post_deiso=False):
    """{column: {class key: oriented value}} from the arrays."""
    n = len(syn.arch_strs)
    keys = [str(i) for i in range(n)] if protocol == "iso" else syn.iso_keys
    classes = defaultdict(list)
    for i, k in enumerate(keys):
        classes[k].append(i)
    out = {}
    for m in metrics:
        sign = -1.0 if m == "cifar10-error" else 1.0
        out[m] = {}
        for k, mem in classes.items():
            have = [i for i in mem if not np.isnan(syn.truth[m][i])]
            if have:
                out[m][k] = sign * float(np.mean(syn.truth[m][have]))
    with_truth = set().union(*(out[m] for m in metrics))  # a point needs a truth value of some metric
    for name in names:
        score = syn.scores[name] if name in syn.scores else getattr(syn, name)
        col = {}
        for k, mem in classes.items():
            scored = [i for i in mem if not np.isnan(score[i])]
            if k not in with_truth:
                continue
            if scored:
                s = float(np.mean(score[scored])) if post_deiso else float(score[min(scored)])
                col[k] = s if _hib(name) else -s
        out[name] = col
    return out


def _tau_b(x, y):
    """Kendall's tau-b by counting every pair."""
    conc = disc = tie_x = tie_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tie_x += 1
            elif dy == 0:
                tie_y += 1
            elif dx == dy:
                conc += 1
            else:
                disc += 1
    den = math.sqrt((conc + disc + tie_x) * (conc + disc + tie_y))
    return (conc - disc) / den if den else float("nan")


def _avg_ranks(v):
    v = np.asarray(v)
    return np.array([np.sum(v < x) + (np.sum(v == x) + 1) / 2 for x in v])


def _spearman(x, y):
    return float(np.corrcoef(_avg_ranks(x), _avg_ranks(y))[0, 1])


def _direct(cols, a, b, method="kendall"):
    common = sorted(set(cols[a]) & set(cols[b]))
    x, y = [cols[a][k] for k in common], [cols[b][k] for k in common]
    if len(common) < 2:
        return float("nan"), len(common)
    return (_tau_b(x, y) if method == "kendall" else _spearman(x, y)), len(common)


def _matrix(rows):
    """{(a, b): (value, n)} from the json matrix."""
    names = [r["name"] for r in rows]
    return {(r["name"], b): (r[b], r[f"n:{b}"]) for r in rows for b in names}


ALL = ["os_loss", "params", "flops", "snip", "synflow [input=null]", "synflow [input=noise-uniform]"]


def _stored_name(name):
    return "synflow" if name == "synflow [input=null]" else name


def _check(got, syn, metrics, protocol="deiso", post_deiso=False, method="kendall", diagonal=True):
    names = list(metrics) + ALL
    assert sorted({a for a, _ in got}) == sorted(names)
    raw = _columns(syn, [_stored_name(x) for x in ALL], metrics, protocol, post_deiso)
    cols = {(x if x in metrics else next(y for y in ALL if _stored_name(y) == x)): v for x, v in raw.items()}
    for a in names:
        for b in names:
            if a == b and not diagonal:
                continue
            want, n = _direct(cols, a, b, method)
            val, n_got = got[(a, b)]
            assert n_got == n, (a, b)
            if math.isnan(want):
                assert val is None or math.isnan(val), (a, b)
            else:
                assert val == pytest.approx(want, abs=1e-9), (a, b)


# ---- tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["deiso", "iso"])
@pytest.mark.parametrize("post_deiso", [False, True])
def test_matrix_matches_direct(runner, syn, protocol, post_deiso):
    args = ["--protocol", protocol] + (["--post-deiso"] if post_deiso else [])
    _check(_matrix(_json(runner, syn, *args)), syn, TEST_METRICS, protocol, post_deiso)


def test_spearman_and_chosen_metrics(runner, syn):
    rows = _json(runner, syn, "--spearman", "-t", "cifar10-valid-valid", "-t", "cifar10-test")
    assert [r["name"] for r in rows][:2] == ["cifar10-valid-valid", "cifar10-test"]
    _check(_matrix(rows), syn, ["cifar10-valid-valid", "cifar10-test"], method="spearman")


@pytest.mark.parametrize("protocol", ["deiso", "iso"])
def test_lower_is_better_truth_and_metrics_on_different_points(runner, syn, protocol):
    """cifar10-error enters negated; half-a and half-b cover different classes, so without
    cifar10-error the estimator columns are the union of two loads (a point needs truth
    of one selected metric)."""
    from estbench.analysis.agreement import agreement

    metrics = ["half-a", "cifar10-error", "half-b"]
    args = [a for m in metrics for a in ("-t", m)]
    got = _matrix(_json(runner, syn, "--protocol", protocol, *args))
    _check(got, syn, metrics, protocol)
    assert got[("cifar10-error", "params")][0] > 0  # the error column is negated like a loss
    assert got[("half-a", "half-b")][1] < got[("half-a", "half-a")][1]  # only the shared classes
    _check(_matrix(_json(runner, syn, "--protocol", protocol, "-t", "half-b", "-t", "half-a")), syn,
           ["half-b", "half-a"], protocol)  # fmt: skip
    with Store(syn.path, read_only=True) as st:
        assert agreement(st, "toy", ["half-a", "half-b"], protocol).loads == 2
        assert agreement(st, "toy", metrics, protocol).loads == 1  # cifar10-error covers every class
        assert agreement(st, "toy", TEST_METRICS, protocol).loads == 1


def test_long_rows_are_the_pairs(runner, syn):
    rows = _json(runner, syn, "--long", "--protocol", "iso")
    names = TEST_METRICS + ALL
    assert len(rows) == len(names) * (len(names) - 1) // 2
    got = {(r["a"], r["b"]): (r["kd"], r["n"]) for r in rows}
    got.update({(b, a): v for (a, b), v in list(got.items())})
    _check(got, syn, TEST_METRICS, "iso", diagonal=False)
    # snip is scored on fewer points: its pairs have fewer points than the others'
    assert got[("cifar10-test", "snip")][1] == 9 - DROPPED_CLASSES < got[("cifar10-test", "params")][1] == 27
    with_spearman = _json(runner, syn, "--long", "--spearman")
    assert set(with_spearman[0]) == {"a", "b", "spearman", "n"}


def test_scipy_pairwise_and_the_criteria_kd(runner, syn):
    """The same cells through scipy's kendalltau, and each estimator-vs-truth cell is the
    criteria's KD of that estimator (same points, same orientation)."""
    from estbench.analysis.evaluate import evaluate

    got = _matrix(_json(runner, syn))
    raw = _columns(syn, ["snip", "os_loss", "params"], TEST_METRICS)
    for a, b in [("snip", "os_loss"), ("cifar10-test", "snip"), ("params", "cifar100-test")]:
        common = sorted(set(raw[a]) & set(raw[b]))
        want = stats.kendalltau([raw[a][k] for k in common], [raw[b][k] for k in common])[0]
        assert got[(a, b)][0] == pytest.approx(want, abs=1e-12)
    with Store(syn.path, read_only=True) as st:
        for m in TEST_METRICS:
            for g in evaluate(st, "toy", m, "deiso", ["os_loss", "snip", "params"]):
                assert got[(g.estimator, m)][0] == pytest.approx(g.values["kd"], abs=1e-12)
                assert got[(g.estimator, m)][1] == g.values["n"]


def test_lower_is_better_estimator_is_oriented(runner, syn):
    """os_loss is stored so that lower is better; its column is negated, so it agrees
    positively with the truth and with synflow."""
    got = _matrix(_json(runner, syn))
    assert got[("os_loss", "cifar10-test")][0] > 0.3
    assert got[("os_loss", "synflow [input=null]")][0] > 0.3


def test_configs_of_one_measure_are_separate_columns(runner, syn):
    names = [r["name"] for r in _json(runner, syn, "-e", "synflow")]
    assert names[:2] == TEST_METRICS
    assert sorted(names[2:]) == ["synflow [input=noise-uniform]", "synflow [input=null]"]


def test_formats_parse(runner, syn):
    r = _invoke(runner, syn, fmt="csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    names = [row["name"] for row in rows]
    assert (
        names[:2] == TEST_METRICS
        and sorted(names[2:]) == sorted(ALL)
        and set(rows[0]) == {"name", *names, *[f"n:{x}" for x in names]}
    )
    assert float(rows[0]["cifar10-test"]) == 1.0
    table = _invoke(runner, syn, fmt="table")
    assert table.exit_code == 0 and "Kendall" in table.output and "synflow [input=noise-uniform]" in table.output
    # the matrix for people: two decimals, no n columns
    assert "n:params" not in table.output and " 1.00 " in table.output
    md = _invoke(runner, syn, fmt="markdown")
    assert md.exit_code == 0 and md.output.startswith("| name | cifar10-test |")
    tex = _invoke(runner, syn, "--long", fmt="latex")
    assert tex.exit_code == 0 and r"\begin{tabular}" in tex.output


@pytest.mark.parametrize(
    "args, needle",
    [
        (["-t", "cifar10-tset"], "cifar10-test"),  # did you mean
        (["-e", "grasp"], "grasp"),  # registered, not scored
        (["-e", "nosuch"], "nosuch"),
        (["--epoch", "7"], "nothing to show"),
        (["--protocol", "bogus"], "protocol"),
    ],
)
def test_bad_input_is_one_line(runner, syn, args, needle):
    assert needle in one_line_error(_invoke(runner, syn, *args, fmt="table"))


def test_no_truth_is_one_line(runner, tmp_path):
    store = str(tmp_path / "empty.duckdb")
    with Store(store):
        pass
    r = runner.invoke(app(), ["bias", "agreement", "--space", "toy", "--store", store])
    assert "toy" in one_line_error(r)
