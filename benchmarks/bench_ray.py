"""score --executor ray against local on this machine (issue 16).

40 NB201 architectures (``--archs 0:40``) with grad_norm, snip, relu_logdet and synflow
at batch 64 on noise, seed 20, scored twice into fresh stores: locally with one torch
thread, then by a local Ray runtime with 2 workers of 1 CPU (one thread) each, the
driver writing. Prints both wall times, the throughput ratio (target > 1.6x on 2 cores)
and Ray's start-up overhead (``ray.init`` plus one empty task round trip), and checks
that both stores hold the same rows.

    .venv/bin/python benchmarks/bench_ray.py [--archs 40] [--workers 2]

``--train``: `estbench train` of one run per seed (NB201 cpu-small on --train-images
real CIFAR-10 images, --epochs epochs) instead, through the CLI: --workers seeds one
after another with one thread, then the same seeds as Ray tasks of 1 CPU each (Ray's
start-up included, as a user sees it); prints both wall times, their ratio, and whether
the epoch losses and final weights are identical.

    .venv/bin/python benchmarks/bench_ray.py --train [--train-images 2560] [--epochs 2]
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
    ap.add_argument("--train", action="store_true", help="time train --executor ray instead of score")
    ap.add_argument("--train-images", type=int, default=2560)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    if args.train:
        return train(args)
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


def train(args) -> None:
    import os
    import subprocess

    from estbench.estimators.oneshot.checkpoint import checkpoint_path, load_checkpoint

    tmp = Path(tempfile.mkdtemp())
    seeds = [a for s in range(1, args.workers + 1) for a in ("--seed", str(s))]
    cmd = [sys.executable, "-m", "estbench", "train", "--space", "nb201", "--run", "b-s{seed}", *seeds,
           "--preset", "cpu-small", "--epochs", str(args.epochs), "--train-images", str(args.train_images)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    times = {}
    for name, extra in (("local", ["--threads", "1"]), ("ray", ["--executor", "ray", "--cpus-per-task", "1"])):
        start = time.perf_counter()
        subprocess.run([*cmd, *extra, "--store", str(tmp / f"{name}.duckdb"), "--runs-dir", str(tmp / name)],
                       env=env, check=True, capture_output=True)  # fmt: skip
        times[name] = time.perf_counter() - start

    def result(name):
        with Store(tmp / f"{name}.duckdb", read_only=True) as st:
            losses = st.query("SELECT run_name, epoch, train_loss FROM train_epochs ORDER BY ALL")[1]
        weights = [load_checkpoint(checkpoint_path(tmp / name / "nb201" / f"b-s{s}", args.epochs))["model"]
                   for s in range(1, args.workers + 1)]  # fmt: skip
        return losses, weights

    (la, wa), (lb, wb) = result("local"), result("ray")
    same = la == lb and all(a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a) for a, b in zip(wa, wb))
    print(f"train: {args.workers} NB201 cpu-small runs (seeds 1..{args.workers}), {args.epochs} epochs on "
          f"{args.train_images} images, one thread per process")  # fmt: skip
    print(f"  local, one seed after another: {times['local']:7.1f} s")
    print(f"  ray, {args.workers} tasks x 1 CPU:        {times['ray']:7.1f} s  (Ray start-up included)")
    print(f"  ratio local/ray wall time = {times['local'] / times['ray']:.2f}")
    print(f"  same epoch losses and final weights: {same}")


if __name__ == "__main__":
    main()
