"""The bias sections of `estbench report --html` (complexity, op, pareto) on synthetic toy
stores: every drawn number equals what the `estbench bias complexity / op / pareto`
commands print for the same points (their JSON), the figures exist, and a store
without the data names the command that adds it."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from bias_support import make_store
from conftest import app

from estbench.analysis.complexity import complexity_bias
from estbench.analysis.points import complexity_groups, complexity_of
from estbench.report.html.base import Missing
from estbench.report.html.context import ReportContext
from estbench.report.html.sections import bias
from estbench.store import Store

METRIC = "cifar10-test"
ESTIMATORS = {"synflow": ("synflow", 0.5), "os_loss": ("os_loss", 0.7), "snip": ("snip", 1.0)}


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_store(str(tmp_path_factory.mktemp("rbias") / "syn.duckdb"), "toy", ESTIMATORS)


@pytest.fixture(scope="module")
def no_size(tmp_path_factory):
    """Scores and truth, but no params or flops scores."""
    syn = make_store(str(tmp_path_factory.mktemp("rbias") / "nosize.duckdb"), "toy", {"synflow": ("synflow", 0.5)})
    with Store(syn.path) as st:
        st.query("DELETE FROM scores WHERE estimator IN ('params', 'flops')")
    return syn


def _ctx(path, **kw) -> ReportContext:
    return ReportContext(Store(path, read_only=True), "toy", METRIC, **kw)


def _cli(runner, path, *args):
    r = runner.invoke(app(), ["bias", *args, "--space", "toy", "--truth", METRIC, "--store", path, "--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _close(a, b) -> bool:
    a, b = float(a if a is not None else math.nan), float(b if b is not None else math.nan)
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _label_of(ctx) -> dict:
    from estbench.analysis.points import group_names

    sets = ctx.final_points()
    return {(p.estimator, p.config_hash, p.epoch): n for n, p in zip(group_names(sets), sets)}


# ---- complexity -------------------------------------------------------------------------


def test_complexity_table_and_bars_are_the_analysis(syn, runner):
    ctx = _ctx(syn.path)
    sec = bias.complexity_section(ctx)
    [fig] = sec.figures
    assert fig.name == "complexity_bias"
    table = sec.tables[0]
    rows = {r[0]: r for r in table.rows}
    # the analysis itself on the same points, as `bias complexity --by params` calls it
    sets = ctx.final_points()
    reps = np.unique(np.concatenate([p.rep for p in sets]))
    values = complexity_of(ctx.st, "toy", "params", reps)
    names = _label_of(ctx)
    assert set(rows) == set(names.values())
    for ps in sets:
        c = values[np.searchsorted(reps, ps.rep)]
        d = complexity_bias(ps.y, ps.s, ps.truth_rank, ps.score_rank, complexity_groups(c, 5), 5, c)
        row = rows[names[(ps.estimator, ps.config_hash, ps.epoch)]]
        assert row[1] == len(ps)
        assert all(_close(a, b) for a, b in zip(row[2:7], d["kd"]))
        assert all(_close(a, b) for a, b in zip(row[7:12], d["mean_rd"]))
    # and what the command prints
    for r in _cli(runner, syn.path, "complexity", "--by", "params"):
        row = rows[names[(r["estimator"], r["config_hash"], r["epoch"])]]
        assert _close(row[2 + r["group"]], r["kd"]) and _close(row[7 + r["group"]], r["mean_rd"])
    # the bar heights drawn are the table's values (NaN drawn as 0), estimator by estimator
    ax_kd, ax_rd = fig.fig.axes[:2]
    for ax, lo in ((ax_kd, 2), (ax_rd, 7)):
        heights = np.array([[p.get_height() for p in c.patches] for c in ax.containers])  # groups x estimators
        want = np.nan_to_num(np.array([r[lo : lo + 5] for r in table.rows], dtype=float)).T
        np.testing.assert_allclose(heights, want)


def test_complexity_falls_back_to_flops(tmp_path):
    syn = make_store(str(tmp_path / "flops.duckdb"), "toy", {"synflow": ("synflow", 0.5)})
    with Store(syn.path) as st:
        st.query("DELETE FROM scores WHERE estimator = 'params'")
    sec = bias.complexity_section(_ctx(syn.path))
    assert "flops" in sec.tables[0].title


def test_no_params_or_flops_names_the_command(no_size):
    ctx = _ctx(no_size.path)
    for build in (bias.complexity_section, bias.pareto_section):
        with pytest.raises(Missing, match=r"`estbench score --space toy -e params`"):
            build(ctx)


def test_no_scores_in_the_selection_names_the_command(syn):
    ctx = _ctx(syn.path, epochs=[99])
    for build in (bias.complexity_section, bias.op_section, bias.pareto_section):
        with pytest.raises(Missing, match=r"`estbench score --space toy"):
            build(ctx)


# ---- op ---------------------------------------------------------------------------------


def test_op_heatmap_is_the_op_bias_diff(syn, runner):
    ctx = _ctx(syn.path)
    sec = bias.op_section(ctx)
    assert [f.name for f in sec.figures] == ["op_diff", "op_hist"]
    names, sets, sums, _, pairs = bias.op_summaries(ctx)
    kinds = pairs.kinds
    drawn = np.ma.filled(sec.figures[0].fig.axes[0].images[0].get_array(), np.nan)
    assert drawn.shape == (len(sets), len(kinds))
    # what `estbench bias op` prints, estimator by estimator and kind by kind
    label = _label_of(ctx)
    row_of = {n: i for i, n in enumerate(names)}
    printed = _cli(runner, syn.path, "op")
    assert printed
    seen = np.zeros(drawn.shape, dtype=bool)
    for r in printed:
        i, j = row_of[label[(r["estimator"], r["config_hash"], r["epoch"])]], kinds.index(r["kind"])
        assert _close(drawn[i, j], r["diff"])
        seen[i, j] = True
    assert np.all(np.isnan(drawn[~seen]))
    # the extremes table comes from the same matrix
    for row, i in zip(sec.tables[0].rows, range(len(names))):
        assert row[0] == names[i] and row[1] == int(sums[i]["n"].sum())
        assert _close(row[3], np.nanmax(drawn[i])) and _close(row[5], np.nanmin(drawn[i]))


def test_op_histograms_are_the_binned_changes(syn):
    ctx = _ctx(syn.path)
    sec = bias.op_section(ctx)
    names, sets, sums, used, pairs = bias.op_summaries(ctx)
    kd = {(g.estimator, g.config_hash, g.epoch): g.values["kd"] for g in ctx.final_groups()}
    best = max(range(len(sets)), key=lambda i: kd[(sets[i].estimator, sets[i].config_hash, sets[i].epoch)])
    assert sec.tables[1].title.startswith(names[best])  # the best-KD (non-structural) estimator
    from estbench.analysis import opbias

    ps, (src, dst, kind) = sets[best], used[best]
    share = {pairs.kinds[k]: (n, tu, su) for k, n, tu, su in
             zip(sums[best]["kind"], sums[best]["n"], sums[best]["truth_up"], sums[best]["score_up"])}  # fmt: skip
    for k, n, tu, su, diff in sec.tables[1].rows:
        assert (n, tu, su) == share[k] and _close(diff, su - tu)
        a, _, b = k.partition("->")
        assert f"{b}->{a}" not in {r[0] for r in sec.tables[1].rows}  # one direction of each pair
    # each panel's bars: opbias.histogram of the std-scaled changes
    axes = [ax for ax in sec.figures[1].fig.axes if ax.get_visible() and ax.patches]
    assert len(axes) == len(sec.tables[1].rows)
    bins = bias.hist_bins([r[1] for r in sec.tables[1].rows])
    h = opbias.histogram(src, dst, kind, ps.y / np.std(ps.y), ps.s / np.std(ps.s), len(pairs.kinds), bins)
    for ax, row in zip(axes, sec.tables[1].rows):
        at = h["kind"] == pairs.kinds.index(row[0])
        truth_bars, score_bars = (p.get_data() for p in ax.patches[:2])
        np.testing.assert_allclose(truth_bars.values, h["n_truth"][at])
        np.testing.assert_allclose(score_bars.values, h["n_score"][at])
        np.testing.assert_allclose(truth_bars.edges[:-1], h["bin_lo"][at])
        assert int(h["n_truth"][at].sum()) == row[1]


def test_hist_kinds_keeps_one_direction_and_the_cap():
    kinds = ["a->b", "a->c", "b->a", "c->a", "x->y"]
    diff = np.array([0.1, -0.5, 0.2, 0.3, np.nan])
    assert bias.hist_kinds(kinds, diff) == [0, 1]  # x->y has no pair (NaN)
    assert bias.hist_kinds(kinds, diff, cap=1) == [1]  # the largest |diff|


# ---- pareto -----------------------------------------------------------------------------


def test_pareto_gap_table_is_what_bias_pareto_prints(syn, runner):
    ctx = _ctx(syn.path)
    sec = bias.pareto_section(ctx)
    assert [f.name for f in sec.figures] == ["pareto_fronts", "pareto_gap"]
    rows = {r[0]: r for r in sec.tables[0].rows}
    assert set(rows) == set(_label_of(ctx).values())
    cols = sec.tables[0].columns
    seen = set()
    for r in _cli(runner, syn.path, "pareto"):  # the CLI names estimators by the same labels
        key = f"g{r['group']} L={r['levels']}"
        if key in cols:
            assert _close(rows[r["estimator"]][cols.index(key)], r["gap"]), (r["estimator"], key)
            seen.add((r["estimator"], key))
    assert seen
    for name, row in rows.items():  # a group the analysis has no row for (empty) is NaN
        assert all(math.isnan(v) for k, v in zip(cols[1:], row[1:]) if (name, k) not in seen)


def test_pareto_figure_draws_the_fronts_of_the_analysis(syn, runner):
    from estbench.analysis.pareto import front_levels

    ctx = _ctx(syn.path)
    sec = bias.pareto_section(ctx)
    by, names, kept, lvls, _ = bias.pareto_rows(ctx)
    assert by == "params"
    axes = {ax.get_title(): ax for ax in sec.figures[0].fig.axes if ax.get_visible()}
    # structural estimators (params, flops) are left out of the figure, the others drawn
    assert any("structural ones" in n for n in sec.notes)
    for name, (ps, c), lv in zip(names, kept, lvls):
        if bias.structural(ps.estimator):
            assert bias.label(name, 44) not in axes
            continue
        ax = axes[bias.label(name, 44)]
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        est = next(ln for k, ln in lines.items() if k.startswith("estimate front"))
        on = np.flatnonzero(lv == 1)
        assert sorted(est.get_xdata()) == sorted(c[on])
        true_on = np.flatnonzero(front_levels(ps.y, c, 1) == 1)
        np.testing.assert_allclose(sorted(lines["true front"].get_ydata()), sorted(ps.truth[true_on]))
    # the printed fronts list the same level-1 points
    printed = _cli(runner, syn.path, "pareto", "--show", "fronts", "--levels", "1")
    for name, (ps, _), lv in zip(names, kept, lvls):
        ids = sorted(r["arch_id"] for r in printed if r["estimator"] == name and r["front"] == "estimate")
        assert ids == sorted(ps.rep[lv == 1].tolist())


# ---- the page ---------------------------------------------------------------------------


def test_report_shows_the_three_sections(syn, runner, tmp_path):
    out, figs = tmp_path / "r.html", tmp_path / "figs"
    r = runner.invoke(
        app(),
        ["report", "--space", "toy", "--truth", METRIC, "--store", syn.path, "--html", str(out), "--figures",
         str(figs), "--section", "complexity", "--section", "op", "--section", "pareto", "--format", "json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = {row["section"]: row for row in json.loads(r.output)}
    assert {k: rows[k]["status"] for k in ("complexity", "op", "pareto")} == dict.fromkeys(
        ("complexity", "op", "pareto"), "shown"
    )
    shown = re.findall(r'data-section="([^"]+)"', out.read_text())
    assert {"complexity", "op", "pareto"} <= set(shown)
    for stem in ("complexity_bias", "op_diff", "op_hist", "pareto_fronts", "pareto_gap"):
        assert (figs / f"{stem}.png").stat().st_size > 1000


def test_report_lists_the_missing_bias_sections(no_size, runner, tmp_path):
    out = tmp_path / "r.html"
    r = runner.invoke(
        app(),
        ["report", "--space", "toy", "--truth", METRIC, "--store", no_size.path, "--html", str(out), "--section",
         "complexity", "--section", "pareto", "--section", "op"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    missing = dict(re.findall(r'data-missing="([^"]+)"><b>[^<]*</b>: (.*?)</li>', out.read_text()))
    assert set(missing) == {"complexity", "pareto"}
    assert all("estbench score --space toy -e params" in v for v in missing.values())
