"""The architecture sections of `estbench report --html` (top_archs: the top-3 cells of
each estimator; score_hist: score histograms between the 0.1 and 0.9 quantiles) on a
synthetic toy store: the drawn architectures are the ones `estbench bias arch --which
top --k 3` prints, the histogram bars count the clipped scores of the final points,
and a store or space without the data says so."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from bias_support import make_store
from conftest import app

from estbench.analysis.points import group_names
from estbench.config import config_hash
from estbench.report.html.base import Missing
from estbench.report.html.cells import cell_extent, draw_cell, op_colors, short_op
from estbench.report.html.context import ReportContext
from estbench.report.html.plot import new_figure
from estbench.report.html.sections import archs
from estbench.spaces import get_space
from estbench.spaces.base import CellGraph
from estbench.store import ScoreKey, ScoreRow, Store

METRIC = "cifar10-test"
ESTIMATORS = {"synflow": ("synflow", 0.5), "os_loss": ("os_loss", 0.7), "snip": ("snip", 1.0)}
WIDE = "wide"  # an estimator whose positive scores span ten orders of magnitude


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    syn = make_store(str(tmp_path_factory.mktemp("rarchs") / "syn.duckdb"), "toy", ESTIMATORS)
    n = len(syn.arch_strs)
    values = 10.0 ** np.linspace(-5, 5, n)[np.random.default_rng(1).permutation(n)]
    with Store(syn.path) as st:
        st.put_estimator(WIDE, "zeroshot", True, "synthetic, positive over ten orders")
        settings = {"space": "toy", "synthetic": True}
        chash = config_hash({"estimator": WIDE, **settings})
        st.put_config(chash, WIDE, settings)
        key = ScoreKey("toy", WIDE, chash, 0, 20)
        st.upsert_scores([ScoreRow.of(key, i, 0, float(values[i]), 0.0, None) for i in range(n)])
    return syn


def _ctx(path, **kw) -> ReportContext:
    return ReportContext(Store(path, read_only=True), "toy", METRIC, **kw)


def _labels(ctx) -> dict:
    sets = ctx.final_points()
    return {(p.estimator, p.config_hash, p.epoch): n for n, p in zip(group_names(sets), sets)}


# ---- the cell drawer ---------------------------------------------------------------------


def test_draw_cell_draws_every_non_zero_edge_with_its_op_colour():
    g = CellGraph("cell", ("0", "1", "2"), ((0, 1, "nor_conv_3x3"), (0, 2, "none"), (1, 2, "skip_connect")))
    colors = op_colors(["none", "skip_connect", "nor_conv_3x3"])
    assert set(colors) == {"skip_connect", "nor_conv_3x3"}  # the zero op has no colour: it is not drawn
    fig, ax = new_figure(3, 1.5)
    draw_cell(ax, g, colors)
    arrows = [p for p in ax.patches if type(p).__name__ == "FancyArrowPatch"]
    assert len(arrows) == 2
    drawn = sorted(tuple(np.round(a.get_facecolor()[:3], 3)) for a in arrows)
    from matplotlib.colors import to_rgb

    assert drawn == sorted(tuple(np.round(to_rgb(colors[op]), 3)) for op in ("nor_conv_3x3", "skip_connect"))
    labels = {t.get_text() for t in ax.texts}
    assert {"0", "1", "2", "3x3", "skip"} <= labels and "none" not in labels
    left, right, lo, hi = cell_extent(g)
    assert left < 0 < 2 < right and lo < 0 < hi  # the 0 -> 2 edge is drawn only when not `none`
    assert cell_extent(g)[3] < cell_extent(CellGraph("c", g.nodes, ((0, 2, "nor_conv_3x3"),)))[3]


def test_short_op_names():
    assert [short_op(o) for o in ("skip_connect", "nor_conv_1x1", "avg_pool_3x3", "sep_conv_5x5", "dil_conv_3x3")] == [
        "skip", "1x1", "avg", "sep5", "dil3",
    ]  # fmt: skip


def test_draw_cell_ops_on_nodes_are_colours_and_long_labels_boxes():
    g = CellGraph("cell", ("input", "conv3x3-bn-relu", "output"), ((0, 1, ""), (1, 2, ""), (0, 2, "")))
    fig, ax = new_figure(3, 1.5)
    colors = {"conv3x3-bn-relu": "#0072B2"}
    draw_cell(ax, g, colors)
    kinds = [type(p).__name__ for p in ax.patches]
    assert kinds.count("Circle") == 3 and kinds.count("FancyArrowPatch") == 3  # NB101 labels are short (in, out)
    op_node = [p for p in ax.patches if type(p).__name__ == "Circle"][1]
    assert op_node.get_facecolor()[2] > op_node.get_facecolor()[0]  # filled with the op's (blue) colour
    g = CellGraph("cell", ("input", "a_long_label", "output"), ((0, 1, ""), (1, 2, "")))
    fig, ax = new_figure(3, 1.5)
    draw_cell(ax, g)
    assert [type(p).__name__ for p in ax.patches].count("FancyBboxPatch") == 3


# ---- top_archs --------------------------------------------------------------------------


def test_top_archs_are_the_bias_arch_top3(syn, runner):
    ctx = _ctx(syn.path)
    sec = archs.top_archs_section(ctx)
    [fig] = sec.figures
    assert fig.name == "top_archs"
    [table] = sec.tables
    rows = [dict(zip(table.columns, r)) for r in table.rows]
    r = runner.invoke(app(), ["bias", "arch", "--space", "toy", "--truth", METRIC, "--store", syn.path,
                              "--which", "top", "--k", "3", "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    labels = _labels(ctx)
    printed = {}
    for p in json.loads(r.output):
        printed.setdefault(labels[(p["estimator"], p["config_hash"], p["epoch"])], []).append(p)
    drawn = {}
    for row in rows:
        drawn.setdefault(row["estimator"], []).append(row)
    assert set(drawn) == {"truth"} | set(printed)
    for name, want in printed.items():
        got = drawn[name]
        assert [g["arch_id"] for g in got] == [w["arch_id"] for w in want]
        assert [g["rank"] for g in got] == [w["est_rank"] for w in want] == [1, 2, 3]
        for g, w in zip(got, want):
            assert g["arch_str"] == w["arch_str"] and g["true_rank"] == w["true_rank"]
            assert math.isclose(g["score"], w["score"]) and math.isclose(g["truth"], w["truth"])
    # the truth row: the three best points by truth of the largest point set
    sets = ctx.final_points()
    ref = max(sets, key=len)
    best = np.argsort(ref.truth_rank)[:3]
    assert [t["arch_id"] for t in drawn["truth"]] == ref.rep[best].tolist()
    assert [t["true_rank"] for t in drawn["truth"]] == [1, 2, 3]
    np.testing.assert_allclose([t["truth"] for t in drawn["truth"]], ref.truth[best])
    # the figure holds one cell per drawn row: its nodes are the circles of the one axes
    space = get_space("toy")
    circles = [p for ax in fig.fig.axes for p in ax.patches if type(p).__name__ == "Circle"]
    assert len(circles) == len(rows) * len(space.cell_graphs(rows[0]["arch_str"])[0].nodes)
    texts = {t.get_text() for ax in fig.fig.axes for t in ax.texts}
    assert any(t.startswith(f"truth {METRIC}") for t in texts)
    assert any(t.startswith("#1  true #") for t in texts)


def test_top_archs_caps_the_estimators_with_a_note(syn, monkeypatch):
    monkeypatch.setattr(archs, "MAX_ESTIMATORS", 2)
    sec = archs.top_archs_section(_ctx(syn.path))
    names = list(dict.fromkeys(r[0] for r in sec.tables[0].rows))
    assert len(names) == 3 and names[0] == "truth"
    assert any(n.startswith("first 2 of ") and "not drawn:" in n for n in sec.notes)


def test_top_archs_missing_without_a_drawing(syn):
    class NoDrawing(type(get_space("toy"))):
        def cell_graphs(self, arch_str):
            return []

    ctx = _ctx(syn.path)
    ctx._cache["space"] = NoDrawing()  # what space_obj() returns, without touching the registry
    with pytest.raises(Missing, match="no cell drawing"):
        archs.top_archs_section(ctx)
    ctx = _ctx(syn.path)
    ctx._cache["space"] = None  # a space this install does not have
    with pytest.raises(Missing, match="not registered"):
        archs.top_archs_section(ctx)


@pytest.mark.parametrize("build", [archs.top_archs_section, archs.score_hist_section])
def test_sections_missing_without_scores(syn, build):
    with pytest.raises(Missing, match="estbench score --space toy"):
        build(_ctx(syn.path, epochs=[99]))


# ---- score_hist -------------------------------------------------------------------------


def test_clipped_scores_keep_the_quantile_range():
    s = np.array([np.nan, *range(1, 101)], dtype=float)
    vals, lo, hi = archs.clipped_scores(s)
    assert (lo, hi) == tuple(np.quantile(np.arange(1, 101), (0.1, 0.9)))
    assert vals.min() >= lo and vals.max() <= hi and len(vals) == 80


def test_histograms_count_the_clipped_final_scores(syn):
    ctx = _ctx(syn.path)
    sec = archs.score_hist_section(ctx)
    [fig] = sec.figures
    assert fig.name == "score_hist"
    [table] = sec.tables
    rows = {r[0]: dict(zip(table.columns, r)) for r in table.rows}
    sets = ctx.final_points()
    names = group_names(sets)
    assert list(rows) == names
    axes = [ax for ax in fig.fig.axes if ax.get_visible()]
    for ax, name, ps in zip(axes, names, sets):
        lo, hi = np.quantile(ps.score, (0.1, 0.9))
        inside = (ps.score >= lo) & (ps.score <= hi)
        row = rows[name]
        assert math.isclose(row["q0.1"], lo) and math.isclose(row["q0.9"], hi)
        assert row["shown"] == int(inside.sum()) and row["left out"] == len(ps) - int(inside.sum())
        assert sum(p.get_height() for p in ax.patches) == int(inside.sum())
        assert f"{row['left out']} left out" in ax.get_title()
        log = ps.score[inside].min() > 0 and np.log10(ps.score[inside].max() / ps.score[inside].min()) > 2
        assert (ax.get_xscale() == "log") == bool(log) == (row["x axis"] == "log")
    assert rows[WIDE]["x axis"] == "log" and rows["synflow"]["x axis"] == "linear"
    assert any("leaves out the points below its 0.1" in n for n in sec.notes)


# ---- the page ---------------------------------------------------------------------------


def test_report_shows_both_sections(syn, runner, tmp_path):
    out, figs = tmp_path / "r.html", tmp_path / "figs"
    r = runner.invoke(
        app(),
        ["report", "--space", "toy", "--truth", METRIC, "--store", syn.path, "--html", str(out), "--figures",
         str(figs), "--section", "top_archs", "--section", "score_hist", "--format", "json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = {row["section"]: row for row in json.loads(r.output)}
    assert rows["top_archs"]["status"] == rows["score_hist"]["status"] == "shown"
    shown = re.findall(r'data-section="([^"]+)"', out.read_text())
    assert {"top_archs", "score_hist"} <= set(shown)
    for stem in ("top_archs", "score_hist"):
        assert (figs / f"{stem}.png").stat().st_size > 1000
