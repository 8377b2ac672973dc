"""`estbench report --html / --figures`: the page, the section framework and the
overview sections (criteria table, quality against cost, agreement) on synthetic toy
stores; the other sections have their own test modules, the real browser check is
tests/test_report_browser.py."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from bias_support import make_store
from conftest import app
from tests_support import one_line_error

from estbench.analysis.agreement import agreement
from estbench.analysis.evaluate import evaluate
from estbench.report.html import build_report
from estbench.report.html.base import Missing, Section, all_sections, best_cells
from estbench.report.html.context import ReportContext
from estbench.store import Store

METRIC = "cifar10-test"
ESTIMATORS = {"synflow": ("synflow", 0.5), "snip": ("snip", 1.0), "os_loss": ("os_loss", 0.7)}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return make_store(str(tmp_path_factory.mktemp("report") / "full.duckdb"), "toy", ESTIMATORS)


@pytest.fixture(scope="module")
def structural(tmp_path_factory):
    return make_store(str(tmp_path_factory.mktemp("report") / "structural.duckdb"), "toy", {})


def _report(runner, path, out, *args):
    return runner.invoke(
        app(), ["report", "--space", "toy", "--truth", METRIC, "--store", path, "--html", str(out), *args]
    )


def _sections(text: str) -> list[str]:
    return re.findall(r'<section id="[^"]+" class="report-section" data-section="([^"]+)"', text)


def _missing(text: str) -> dict[str, str]:
    return dict(re.findall(r'<li class="missing" data-missing="([^"]+)"><b>[^<]*</b>: (.*?)</li>', text))


def test_structural_store_shows_the_overview_and_names_what_fills_the_rest(runner, structural, tmp_path):
    out = tmp_path / "r.html"
    r = _report(runner, structural.path, out, "--format", "json")
    assert r.exit_code == 0, r.output
    rows = {row["section"]: row for row in json.loads(r.output)}
    text = out.read_text()
    shown, missing = _sections(text), _missing(text)
    assert {"criteria", "cost", "agreement"} <= set(shown)
    assert set(shown) | set(missing) == {s.key for s in all_sections()}
    assert not set(shown) & set(missing)
    for key, line in missing.items():
        assert "<code>estbench " in line or "not drawn" in line, (key, line)  # the command set as code
        assert rows[key]["status"] == "missing"
    for key in shown:
        assert rows[key]["status"] == "shown"
    # self-contained: no external resource of any kind
    assert not re.search(r'(src|href)="(https?:|//)', text)
    assert "<script" not in text


def test_images_are_real_pngs_of_their_stated_size(runner, full, tmp_path):
    out = tmp_path / "r.html"
    r = _report(runner, full.path, out)
    assert r.exit_code == 0, r.output
    imgs = re.findall(r'<img src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)"', out.read_text())
    assert imgs
    for data, w, h in imgs:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert (width, height) == (int(w), int(h)) and width > 0 and height > 0


def test_figures_dir_gets_a_pdf_and_a_png_per_figure(runner, full, tmp_path):
    out, figs = tmp_path / "r.html", tmp_path / "figs"
    r = _report(runner, full.path, out, "--figures", str(figs), "--section", "cost", "--section", "agreement")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in figs.iterdir())
    assert names == ["agreement.pdf", "agreement.png", "cost_quality.pdf", "cost_quality.png"]
    for p in figs.iterdir():
        head = p.read_bytes()[:8]
        assert head.startswith(b"%PDF") if p.suffix == ".pdf" else head == b"\x89PNG\r\n\x1a\n"
    assert _sections(out.read_text()) == ["cost", "agreement"]
    # --figures alone writes the files and no page
    figs2 = tmp_path / "only"
    r = runner.invoke(app(), ["report", "--space", "toy", "--truth", METRIC, "--store", full.path,
                              "--figures", str(figs2), "--section", "cost"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in figs2.iterdir()) == ["cost_quality.pdf", "cost_quality.png"]


def test_criteria_table_matches_evaluate_and_marks_the_best(full):
    st = Store(full.path, read_only=True)
    ctx = ReportContext(st, "toy", METRIC)
    sec = all_by_key()["criteria"].build(ctx)
    table = sec.tables[0]
    groups = evaluate(st, "toy", METRIC, "deiso", [], None, None, (0.05,))
    by_name = {r[0]: r for r in table.rows}
    assert len(table.rows) == len(groups)
    for g in groups:
        row = by_name[g.estimator]
        assert row[1] == pytest.approx(g.values["kd"]) and row[5] == pytest.approx(g.values["br@5%"])
    kd = [r[1] for r in table.rows]
    j = table.columns.index("KD")
    assert {i for i, jj in table.best if jj == j} == {i for i, v in enumerate(kd) if v == max(kd)}
    br = [r[5] for r in table.rows]
    assert {i for i, jj in table.best if jj == 5} == {i for i, v in enumerate(br) if v == min(br)}


def test_ci_puts_intervals_in_the_table_and_bars_on_the_cost_figure(runner, full, tmp_path):
    st = Store(full.path, read_only=True)
    ctx = ReportContext(st, "toy", METRIC, "iso", ci=90.0, resamples=200, ci_seed=3)
    sec = all_by_key()["criteria"].build(ctx)
    cell = next(r[1] for r in sec.tables[0].rows if r[0] == "synflow")
    assert re.fullmatch(r"-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]", cell), cell
    lo, hi = map(float, re.findall(r"-?\d\.\d{3}", cell)[1:])
    assert lo <= float(cell.split()[0]) <= hi
    r = _report(runner, full.path, tmp_path / "ci.html", "--ci", "95", "--resamples", "200", "--section", "criteria")
    assert r.exit_code == 0, r.output
    text = (tmp_path / "ci.html").read_text()
    assert "95% bootstrap intervals (200 resamples, seed 0)" in text
    # deiso: the toy space has too few classes for an interval; the rows are named in a note
    assert "no bootstrap interval (fewer than 10 points): " in text
    # the terminal table takes --ci too
    r = runner.invoke(app(), ["report", "--space", "toy", "--truth", METRIC, "--store", full.path, "--ci", "95",
                              "--resamples", "200", "--format", "json", "--protocol", "iso"])  # fmt: skip
    assert r.exit_code == 0, r.output
    row = json.loads(r.output)[0]
    assert row["KD_lo"] <= row["KD"] <= row["KD_hi"] and row["BR@5%_lo"] <= row["BR@5%"] <= row["BR@5%_hi"]
    r = runner.invoke(app(), ["report", "--space", "toy", "--truth", METRIC, "--store", full.path, "--ci", "95",
                              "--resamples", "200", "--format", "markdown", "--protocol", "iso"])  # fmt: skip
    assert re.search(r"\| -?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\] \|", r.output), r.output


def test_agreement_figure_uses_the_final_epoch_and_the_analysis_values(variance_store):
    st = Store(variance_store.path, read_only=True)
    ctx = ReportContext(st, "toy", METRIC)
    sec = all_by_key()["agreement"].build(ctx)
    assert len(sec.figures) == 1
    res = agreement(st, "toy", None, "deiso")
    finals = ctx.final_points()
    assert finals and all(p.epoch == max(q.epoch for q in ctx.points() if q.config_hash == p.config_hash)
                          for p in finals)  # fmt: skip
    assert len(res.groups) > len(finals)  # every epoch in the analysis, the last one in the figure
    img = sec.figures[0].fig.axes[0].get_images()[0].get_array()
    k_t = res.kinds.count("truth")
    keep = list(range(k_t)) + [k_t + j for j, g in enumerate(res.groups)
                               if (g.estimator, g.config_hash, g.epoch) in
                               {(p.estimator, p.config_hash, p.epoch) for p in finals}]  # fmt: skip
    np.testing.assert_allclose(np.asarray(img), res.corr[np.ix_(keep, keep)])


@pytest.fixture(scope="module")
def variance_store(tmp_path_factory):
    from variance_support import make_variance_store

    return make_variance_store(str(tmp_path_factory.mktemp("report") / "var.duckdb"))


def all_by_key():
    return {s.key: s for s in all_sections()}


def test_a_section_raising_missing_or_bad_input_is_listed_not_fatal(full, monkeypatch):
    from estbench.errors import BadInput
    from estbench.report.html import base

    calls = []

    def missing(ctx):
        calls.append("m")
        raise Missing("no frobs; `estbench frob` adds them")

    def bad(ctx):
        raise BadInput("too few points")

    def empty(ctx):
        return Section(notes=["nothing here"])

    infos = [base.SectionInfo(k, k.title(), "", "", "", i, fn) for i, (k, fn) in
             enumerate((("m", missing), ("b", bad), ("e", empty)))]  # fmt: skip
    monkeypatch.setattr("estbench.report.html.all_sections", lambda: infos)
    rep = build_report(ReportContext(Store(full.path, read_only=True), "toy", METRIC))
    assert not rep.built and calls == ["m"]
    assert [(i.key, line) for i, line in rep.missing] == [
        ("m", "no frobs; `estbench frob` adds them"), ("b", "not drawn: too few points"), ("e", "nothing here")
    ]  # fmt: skip


def test_bad_inputs_are_one_line(runner, full, tmp_path):
    line = one_line_error(_report(runner, full.path, tmp_path / "x.html", "--section", "critera"))
    assert "criteria" in line  # did you mean
    line = one_line_error(_report(runner, full.path, tmp_path / "no" / "such" / "x.html"))
    assert "does not exist" in line
    r = runner.invoke(app(), ["report", "--space", "toy", "--truth", METRIC, "--store", full.path,
                              "--section", "cost"])  # fmt: skip
    assert "--section needs --html" in one_line_error(r)
    assert "snyflow" in one_line_error(_report(runner, full.path, tmp_path / "x.html", "-e", "snyflow"))
    assert not (tmp_path / "x.html").exists()


def test_best_cells_ignores_nan_and_text_and_marks_ties():
    cols = ["name", "kd", "br"]
    rows = [["a", 0.5, 0.1], ["b", float("nan"), 0.1], ["c", 0.5, "x"]]
    assert best_cells(cols, rows, {"kd": True, "br": False, "zz": True}) == {(0, 1), (2, 1), (0, 2), (1, 2)}


def test_readme_lists_every_section():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    part = readme.split("### Report", 1)[1].split("\n### ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", part, flags=re.M))
    assert listed == {s.key for s in all_sections()}
