"""Foundation speed targets (issue: structural scores < 30 s, criteria < 2 s).

1. Structural scores (params, flops, relu) for all 15,625 NB201 architectures through the
   real CLI in a fresh process and a fresh store (includes the fvcore cost tables).
2. All criteria for 20 estimators x 6,466 deiso points: 3 structural estimators plus 17
   synthetic ones (truth + noise) written to the same store, timed through `evaluate`.

Prints the measured seconds and their ratio to the target. Needs the NB201 truth table
(looked up like the CLI does)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from estbench.analysis.evaluate import evaluate
from estbench.store import ScoreKey, ScoreRow, Store


def run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "estbench", *cmd], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "bench.duckdb")
        t_truth = run(["truth", "load", "--space", "nb201", "--store", store])
        t_score = run(["score", "--space", "nb201", "-e", "params", "-e", "flops", "-e", "relu", "--store", store])
        print(f"truth load (15,625 archs x 11 metrics):            {t_truth:6.2f} s")
        print(
            f"structural scores, 3 estimators x 15,625 archs:      {t_score:6.2f} s  (target 30 s: {t_score / 30:.2f} of budget)"
        )

        with Store(store) as st:
            _, rows = st.query(
                "SELECT arch_id, value FROM truth WHERE space = 'nb201' AND metric = 'cifar10-test' ORDER BY arch_id"
            )
            ids = np.array([r[0] for r in rows])
            y = np.array([r[1] for r in rows])
            rng = np.random.default_rng(0)
            for k in range(17):
                name = f"synthetic_{k:02d}"
                st.put_estimator(name, "zeroshot", True, "benchmark noise")
                s = y + rng.normal(scale=1 + k, size=len(y))
                key = ScoreKey("nb201", name, "bench")
                st.upsert_scores([ScoreRow.of(key, int(a), 0, float(v), 0.0, "bench") for a, v in zip(ids, s)])
        with Store(store, read_only=True) as st:
            evaluate(st, "nb201", "cifar10-test", "deiso")  # warm-up (imports, scipy)
            times = []
            for _ in range(3):
                t = time.perf_counter()
                groups = evaluate(st, "nb201", "cifar10-test", "deiso")
                times.append(time.perf_counter() - t)
        t_crit = min(times)
        n_points = int(groups[0].values["n"])
        print(
            f"criteria, {len(groups)} estimators x {n_points} deiso points (all K): {t_crit:6.2f} s  (target 2 s: {t_crit / 2:.2f} of budget)"
        )


if __name__ == "__main__":
    main()
