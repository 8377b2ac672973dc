"""The HTML report in a real browser (``-m browser``; skipped without Chromium): the
page `estbench report --html` writes is loaded in headless Chromium, where a script
checks that every image decodes (complete, natural size > 0, the size the page
declares) and that every shown section has an image or a table; the verdict is read
back from the dumped DOM, and a screenshot of the page must be a non-blank PNG.

Two stores of the toy space: one with data for every registered section (structural,
zero-shot-like and one-shot-like scores at several epochs, seeds, batches and
ensembles, zero-shot scores on trained weights, forgetting probes, gradient
similarities), where every section is shown; and one with structural scores only,
where the sections that need more are listed as missing, each line naming the
`estbench` command that fills it. The sections are the ones registered at run time
(``all_sections``), so a new section is checked without editing this file."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from bias_support import make_store
from conftest import app
from variance_support import make_variance_store

from estbench.report.html.base import all_sections

pytestmark = pytest.mark.browser

# sections that cannot be shown on the full toy store (none: a new section adds its data
# to make_full_store, or its key here with the reason)
NOT_ON_TOY: dict[str, str] = {}
# what a section needs beyond structural scores, read from its `fills` line
NEEDS_MORE = re.compile(r"--ose|--zse|--weights|--batches|--gradsim|--probe|\btrain\b")
ALWAYS = ("criteria", "cost", "agreement")  # what structural scores alone always show
LAYOUT = re.compile(r"constrained_layout|tight_layout|collapsed|[Gg]lyph")

VERDICT = """
<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) { errors.push(String(e.message)); });
  window.addEventListener("load", function () {
    function key(el) { var s = el.closest("section[data-section]"); return s ? s.dataset.section : null; }
    var images = Array.from(document.images).map(function (im) {
      var fig = im.closest("figure");
      return {section: key(im), figure: fig ? fig.dataset.figure : null, complete: im.complete,
              w: im.naturalWidth, h: im.naturalHeight,
              declared: [Number(im.getAttribute("width")), Number(im.getAttribute("height"))]};
    });
    var sections = Array.from(document.querySelectorAll("section[data-section]")).map(function (s) {
      return {key: s.dataset.section, images: s.querySelectorAll("img").length,
              tables: s.querySelectorAll("table").length, rows: s.querySelectorAll("tbody tr").length};
    });
    var missing = Array.from(document.querySelectorAll("li.missing[data-missing]")).map(function (li) {
      return {key: li.dataset.missing, text: li.textContent,
              code: Array.from(li.querySelectorAll("code")).map(function (c) { return c.textContent; })};
    });
    var bad = images.filter(function (i) { return !(i.complete && i.w > 0 && i.h > 0); });
    var empty = sections.filter(function (s) { return s.images + s.tables === 0; });
    var out = document.createElement("pre");
    out.id = "verdict";
    out.textContent = JSON.stringify({ok: !bad.length && !empty.length && !errors.length, images: images,
                                      sections: sections, missing: missing, bad: bad, empty: empty,
                                      errors: errors});
    document.body.appendChild(out);
  });
})();
</script>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("headless Chromium not found (install the Debian package `chromium`)")
    return exe


