"""Speed of every `estbench variance` command (issue 11): each over 15,625 NB201 archs x 10
checkpoint epochs under 5 s.

Builds a synthetic NB201 store (all 15,625 archs in the archs table, a synthetic
cifar10-test truth, and os_acc of --archs archs x --epochs checkpoint epochs x --seeds
seeds x --batches batches of 128 images, written as columns straight into the scores
table: 1.25M rows at the full size, plus a temporal-ensemble config (--ensemble 3) at
the last epoch; ~15-30 s), or reuses the store at the path given, then runs each case
through the real CLI in a fresh process, one after the other (wall time including
Python start-up, ~0.6 s of it), and prints the seconds and their ratio to the target.
Run it on an idle machine; `--archs 500` is a quick check that it works.

    .venv/bin/python benchmarks/bench_variance.py [STORE] [--archs 15625] [--epochs 10] [--seeds 2] [--batches 4]

Other variance analyses add their commands to CASES (and, when they read tables of
their own, fill them in ``build`` where marked)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET = 5.0

# ---- the cases: every `estbench variance` command to time; add new analyses here --------
CASES = [
    # epochs (Table A11 layout: every scored epoch)
    ["variance", "epochs"],
    # batches (Sec. 4.1, Fig. 3, A3)
    ["variance", "batches"],
    ["variance", "batches", "--protocol", "iso"],
    ["variance", "batches", "--show", "levels"],
    # stability (Sec. 5.3, Fig. 7; Sec. 6.1, Fig. 8)
    ["variance", "stability"],
    ["variance", "stability", "--protocol", "iso"],
    ["variance", "stability", "--show", "seeds"],
    ["variance", "stability", "--show", "ensembles"],
    # forgetting, gradsim, epochs: their cases go here
]
# -----------------------------------------------------------------------------------------


def _write_columns(st, columns: dict[str, list]) -> None:
    from estbench.store.rows import SCORE_COLUMNS
    from estbench.store.store import _insert_columns

    st._write(lambda con: _insert_columns(con, "scores", SCORE_COLUMNS, columns), "writing scores")


def build(path: str, archs: int, epochs: int, seeds: int, batches: int) -> None:
    """The synthetic store: os_acc per batch = round(128 * sigmoid(quality * stage + noise))
    / 128 (an accuracy on one batch of 128: ties, as real one-shot accuracies have)."""
    from estbench.config import config_hash
    from estbench.estimators import ESTIMATORS
    from estbench.runs.selection import ensure_archs
    from estbench.spaces import get_space
    from estbench.store import Store
    from estbench.truth.model import MetricInfo, TruthTable

    t = time.perf_counter()
    rng = np.random.default_rng(0)
    st = Store(path)
    with st.session():
        n_all = ensure_archs(st, get_space("nb201"), None)
        strs = st.arch_strings("nb201")
        quality = rng.normal(size=n_all)
        table = TruthTable(list(range(n_all)), strs)
        table.add(MetricInfo("cifar10-test", 200, True, "synthetic"), (90 + 3 * quality).tolist())
        st.put_truth("nb201", table)
        meta = ESTIMATORS.meta("os_acc")
        st.put_estimator("os_acc", meta["kind"], meta["higher_is_better"], meta["description"])
        hashes = {}
        for ens in (1, 3):
            settings = {"space": "nb201", "train": {"synthetic": True}, "batch_size": 128, "bn": "train",
                        "recal_batches": 0, "ensemble": ens, "data": "synthetic"}  # fmt: skip
            hashes[ens] = config_hash({"estimator": "os_acc", **settings})
            st.put_config(hashes[ens], "os_acc", settings, "bench" + (f" ens{ens}" if ens > 1 else ""))
        ids = np.arange(min(archs, n_all))
        ckpts = [5 * (i + 1) for i in range(epochs)]
        groups = [(1, e) for e in ckpts] + [(3, ckpts[-1])]
        n = len(ids) * batches
        for ens, epoch in groups:
            for s in range(seeds):
                stage = epoch / ckpts[-1]
                logit = quality[ids, None] * stage + rng.normal(0, 1.0, size=(len(ids), batches))
                acc = np.round(128 / (1 + np.exp(-logit))) / 128
                _write_columns(st, {
                    "space": ["nb201"] * n, "arch_id": np.repeat(ids, batches).tolist(), "estimator": ["os_acc"] * n,
                    "config_hash": [hashes[ens]] * n, "epoch": [epoch] * n, "seed": [20 + 1000 * s] * n,
                    "batch": np.tile(np.arange(batches), len(ids)).tolist(), "value": acc.ravel().tolist(),
                    "status": ["ok"] * n, "detail": [None] * n, "elapsed_s": [0.01] * n, "run_id": [None] * n,
                })  # fmt: skip
        # ---- tables of other variance analyses (forgetting, gradsim, ...): fill them here ----
    rows = len(groups) * seeds * n
    print(f"synthetic store ({len(ids):,} archs x {epochs} epochs x {seeds} seeds x {batches} batches + an "
          f"ensemble config at epoch {ckpts[-1]}: {rows:,} score rows): {time.perf_counter() - t:.1f} s")  # fmt: skip


def run(case: list[str], store: str) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "estbench", *case, "--space", "nb201", "--store", store, "-f", "csv"]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"{' '.join(case)}: {p.stderr.strip()}")
    return dt, p.stdout.count("\n") - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store", nargs="?", help="reuse (or build once into) this store file")
    ap.add_argument("--archs", type=int, default=15625, help="scored archs (the first N ids) [15625]")
    ap.add_argument("--epochs", type=int, default=10, help="checkpoint epochs 5, 10, ... [10]")
    ap.add_argument("--seeds", type=int, default=2, help="training seeds [2]")
    ap.add_argument("--batches", type=int, default=4, help="validation batches per score [4]")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or str(Path(tmp) / "bench_variance.duckdb")
        if not Path(store).exists():
            build(store, args.archs, args.epochs, args.seeds, args.batches)
        worst = 0.0
        for case in CASES:
            dt, rows = run(case, store)
            worst = max(worst, dt / TARGET)
            print(f"{' '.join(case):58s} {dt:5.2f} s  {dt / TARGET:4.2f}x of {TARGET:g} s  ({rows} rows)")
        print(f"worst variance analysis: {worst:.2f}x of its target")


if __name__ == "__main__":
    main()
