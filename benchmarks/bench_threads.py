"""Default CPU threads on a loaded machine (issue 9): with one other CPU-bound process
running, `estbench train` and a zero-shot `estbench score` must take at most 2.5x their
idle-machine time. Before the thread policy, torch's default (one thread per core)
made one cpu-small epoch 880 s instead of 33 s and 20 zero-shot archs 154 s instead of
a few seconds on 2 cores.

Runs, each a fresh `estbench` process with the *default* threads (OMP_NUM_THREADS and
ESTBENCH_THREADS removed from its environment), in this order: a warm-up (decodes
CIFAR-10 into the cache, untimed), then per repeat: idle, loaded (``--busy`` busy-loop
python processes started first), for

- train: `estbench train --space nb201 --preset cpu-small --epochs 1` (313 steps of 64
  on the preset's 20,000 images; ``--train-images N`` shrinks it),
- score: `estbench score --space nb201 --zse all --archs 0:20 --batch-size 128
  --batches 1` (the paper's batch size, one batch per arch; ``--batches 5`` is the
  paper's count).

Prints both times, the thread counts the runs recorded (runs.threads) and the ratio.
Run it on an otherwise idle machine: "idle" means only this benchmark runs.

    .venv/bin/python benchmarks/bench_threads.py [--train-images N] [--archs 0:20] [--busy 1] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ESTBENCH = [sys.executable, "-m", "estbench"]
TARGET = 2.5


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ESTBENCH_THREADS", "MKL_NUM_THREADS")}
    env.setdefault("ESTBENCH_DATA", str(ROOT.parent / "shared" / "data"))
    return env


def timed_run(args: list[str], store: Path) -> tuple[float, int | None]:
    """(wall seconds, threads recorded in the newest run row) of one estbench command."""
    t0 = time.perf_counter()
    done = subprocess.run([*ESTBENCH, *args, "--store", str(store)], env=child_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"estbench {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        row = con.execute("SELECT threads FROM runs WHERE threads IS NOT NULL ORDER BY started_at DESC LIMIT 1")
        threads = (row.fetchone() or [None])[0]
    return seconds, threads


class Busy:
    """``n`` CPU-bound python processes for the duration of a ``with`` block."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Busy:
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        time.sleep(1.0)  # running, not starting
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-images", type=int, default=None, help="shrink the epoch [preset: 20,000 images]")
    ap.add_argument("--archs", default="0:20", help="zero-shot architectures [0:20]")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--batches", type=int, default=1)
    ap.add_argument("--busy", type=int, default=1, help="CPU-bound processes of the loaded case [1]")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    shrink = ["--train-images", str(args.train_images)] if args.train_images else []
    train = ["train", "--space", "nb201", "--preset", "cpu-small", "--epochs", "1", *shrink]
    score = ["score", "--space", "nb201", "--zse", "all", "--archs", args.archs]
    score += ["--batch-size", str(args.batch_size), "--batches", str(args.batches)]
    print(f"cores allowed: {len(os.sched_getaffinity(0))}, load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        timed_run(["score", "--space", "nb201", "--zse", "snip", "--archs", "0:1", "--batches", "1"], tmp_path / "w")
        results: dict[tuple[str, str], list[tuple[float, int | None]]] = {}
        for rep in range(args.repeats):
            for case in ("idle", "loaded"):
                for name, cmd in (("train", train), ("score", score)):
                    store = tmp_path / f"{name}-{case}-{rep}.duckdb"
                    runs = ["--run", "bench", "--runs-dir", str(tmp_path / f"runs-{case}-{rep}")]
                    extra = runs if name == "train" else []
                    if case == "loaded":
                        with Busy(args.busy):
                            results.setdefault((name, case), []).append(timed_run(cmd + extra, store))
                    else:
                        results.setdefault((name, case), []).append(timed_run(cmd + extra, store))
    what = {"train": " ".join(train), "score": " ".join(score)}
    ok = True
    for name in ("train", "score"):
        idle = min(s for s, _ in results[(name, "idle")])
        loaded = min(s for s, _ in results[(name, "loaded")])
        ti = sorted({t for _, t in results[(name, "idle")]}, key=str)
        tl = sorted({t for _, t in results[(name, "loaded")]}, key=str)
        ratio = loaded / idle
        ok &= ratio <= TARGET
        print(
            f"{name}: estbench {what[name]}\n  idle {idle:.1f}s (threads {ti}), with {args.busy} busy process(es) "
            f"{loaded:.1f}s (threads {tl}): ratio {ratio:.2f} (target <= {TARGET}) {'ok' if ratio <= TARGET else 'MISSED'}"
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
