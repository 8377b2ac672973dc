"""Cost of the gradient-similarity probe (`score --ose RUN --gradsim P`) and of its
analysis (`variance gradsim`).

(a) Seconds per pair: two CE forward+backward passes (autograd.grad over the supernet's
    parameters) and the per-layer cosines, on one batch, for --pairs uniformly drawn
    pairs; median and mean over the pairs after one warm-up pair. Supernets built in
    memory with random weights (the cost does not depend on training): the toy space at
    its default shape and NB201 at the cpu-small preset's shape (C=8, N=3), channels-last
    as the trainer writes them, batch --batch-size of random images. Nothing touches a
    store.
(b) The analysis: a synthetic in-memory store with --analysis-pairs pairs x the NB201
    N=5 supernet's 19 layers x --epochs checkpoints (a quarter NULL), timed through
    `gradsim_rows` + `summary` and + `trend`. Target: under 5 s.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gradsim.py [--pairs 20] [--batch-size 128]
        [--analysis-pairs 1000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from estbench.analysis.gradsim import summary, trend  # noqa: E402
from estbench.estimators.oneshot.gradsim import cell_layer_names, gradient_similarity  # noqa: E402
from estbench.spaces import get_space  # noqa: E402
from estbench.store.gradsim import GradsimRow  # noqa: E402
from estbench.store.store import Store  # noqa: E402


def seconds_per_pair(space_name: str, shape: dict, n_pairs: int, batch_size: int) -> tuple[float, float]:
    space = get_space(space_name)
    torch.manual_seed(0)
    model = space.supernet(**shape).to(memory_format=torch.channels_last)
    x = torch.randn(batch_size, 3, 32, 32)
    y = torch.randint(0, model.num_classes, (batch_size,))
    rng = np.random.default_rng(0)
    pairs = [(space.sample(rng), space.sample(rng)) for _ in range(n_pairs + 1)]
    times = [secs for _, _, secs in gradient_similarity(model, pairs, (x, y))][1:]  # the first one warms up
    return statistics.median(times), statistics.fmean(times)


def analysis_seconds(n_pairs: int, n_epochs: int) -> tuple[int, float, float]:
    rng = np.random.default_rng(0)
    layers = ["stem", *cell_layer_names(5), "classifier"]
    st = Store(":memory:")
    run_id = st.start_run("score", "nb201", "bench", {})
    rows = []
    for e in range(1, n_epochs + 1):
        cos = np.clip(rng.normal(0.3, 0.3, (n_pairs, len(layers))), -1, 1)
        null = rng.random(cos.shape) < 0.25
        for p in range(n_pairs):
            for j, layer in enumerate(layers):
                rows.append(
                    GradsimRow("nb201", "bench", 5 * e, "h", p, p, p + 1, layer, None if null[p, j] else cos[p, j])
                )
    st.put_gradsim(run_id, rows)
    t0 = time.perf_counter()
    summary(st.gradsim_rows("nb201"))
    t1 = time.perf_counter()
    trend(st.gradsim_rows("nb201"))
    return len(rows), t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--analysis-pairs", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}")
    for name, shape in [("toy", {}), ("nb201", {"c": 8, "n": 3})]:
        med, mean = seconds_per_pair(name, shape, args.pairs, args.batch_size)
        print(
            f"(a) {name} {shape or 'default shape'}: {med:.4f} s/pair median, {mean:.4f} mean over {args.pairs} pairs"
        )
    n, t_summary, t_trend = analysis_seconds(args.analysis_pairs, args.epochs)
    verdict = "ok" if max(t_summary, t_trend) < 5 else "OVER"
    print(
        f"(b) analysis over {n:,} rows ({args.analysis_pairs} pairs x 19 layers x {args.epochs} epochs): "
        f"summary {t_summary:.2f} s, trend {t_trend:.2f} s (target < 5 s: {verdict})"
    )


if __name__ == "__main__":
    main()
