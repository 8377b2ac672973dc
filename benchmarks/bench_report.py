"""Speed of the whole HTML report (issue 12): `estbench report --html` with every section
over 15,625 NB201 archs x 20 estimators under 30 s.

Builds the synthetic store of benchmarks/bench_bias.py (every arch; truth cifar10 /
cifar100 / imagenet16-test; params / flops; 20 zero-shot-like estimators, 4 of them
one-shot-like, one on class representatives only; ~10 s) and gives its one-shot-like
estimators trained checkpoints (epochs 10 and 20, 4 validation batches each, written as
columns), a training run's forgetting probes and gradient cosines (50 of each per
epoch, the commands' defaults), so the sections about training, batches, stability and
probes are timed too (the one-shot-like estimators have synthetic names: the report
tells one-shot from zero-shot by the registered kind, so their checkpoints count as
zero-shot scores on trained weights); or reuses the store at the path given (e.g. a real one: it is only read). Then runs
`estbench report --html` once through the real CLI in a fresh process (wall time
including Python start-up) and prints the seconds and their ratio to the target; then
builds the report once more in this process to time each section (``build_report``'s
``on_section``: a section's time includes drawing its figures, and a load several
sections share is charged to the first that asks). Run it on an idle machine;
`--space toy` is a quick check that it works.

    .venv/bin/python benchmarks/bench_report.py [STORE] [--space nb201] [--epochs 10,20] [--batches 4]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
TARGET = 30.0
TRUTH = "cifar10-test"


def build(path: str, space: str, epochs: list[int], batches: int) -> None:
    """bench_bias's store (the toy space: the same recipe on 27 archs), then trained
    checkpoints of its one-shot-like estimators."""
    if space == "nb201":
        from bench_bias import build as build_bias

        build_bias(path)
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from bias_support import make_store

        est = {f"z{i:02d}": ("os_loss" if i % 4 == 3 else "synflow", 0.3 + 0.1 * i) for i in range(19)}
        est["snip"] = ("snip", 0.5)
        make_store(path, space, est, metrics=(TRUTH, "cifar100-test"), representatives_only=("snip",))
    if epochs:
        add_checkpoints(path, space, epochs, batches)
        add_probes(path, space, epochs)


def add_checkpoints(path: str, space: str, epochs: list[int], batches: int) -> None:
    """Scores of every one-shot-like estimator of the store at ``epochs`` (its epoch-0
    config, seed 20, ``batches`` batches each): a loss that follows the truth more
    closely as training goes on."""
    from bench_variance import _write_columns

    from estbench.store import Store

    t = time.perf_counter()
    rng = np.random.default_rng(1)
    st = Store(path)
    with st.session():
        _, truth = st.query(
            "SELECT arch_id, value FROM truth WHERE space = ? AND metric = ? ORDER BY 1", [space, TRUTH]
        )
        ids = np.array([r[0] for r in truth])
        q = np.array([r[1] for r in truth], dtype=float)
        q = (q - q.mean()) / q.std()
        _, configs = st.query(
            "SELECT DISTINCT s.estimator, s.config_hash FROM scores s JOIN estimators e ON e.name = s.estimator "
            "WHERE s.space = ? AND e.kind = 'oneshot' AND s.epoch = 0 ORDER BY 1",
            [space],
        )
        n = len(ids) * batches
        for est, chash in configs:
            for epoch in epochs:
                stage = epoch / max(epochs)
                loss = np.exp(-0.5 * (q[:, None] * stage + rng.normal(0, 1.0, size=(len(ids), batches))))
                _write_columns(st, {
                    "space": [space] * n, "arch_id": np.repeat(ids, batches).tolist(), "estimator": [est] * n,
                    "config_hash": [chash] * n, "epoch": [epoch] * n, "seed": [20] * n,
                    "batch": np.tile(np.arange(batches), len(ids)).tolist(), "value": loss.ravel().tolist(),
                    "status": ["ok"] * n, "detail": [None] * n, "elapsed_s": [0.01] * n, "run_id": [None] * n,
                })  # fmt: skip
    rows = len(configs) * len(epochs) * n
    print(f"+ {len(configs)} one-shot-like estimators at epochs {epochs} x {batches} batches ({rows:,} score rows): "
          f"{time.perf_counter() - t:.1f} s")  # fmt: skip


def add_probes(path: str, space: str, epochs: list[int], probes: int = 50, pairs: int = 50) -> None:
    """A training run with ``probes`` forgetting probes per epoch up to the last of
    ``epochs`` and gradient cosines of ``pairs`` pairs x 20 layers at each of ``epochs``
    (the defaults of `train --probe-forgetting` and `score --gradsim`)."""
    from estbench.store import Store
    from estbench.store.gradsim import GradsimRow

    rng = np.random.default_rng(2)
    n_archs = 27 if space == "toy" else 15625
    layers = ["stem", "classifier"] + [f"S{s}C{c}" for s in range(1, 4) for c in range(6)]
    with Store(path) as st:
        run_id = st.start_run("train", space, "bench", {"synthetic": True})
        for epoch in range(1, max(epochs) + 1):
            archs = rng.integers(0, n_archs, probes)
            after = rng.random(probes)
            st.put_forgetting(space, "bench", epoch, [(int(a), 7 * i, float(x), float(np.clip(x + rng.normal(0, 0.1), 0, 1)))
                                                      for i, (a, x) in enumerate(zip(archs, after))])  # fmt: skip
        st.finish_run(run_id, "done")
        run_id = st.start_run("score", space, "bench-gradsim", {})
        st.put_config("bench-gradsim", "gradsim", {"pairs": pairs}, f"bench P={pairs}")
        rows = [GradsimRow(space, "bench", e, "bench-gradsim", k, int(a), int(b), layer,
                           float(np.clip(rng.normal(e / (2 * max(epochs)), 0.3), -1, 1)))
                for e in epochs for k, (a, b) in enumerate(rng.integers(0, n_archs, (pairs, 2)))
                for layer in layers]  # fmt: skip
        st.put_gradsim(run_id, rows)
        st.finish_run(run_id, "done")


def run_report(store: str, space: str, out: Path) -> tuple[float, list[dict]]:
    """Wall seconds of one `report --html` in a fresh process, and the command's rows."""
    cmd = [sys.executable, "-m", "estbench", "report", "--space", space, "--truth", TRUTH, "--store", store,
           "--html", str(out / "report.html"), "-f", "json"]  # fmt: skip
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"report --html failed ({p.returncode}): {p.stderr.strip()}")
    return dt, json.loads(p.stdout)