def browser(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with its own profile folder (no clash with another browser)."""
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-extensions", "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def add_trained_zse(path: str, syn) -> None:
    """synflow-like scores on the weights of run `syn` at epochs 0, 5, 10 (the table
    ``score --zse synflow --weights supernet:syn@0,5,10`` writes), better with training."""
    from estbench.config import config_hash
    from estbench.store import ScoreKey, ScoreRow, Store

    rng = np.random.default_rng(5)
    truth = syn.truth["cifar10-test"]
    q = (truth - truth.mean()) / truth.std()
    settings = {"space": "toy", "synthetic": True, "weights": "supernet:syn"}
    chash = config_hash({"estimator": "synflow", **settings})
    st = Store(path)
    with st.session():
        st.put_config(chash, "synflow", settings)
        for epoch in (0, 5, 10):
            v = q * (1 + epoch / 5) + rng.normal(0, 1.0, size=len(q))
            key = ScoreKey("toy", "synflow", chash, epoch, 20)
            st.upsert_scores([ScoreRow.of(key, i, 0, float(x), 0.01, None) for i, x in enumerate(v)])


def add_probes(path: str) -> None:
    """A training run `syn` with forgetting probes at 3 epochs, and gradient cosines of
    6 pairs x 3 layers at 2 of its checkpoints."""
    from estbench.store import Store
    from estbench.store.gradsim import GradsimRow

    rng = np.random.default_rng(3)
    with Store(path) as st:
        run_id = st.start_run("train", "toy", "syn", {"synthetic": True})
        for epoch in (1, 2, 3):
            archs = rng.integers(0, 27, 12)
            st.put_forgetting("toy", "syn", epoch, [(int(a), s, float(rng.random()), float(rng.random()))
                                                    for s, a in enumerate(archs)])  # fmt: skip
        st.finish_run(run_id, "done")
        run_id = st.start_run("score", "toy", "synthetic", {})
        st.put_config("gs", "gradsim", {"pairs": 6}, "syn P=6")
        rows = [
            GradsimRow("toy", "syn", e, "gs", k, k, k + 1, layer, float(np.clip(rng.normal(e / 30, 0.4), -1, 1)))
            for e in (5, 10)
            for k in range(6)
            for layer in ("stem", "S1C0", "classifier")
        ]
        st.put_gradsim(run_id, rows)
        st.finish_run(run_id, "done")


def make_full_store(path: str) -> None:
    make_variance_store(path)  # os_acc / os_loss: epochs, seeds, batches, ensembles
    zse = {"synflow": ("synflow", 0.5), "snip": ("snip", 0.7), "grad_norm": ("grad_norm", 0.9)}
    syn = make_store(path, "toy", zse, metrics=("cifar10-test", "cifar100-test"), seeds=(20, 2020))
    add_trained_zse(path, syn)
    add_probes(path)


def report(runner, store: str, page: Path) -> dict[str, dict]:
    """`estbench report --html PAGE` through the CLI: section key -> its row. A figure
    whose layout matplotlib gave up on (axes collapsed, a glyph missing) fails here."""
    args = ["report", "--space", "toy", "--truth", "cifar10-test", "--store", store, "--html", str(page), "-f", "json"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = runner.invoke(app(), args)
    assert r.exit_code == 0, r.output
    bad = [f"{w.category.__name__}: {w.message}" for w in caught if LAYOUT.search(str(w.message))]
    assert not bad, f"unreadable figures: {bad}"
    assert page.stat().st_size > 0
    return {row["section"]: row for row in json.loads(r.stdout)}


def verdict(exe: str, page: Path, tmp_path: Path) -> dict:
    """Load a copy of ``page`` with the checking script appended; its verdict."""
    text = page.read_text(encoding="utf-8")
    assert text.count("</body>") == 1
    probe = tmp_path / f"{page.stem}.checked.html"
    probe.write_text(text.replace("</body>", VERDICT + "</body>"), encoding="utf-8")
    p = browser(exe, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    m = re.search(r'<pre id="verdict">(.*?)</pre>', p.stdout, re.S)
    assert m, f"no verdict in the DOM (exit {p.returncode}): {p.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


def check_page(v: dict, rows: dict[str, dict]) -> None:
    """The browser's view agrees with the command's rows and nothing is broken."""
    assert not v["errors"], v["errors"]
    assert not v["bad"], f"images that did not decode: {v['bad']}"
    assert not v["empty"], f"sections with neither an image nor a table: {v['empty']}"
    shown = {k for k, r in rows.items() if r["status"] == "shown"}
    assert [s["key"] for s in v["sections"]] == [k for k in rows if k in shown]
    assert {m["key"] for m in v["missing"]} == set(rows) - shown
    for im in v["images"]:
        assert im["section"] in shown and im["figure"], im
        assert abs(im["w"] - im["declared"][0]) <= 1 and abs(im["h"] - im["declared"][1]) <= 1, im
    per_section = {s["key"]: s["images"] for s in v["sections"]}
    assert per_section == {k: rows[k]["figures"] for k in shown}
    for m in v["missing"]:
        assert any(re.match(r"estbench [a-z]", c) for c in m["code"]), f"missing line names no command: {m}"
    assert v["ok"]


def test_every_section_renders_in_chromium(runner, chromium, tmp_path):
    store = str(tmp_path / "full.duckdb")
    make_full_store(store)
    page = tmp_path / "report.html"
    rows = report(runner, store, page)
    keys = [s.key for s in all_sections()]
    assert sorted(rows) == sorted(keys)
    not_shown = {k: r["note"] for k, r in rows.items() if r["status"] != "shown" and k not in NOT_ON_TOY}
    assert not not_shown, f"sections not shown on the full toy store (add their data to make_full_store): {not_shown}"
    v = verdict(chromium, page, tmp_path)
    check_page(v, rows)
    assert len(v["images"]) == sum(r["figures"] for r in rows.values()) > 0

    shot = tmp_path / "report.png"
    p = browser(chromium, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 0, p.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    pixels = imread(str(shot))
    assert pixels.shape[:2] == (4000, 1280) and float(pixels[..., :3].std()) > 0.02  # not a blank page


def test_structural_scores_show_what_they_can_and_name_the_rest(runner, chromium, tmp_path):
    store = str(tmp_path / "structural.duckdb")
    make_store(store, "toy", {})  # params and flops only
    page = tmp_path / "structural.html"
    rows = report(runner, store, page)
    infos = {s.key: s for s in all_sections()}
    assert sorted(rows) == sorted(infos)
    shown = {k for k, r in rows.items() if r["status"] == "shown"}
    assert set(ALWAYS) <= shown
    needs_more = {k for k, info in infos.items() if NEEDS_MORE.search(info.fills)}
    assert needs_more and not (needs_more & shown), f"shown without the data they need: {needs_more & shown}"
    for k in set(rows) - shown:
        assert "`estbench " in rows[k]["note"], rows[k]
    check_page(verdict(chromium, page, tmp_path), rows)
