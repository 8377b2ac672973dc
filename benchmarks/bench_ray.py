"""score --executor ray against local on this machine (issue 16).

40 NB201 architectures (``--archs 0:40``) with grad_norm, snip, relu_logdet and synflow
at batch 64 on noise, seed 20, scored twice into fresh stores: locally with one torch
thread, then by a local Ray runtime with 2 workers of 1 CPU (one thread) each, the
driver writing. Prints both wall times, the throughput ratio (target > 1.6x on 2 cores)
and Ray's start-up overhead (``ray.init`` plus one empty task round trip), and checks
that both stores hold the same rows.

    .venv/bin/python benchmarks/bench_ray.py [--archs 40] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from estbench.runs import ScoreRequest, ZeroShotConfig, score  # noqa: E402
from estbench.runs.executors import RayExecutor  # noqa: E402
from estbench.store import Store  # noqa: E402

MEASURES = ("grad_norm", "snip", "relu_logdet", "synflow")


def rows(path: Path) -> list:
    with Store(path, read_only=True) as st:
        return st.query("SELECT estimator, arch_id, seed, batch, value, status FROM scores ORDER BY ALL")[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    import ray
    import torch

    torch.set_num_threads(1)
    cfg = ZeroShotConfig(batch_size=64, n_batches=1, input="noise-gaussian")
    request = ScoreRequest(space="nb201", estimators=MEASURES, archs=f"0:{args.archs}", zero_shot=cfg, threads=1)
    tmp = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    with Store(tmp / "local.duckdb") as st:
        score(st, request)
    local = time.perf_counter() - start

    start = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    ray.get(ray.remote(lambda: None).remote())
    overhead = time.perf_counter() - start
    start = time.perf_counter()
    with Store(tmp / "ray.duckdb") as st:
        score(st, ScoreRequest(**{**request.__dict__, "executor": RayExecutor(archs_per_task=2)}))
    fanned = time.perf_counter() - start
    ray.shutdown()
    same = rows(tmp / "local.duckdb") == rows(tmp / "ray.duckdb")
    print(f"{args.archs} NB201 archs, {', '.join(MEASURES)} at batch 64 (noise), one thread per process")
    print(f"  local, 1 process:          {local:7.1f} s  ({args.archs / local:.2f} archs/s)")
    print(f"  ray, {args.workers} workers x 1 CPU:   {fanned:7.1f} s  ({args.archs / fanned:.2f} archs/s)")
    print(f"  ratio ray/local throughput = {local / fanned:.2f}  (target > 1.6)")
    print(f"  ray start-up (init + one empty task) = {overhead:.1f} s")
    print(f"  same rows in both stores: {same}")


if __name__ == "__main__":
    main()
