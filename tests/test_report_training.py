"""Report sections over supernet training (estbench/report/html/sections/training.py):
one-shot criteria against epoch with seed bands, the one-shot score histograms and
zero-shot estimators on trained weights, on the synthetic variance store; every drawn
number is checked against the analysis (``variance epochs``'s criteria, per-seed
``evaluate``), and each section names its command when the store lacks the data."""

from __future__ import annotations

import re

import numpy as np
import pytest
from bias_support import make_store
from conftest import app
from variance_support import METRIC, SEEDS, make_variance_store

from estbench.analysis.epochs import criteria_by_epoch
from estbench.analysis.evaluate import evaluate
from estbench.config import config_hash
from estbench.report.html.base import Missing
from estbench.report.html.context import ReportContext
from estbench.report.html.sections.training import epochs_section, os_scores_section, zse_training_section
from estbench.store import ScoreKey, ScoreRow, Store

ZSE_EPOCHS = (0, 10, 20)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The variance store plus synflow scored on 'trained weights' at three epochs."""
    path = str(tmp_path_factory.mktemp("rtrain") / "v.duckdb")
    syn = make_variance_store(path)
    rng = np.random.default_rng(3)
    q = (syn.truth - syn.truth.mean()) / syn.truth.std()
    with Store(path) as st:
        st.put_estimator("synflow", "zeroshot", True, "")
        settings = {"weights": "supernet:r", "batch_size": 8}
        chash = config_hash({"estimator": "synflow", **settings})
        st.put_config(chash, "synflow", settings, "supernet:r")
        rows = []
        for e in ZSE_EPOCHS:
            v = q * (1 - e / 40) + rng.normal(0, 0.5, len(q))
            sk = ScoreKey("toy", "synflow", chash, e, 20, 1)
            rows += [ScoreRow.of(sk, a, 0, float(v[a]), 0.0, None, None) for a in range(len(q))]
        st.upsert_scores(rows)
    return path


@pytest.fixture(scope="module")
def ctx(store):
    return ReportContext(Store(store, read_only=True), "toy", METRIC)


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("rtrain") / "s.duckdb")
    make_store(path, "toy", {"synflow": ("synflow", 0.5)}, metrics=(METRIC,))
    return ReportContext(Store(path, read_only=True), "toy", METRIC)


def _lines(ax) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {ln.get_label(): (np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())) for ln in ax.get_lines()}


def test_epochs_lines_are_variance_epochs_and_bands_the_single_seeds(ctx, store):
    sec = epochs_section(ctx)
    assert [f.name for f in sec.figures] == ["epochs_criteria"]
    st = ctx.st
    _, rows = criteria_by_epoch(st, "toy", METRIC)
    one_shot = [r for r in rows if r.estimator.startswith("os_") and len(r.cells) >= 2]
    assert one_shot and {r.estimator for r in one_shot} == {"os_acc", "os_loss"}
    # the line of each config is variance epochs' KD per epoch
    fig = sec.figures[0].fig
    kd_lines, p_lines = _lines(fig.axes[0]), list(fig.axes[1].get_lines())
    for i, r in enumerate(one_shot):
        x, y = kd_lines[r.name]
        es = sorted(r.cells)
        assert x.tolist() == es
        assert np.allclose(y, [r.cells[e]["kd"] for e in es])
        assert np.allclose(p_lines[i].get_ydata(), [r.cells[e]["p_top"] for e in es])
    # the table: seed mean = criteria's, min / max over the seeds = evaluate(seeds=[s])
    per_seed = {s: {(g.estimator, g.config_hash, g.epoch): g.values for g in evaluate(st, "toy", METRIC, seeds=[s],
                                                                                      ks=(0.05,))} for s in SEEDS}  # fmt: skip
    table = sec.tables[0]
    by = {(row[0], row[1]): row for row in table.rows}
    checked = 0
    for r in one_shot:
        for e, cell in r.cells.items():
            row = by[(r.name, e)]
            assert row[4] == pytest.approx(cell["kd"]) and row[7] == pytest.approx(cell["p_top"])
            kds = [
                v[(r.estimator, r.config_hash, e)]["kd"]
                for v in per_seed.values()
                if (r.estimator, r.config_hash, e) in v
            ]
            pts = [v[(r.estimator, r.config_hash, e)]["p_top@5%"] for v in per_seed.values()
                   if (r.estimator, r.config_hash, e) in v]  # fmt: skip
            assert row[3] == len(kds)
            assert row[5] == pytest.approx(min(kds)) and row[6] == pytest.approx(max(kds))
            assert row[8] == pytest.approx(min(pts)) and row[9] == pytest.approx(max(pts))
            checked += len(kds) >= 2
    assert checked  # some epochs have two seeds: a band is drawn
    assert fig.axes[0].collections  # the bands
    # the zero-shot config on trained weights is not a one-shot line
    assert not any(name.startswith("synflow") for name in kd_lines)


def test_os_scores_histograms_are_the_points_at_first_middle_last(ctx):
    sec = os_scores_section(ctx)
    assert [f.name for f in sec.figures] == ["os_scores_hist"]
    sets = [p for p in ctx.points() if p.estimator.startswith("os_")]
    by_config: dict = {}
    for p in sets:
        by_config.setdefault((p.estimator, p.config_hash), {})[p.epoch] = p
    rows = sec.tables[0].rows
    assert len(rows) == sum(min(3, len(v)) for v in by_config.values())
    for (est, _), eps in by_config.items():
        es = sorted(eps)
        want = sorted({es[0], es[len(es) // 2], es[-1]}) if len(es) > 3 else es
        for e in want:
            s = eps[e].score
            match = [r for r in rows if r[0].startswith(est) and r[1] == e and r[2] == len(s)
                     and r[5] == pytest.approx(float(np.median(s)))]  # fmt: skip
            assert match, (est, e)
    # every histogram drawn holds all points of its epoch
    fig = sec.figures[0].fig
    panel_counts = []
    for ax in fig.axes:
        if ax.get_visible() and ax.patches:
            # stepfilled + step per epoch: the filled patch's area in counts = its points
            panel_counts.append(len(ax.patches) // 2)
    assert sum(panel_counts) == len(rows)


def test_zse_training_is_variance_epochs_of_the_zero_shot_configs(ctx):
    sec = zse_training_section(ctx)
    assert [f.name for f in sec.figures] == ["zse_training_kd"]
    epochs, rows = criteria_by_epoch(ctx.st, "toy", METRIC, estimators=["synflow"])
    (r,) = rows
    table = sec.tables[0]
    assert table.columns[1:4] == [f"KD ep{ZSE_EPOCHS[0]}", f"P@top5% ep{ZSE_EPOCHS[0]}", f"points ep{ZSE_EPOCHS[0]}"]
    (row,) = table.rows
    assert row[0] == r.name
    for i, e in enumerate(epochs):
        assert row[1 + 3 * i] == pytest.approx(r.cells[e]["kd"])
        assert row[2 + 3 * i] == pytest.approx(r.cells[e]["p_top"])
        assert row[3 + 3 * i] == r.cells[e]["points"]
    (line,) = [ln for ln in sec.figures[0].fig.axes[0].get_lines() if ln.get_label() == r.name]
    assert np.allclose(line.get_ydata(), [r.cells[e]["kd"] for e in epochs])


@pytest.mark.parametrize(
    "build, command",
    [
        (epochs_section, "estbench score --space toy --ose RUN --epoch E"),
        (os_scores_section, "estbench score --space toy --ose RUN --epoch E"),
        (zse_training_section, "estbench score --space toy --zse NAME --weights supernet:RUN@"),
    ],
)
def test_missing_names_the_command(bare, build, command):
    with pytest.raises(Missing, match=re.escape(command)):
        build(bare)


def test_one_shot_without_epochs_is_missing_for_epochs_but_has_histograms(tmp_path):
    path = str(tmp_path / "one.duckdb")
    make_variance_store(path)
    ctx = ReportContext(Store(path, read_only=True), "toy", METRIC, epochs=[15])
    with pytest.raises(Missing, match="2 or more epochs"):
        epochs_section(ctx)
    assert os_scores_section(ctx).figures


def test_cli_report_draws_the_sections(runner, store, tmp_path):
    out = tmp_path / "r.html"
    args = ["report", "--space", "toy", "--truth", METRIC, "--store", store, "--html", str(out)]
    for key in ("epochs", "os_scores", "zse_training"):
        args += ["--section", key]
    r = runner.invoke(app(), args + ["--figures", str(tmp_path / "figs")])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    shown = re.findall(r'data-section="([^"]+)"', text)
    assert {"epochs", "os_scores", "zse_training"} <= set(shown)
    for name in ("epochs_criteria", "os_scores_hist", "zse_training_kd"):
        assert (tmp_path / "figs" / f"{name}.png").stat().st_size > 1000