def section_times(store: str, space: str, out: Path) -> list[tuple[str, float]]:
    """(section key, seconds) of a second, in-process build (``build_report``'s
    ``on_section`` marks where each section starts; its time includes drawing its
    figures), then writing the page."""
    from estbench.report.html import build_report, write_html
    from estbench.report.html.context import ReportContext
    from estbench.store import Store

    marks: list[tuple[str, float]] = []
    st = Store(store, read_only=True)
    t0 = time.perf_counter()
    with st.session():
        ctx = ReportContext(st, space, TRUTH)
        rep = build_report(ctx, on_section=lambda info: marks.append((info.key, time.perf_counter())))
        t_write = time.perf_counter()
        write_html(rep, out / "again.html")
    ends = [t for _, t in marks[1:]] + [t_write]
    times = [(key, end - t) for (key, t), end in zip(marks, ends)]
    return (
        [("(before the first section)", marks[0][1] - t0)]
        + times
        + [("(writing the page)", time.perf_counter() - t_write)]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store", nargs="?", help="reuse (or build once into) this store file")
    ap.add_argument("--space", default="nb201", help="nb201 (the target) or toy (a quick check) [nb201]")
    ap.add_argument("--epochs", default="10,20", help="trained checkpoints of the one-shot-like estimators ('' none)")
    ap.add_argument("--batches", type=int, default=4, help="validation batches per checkpoint score [4]")
    args = ap.parse_args()
    epochs = [int(e) for e in args.epochs.split(",") if e.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or str(Path(tmp) / f"bench_report_{args.space}.duckdb")
        if not Path(store).exists():
            build(store, args.space, epochs, args.batches)
        total, rows = run_report(store, args.space, Path(tmp))
        shown = sum(1 for r in rows if r["status"] == "shown")
        figs = sum(r["figures"] for r in rows)
        print(f"report --html, {shown} of {len(rows)} sections shown, {figs} figures: {total:.2f} s  "
              f"{total / TARGET:4.2f}x of {TARGET:g} s (one run in a fresh process, start-up included)")  # fmt: skip
        times = section_times(store, args.space, Path(tmp))
        status = {r["section"]: (r["status"], r["figures"]) for r in rows}
        inside = sum(dt for _, dt in times)
        print(
            f"per section (a second build in this process, {inside:.2f} s; a load several sections share is "
            "charged to the first that asks):"
        )
        for key, dt in times:
            st, n = status.get(key, ("", ""))
            print(f"  {key:28s} {dt:6.2f} s  {dt / inside:4.0%}  {st:7s} {n}")
        key, dt = max(times, key=lambda kv: kv[1])
        print(f"slowest section: {key} {dt:.2f} s ({dt / TARGET:.2f}x of the whole report's {TARGET:g} s)")


if __name__ == "__main__":
    main()
