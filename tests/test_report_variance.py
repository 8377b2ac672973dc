"""Report variance sections (estbench/report/html/sections/variance.py): batches and
intra-level KD, stability between checkpoints, temporal ensembles, forgetting and
gradient similarity on synthetic stores; the drawn numbers are the analyses'
(analysis.batches / stability / forgetting / gradsim), and each section names the command
that fills it when the store lacks its data."""

from __future__ import annotations

import re

import numpy as np
import pytest
from bias_support import make_store
from conftest import app
from variance_support import METRIC, make_variance_store

from estbench.analysis.batches import batch_criteria, levels, load_batch_points
from estbench.analysis.forgetting import load_forgetting, summarize
from estbench.analysis.gradsim import trend
from estbench.analysis.points import load_points
from estbench.analysis.stability import class_ids, ensemble_families, epoch_stability
from estbench.report.html.base import Missing
from estbench.report.html.context import ReportContext
from estbench.report.html.sections.variance import (
    batches_section,
    ensembles_section,
    forgetting_section,
    gradsim_section,
    stability_section,
)
from estbench.store import Store
from estbench.store.gradsim import GradsimRow

LAYERS = ["S2C1", "classifier", "stem", "S1C0", "S2R"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The variance store plus forgetting probes of run 'p' and gradsim rows of run 'g'."""
    path = str(tmp_path_factory.mktemp("rvar") / "v.duckdb")
    make_variance_store(path)
    rng = np.random.default_rng(5)
    with Store(path) as st:
        rid = st.start_run("train", "toy", "p", {})
        st.finish_run(rid, "done")
        st.start_run("train", "toy", "unprobed", {})
        for epoch in (1, 2, 3):
            a1 = rng.integers(0, 17, 12) / 16
            a2 = np.clip(a1 + rng.integers(-3, 4, 12) / 16, 0, 1)
            st.put_forgetting("toy", "p", epoch, [(i, i, float(x), float(y)) for i, (x, y) in enumerate(zip(a1, a2))])
        rid = st.start_run("score", "toy", "g", {})
        st.put_config("hg", "gradsim", {"pairs": 6}, "g P=6")
        rows = [
            GradsimRow("toy", "g", e, "hg", pair, pair, pair + 1, layer,
                       None if rng.random() < 0.2 else float(np.clip(rng.normal(e / 20, 0.3), -1, 1)))
            for e in (5, 15) for pair in range(6) for layer in LAYERS
        ]  # fmt: skip
        st.put_gradsim(rid, rows)
        st.finish_run(rid, "done")
    return path


@pytest.fixture(scope="module")
def ctx(store):
    return ReportContext(Store(store, read_only=True), "toy", METRIC)


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("rvar") / "s.duckdb")
    make_store(path, "toy", {"synflow": ("synflow", 0.5)}, metrics=(METRIC,))
    return ReportContext(Store(path, read_only=True), "toy", METRIC)


def test_batches_kd_per_b_and_levels_are_the_analysis(ctx):
    sec = batches_section(ctx)
    assert [f.name for f in sec.figures] == ["batches_kd", "batches_levels"]
    groups = load_batch_points(ctx.st, "toy", METRIC)
    assert groups
    crit_rows, lvl_rows = sec.tables[0].rows, sec.tables[1].rows
    want = [(g.epoch, c["b"], c["points"], c["kd"], c["p_top@5%"]) for g in groups for c in batch_criteria(g, (0.05,))]
    got = [(r[1], r[2], r[4], r[6], r[7]) for r in crit_rows]
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a[:3] == b[:3] and a[3] == pytest.approx(b[3], nan_ok=True) and a[4] == pytest.approx(b[4], nan_ok=True)
    # the KD lines of the first panel: its config's groups, one line per epoch
    first = (groups[0].estimator, groups[0].config_hash)
    ax = sec.figures[0].fig.axes[0]
    mine = [g for g in groups if (g.estimator, g.config_hash) == first]
    assert len(ax.get_lines()) == len(mine)
    for line, g in zip(ax.get_lines(), mine):
        assert line.get_label() == f"epoch {g.epoch}"
        assert np.allclose(line.get_ydata(), [c["kd"] for c in batch_criteria(g, (0.05,))], equal_nan=True)
    # levels: summary per group; the histograms hold the finite intra-level KDs
    drawn = 0
    for g, row in zip(groups, lvl_rows):
        lv = levels(g)
        s = lv.summary()
        assert row[3:8] == [lv.points, s["levels"], s["multi_levels"], s["positive"], s["negative"]]
        assert row[8] == pytest.approx(s["mean_kd"], nan_ok=True)
        drawn += s["kd_levels"] >= 3
    hist_axes = [a for a in sec.figures[1].fig.axes if a.get_visible()]
    assert len(hist_axes) == min(drawn, 8)
    g0 = next(g for g in groups if levels(g).summary()["kd_levels"] >= 3)
    kd = levels(g0).kd
    kd = kd[levels(g0).multi & np.isfinite(kd)]
    assert sum(p.get_height() for p in hist_axes[0].patches) == len(kd)


def test_stability_is_epoch_stability(ctx):
    sec = stability_section(ctx)
    sets = load_points(ctx.st, "toy", METRIC)
    out, _ = epoch_stability(sets, class_ids(ctx.st, "toy", "deiso"), (0.05,))
    rows = sec.tables[0].rows
    assert [(r[1], r[2], r[3]) for r in rows] == [(t.epoch_from, t.epoch_to, t.n) for t in out]
    assert np.allclose([r[4] for r in rows], [t.values["kd"] for t in out])
    assert np.allclose([r[5] for r in rows], [t.values["p_top@5%"] for t in out])
    ax = sec.figures[0].fig.axes[0]
    drawn = np.concatenate([ln.get_ydata() for ln in ax.get_lines()])
    assert np.allclose(sorted(drawn), sorted(t.values["kd"] for t in out))


def test_ensembles_are_ensemble_families(ctx):
    sec = ensembles_section(ctx)
    out = ensemble_families(load_points(ctx.st, "toy", METRIC), (0.05,))
    assert {r.ensemble for r in out} == {1, 3, 5}
    rows = sec.tables[0].rows
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [(x.family, x.epoch, x.ensemble, x.n) for x in out]
    assert np.allclose([r[5] for r in rows], [x.values["kd"] for x in out])
    # the KD panel of the first family: one line per setting, at its epochs
    ax = sec.figures[0].fig.axes[0]
    fam = [x for x in out if x.family == 1]
    for line in ax.get_lines():
        k = 1 if line.get_label() == "no ensemble" else int(re.search(r"of (\d+)", line.get_label()).group(1))
        mine = sorted((x for x in fam if x.ensemble == k), key=lambda x: x.epoch)
        assert line.get_xdata().tolist() == [x.epoch for x in mine]
        assert np.allclose(line.get_ydata(), [x.values["kd"] for x in mine])


def test_forgetting_bands_and_mean_are_summarize(ctx):
    sec = forgetting_section(ctx)
    data = load_forgetting(ctx.st, "toy", "p")
    s = summarize(data["epoch"], data["acc_after_step"], data["acc_after_epoch"])
    rows = sec.tables[0].rows
    assert {r[0] for r in rows} == {"p"}  # the run without probes is left out
    assert [r[1] for r in rows] == s["epoch"].tolist()
    assert np.allclose([r[3] for r in rows], s["mean_fv"])
    assert np.allclose([r[5] for r in rows], s["median_fv"])
    (mean,) = [ln for ln in sec.figures[0].fig.axes[0].get_lines() if ln.get_label() == "mean"]
    assert np.allclose(mean.get_ydata(), s["mean_fv"])


def test_gradsim_lines_are_the_trend(ctx):
    sec = gradsim_section(ctx)
    epochs, rows = trend(ctx.st.gradsim_rows("toy"))
    assert epochs == [5, 15]
    table = sec.tables[0].rows
    assert [r[1] for r in table] == [r["layer"] for r in rows]
    for got, want in zip(table, rows):
        for i, e in enumerate(epochs):
            assert got[2 + i] == pytest.approx(want["means"][e])
    ax = sec.figures[0].fig.axes[0]
    layers = [r["layer"] for r in rows if r["layer"] != "all"]
    assert [t.get_text() for t in ax.get_xticklabels()] == layers
    for line in ax.get_lines():
        if line.get_label().startswith("epoch "):
            e = int(line.get_label().split()[1])
            want = [next(r["means"][e] for r in rows if r["layer"] == L) for L in layers]
            assert np.allclose(line.get_ydata(), want)


@pytest.mark.parametrize(
    "build, command",
    [
        (batches_section, "--batches 5"),
        (stability_section, "estbench score --space toy --ose RUN --epoch E"),
        (ensembles_section, "--ensemble 3"),
        (forgetting_section, "--probe-forgetting"),
        (gradsim_section, "--gradsim"),
    ],
)
def test_missing_names_the_command(bare, build, command):
    with pytest.raises(Missing, match=re.escape(command)) as e:
        build(bare)
    assert "`estbench " in str(e.value) and "\n" not in str(e.value)


def test_cli_report_draws_the_sections(runner, store, tmp_path):
    out = tmp_path / "r.html"
    keys = ("batches", "stability", "ensembles", "forgetting", "gradsim")
    args = ["report", "--space", "toy", "--truth", METRIC, "--store", store, "--html", str(out)]
    for key in keys:
        args += ["--section", key]
    r = runner.invoke(app(), args)
    assert r.exit_code == 0, r.output
    shown = re.findall(r'data-section="([^"]+)"', out.read_text())
    assert set(keys) <= set(shown)
