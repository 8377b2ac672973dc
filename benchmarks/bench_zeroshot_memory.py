"""Peak-memory check of zero-shot scoring (issue: memory stays flat over 1,000 archs).

Scores the first N NB201 architectures with the whole suite through
``runs.score`` into a temporary store (small batches keep it to minutes; memory
growth per architecture is what matters) and prints the process RSS after 100 and
after N architectures, and their ratio.

    .venv/bin/python benchmarks/bench_zeroshot_memory.py [--archs 1000] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from estbench.estimators.zeroshot import measure_names
from estbench.runs import ScoreRequest, ZeroShotConfig, score
from estbench.store import Store


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    names = measure_names()
    marks: dict[int, float] = {}
    done = {"n": 0}

    def progress(_name: str, advance: int, _total: int) -> None:
        done["n"] += advance
        for mark in (100, args.archs):
            if done["n"] >= mark and mark not in marks:
                marks[mark] = rss_mib()
                print(f"RSS after {mark:5d} archs: {marks[mark]:8.1f} MiB", flush=True)

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "mem.duckdb") as st:
        cfg = ZeroShotConfig(batch_size=args.batch_size, n_batches=1, chunk_size=20)
        request = ScoreRequest("nb201", tuple(names), archs=f"0:{args.archs}", zero_shot=cfg, data_dir=args.data_dir)
        print(f"RSS before scoring:        {rss_mib():8.1f} MiB ({len(names)} measures, batch {args.batch_size})")
        score(st, request, progress)
    if 100 in marks and args.archs in marks:
        print(f"ratio RSS({args.archs}) / RSS(100) = {marks[args.archs] / marks[100]:.3f}")


if __name__ == "__main__":
    main()
