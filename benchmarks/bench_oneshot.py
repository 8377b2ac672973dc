"""Cost of the one-shot core on NB201.

(a) One training step (forward + backward + grad clip + SGD step) of a sampled
    architecture in the supernet vs the same step on the standalone network of that
    architecture, same batch; per architecture the median over --repeats (cases
    interleaved), then the median ratio. Target: <= 1.3x. The standalone network
    computes every edge, the supernet only the live ones, so archs with dead edges are
    cheaper in the supernet; the ratio over archs whose edges are all live is printed too.
(b) OS evaluation (BN batch statistics, no grad) of --archs deiso NB201 architectures on
    one batch, extrapolated to all 6,466 classes. Target: <= 10 minutes.

Network shape and batch default to the ``cpu-small`` preset; both networks use the
trainer's memory format (channels-last unless --contiguous).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_oneshot.py [--repeats 5] [--archs 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from estbench.estimators.oneshot.evaluate import os_scores  # noqa: E402
from estbench.estimators.oneshot.train import TrainConfig  # noqa: E402
from estbench.spaces import get_space  # noqa: E402
from estbench.spaces.cell.network import CellNetwork  # noqa: E402
from estbench.spaces.cell.presets import PRESETS  # noqa: E402
from estbench.spaces.cell.samplers import iso_representatives  # noqa: E402
from estbench.spaces.cell.supernet import CellSupernet  # noqa: E402


def step_time(model, forward, x, y, opt, clip: float) -> float:
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(forward(x), y).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return time.perf_counter() - t0


def sgd(model, cfg: TrainConfig):
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def bench_train_step(cell, cfg: TrainConfig, n_archs: int, repeats: int, fmt) -> None:
    torch.manual_seed(0)
    supernet = CellSupernet(cell, cfg.c, cfg.n, cfg.num_classes, cfg.bn_affine, cfg.dropout).to(memory_format=fmt)
    sopt = sgd(supernet, cfg)
    x = torch.randn(cfg.batch_size, 3, 32, 32).contiguous(memory_format=fmt)
    y = torch.randint(0, cfg.num_classes, (cfg.batch_size,))
    sampler = get_space(cell.name).make_sampler("uniform", np.random.default_rng(0))
    archs: list = []
    while len(archs) < n_archs:
        a = sampler.step()[0]
        if not cell.is_degenerate(a):
            archs.append(a)
    print(f"(a) train step, C={cfg.c} N={cfg.n} batch {cfg.batch_size}, {torch.get_num_threads()} thread(s)")
    print(f"    {'supernet s':>10} {'standalone s':>12} {'ratio':>6}  all-live  arch")
    ratios, live_ratios, super_times = [], [], []
    for arch in archs:
        alone = CellNetwork(cell, arch, cfg.c, cfg.n, cfg.num_classes).to(memory_format=fmt)
        aopt = sgd(alone, cfg)
        ts, ta = [], []
        for r in range(repeats + 1):  # the first round warms up both
            s = step_time(supernet, lambda v, a=arch: supernet(v, a), x, y, sopt, cfg.grad_clip)
            t = step_time(alone, alone, x, y, aopt, cfg.grad_clip)
            if r:
                ts.append(s), ta.append(t)
        ratio = statistics.median(ts) / statistics.median(ta)
        all_live = all(cell.live_edges(arch)[k] for k, op in enumerate(arch) if op != "none")
        ratios.append(ratio)
        super_times.append(statistics.median(ts))
        if all_live:
            live_ratios.append(ratio)
        print(
            f"    {statistics.median(ts):10.3f} {statistics.median(ta):12.3f} {ratio:6.2f}  {all_live!s:8}  {cell.to_str(arch)}"
        )
    print(f"    median ratio {statistics.median(ratios):.2f} (target <= 1.3)", end="")
    if live_ratios:
        print(f"; all-live archs {statistics.median(live_ratios):.2f} over {len(live_ratios)}", end="")
    step = statistics.mean(super_times)
    print(f"\n    mean supernet step {step:.3f} s")
    return step


def bench_eval(cell, cfg: TrainConfig, n_archs: int, eval_batch: int, fmt) -> None:
    torch.manual_seed(0)
    model = CellSupernet(cell, cfg.c, cfg.n, cfg.num_classes, cfg.bn_affine, cfg.dropout).to(memory_format=fmt)
    reps = iso_representatives(cell)
    pick = np.random.default_rng(0).choice(len(reps), n_archs, replace=False)
    archs = [reps[i] for i in pick]
    batch = [(torch.randn(eval_batch, 3, 32, 32), torch.randint(0, cfg.num_classes, (eval_batch,)))]
    list(os_scores(model, archs[:2], batch))  # warm-up
    t0 = time.perf_counter()
    rows = list(os_scores(model, archs, batch))
    wall = time.perf_counter() - t0
    fwd = sum(r[4] for r in rows)
    total = wall / n_archs * len(reps)
    print(
        f"(b) OS eval, C={cfg.c} N={cfg.n}, {n_archs} deiso archs x 1 batch of {eval_batch}: "
        f"{wall:.2f} s wall ({fwd:.2f} s in forwards), {wall / n_archs * 1000:.0f} ms/arch -> "
        f"{len(reps)} archs: {total / 60:.1f} min (target <= 10)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu-small", choices=sorted(PRESETS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-archs", type=int, default=6)
    ap.add_argument("--archs", type=int, default=30, help="deiso architectures for the OS eval timing")
    ap.add_argument("--eval-batch", type=int, nargs="+", default=[128, 64])
    ap.add_argument("--batch", type=int, default=None, help="training batch (default: the preset's)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--contiguous", action="store_true", help="NCHW-contiguous instead of channels-last")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig.from_dict({**PRESETS[args.preset], **({"batch_size": args.batch} if args.batch else {})})
    fmt = torch.contiguous_format if args.contiguous else torch.channels_last
    cell = get_space("nb201").cell
    if not args.skip_train:
        step = bench_train_step(cell, cfg, args.train_archs, args.repeats, fmt)
        steps = -(-(cfg.train_images or 40_000) // cfg.batch_size) * cfg.epochs * cfg.mc_samples
        print(f"    {args.preset}: {steps} steps x {step:.3f} s = {steps * step / 60:.0f} min of training")
    for eb in args.eval_batch:
        bench_eval(cell, cfg, args.archs, eb, fmt)


if __name__ == "__main__":
    main()
