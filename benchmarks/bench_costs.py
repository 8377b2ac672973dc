"""Per-unit costs of the paper's protocol, measured here, and what the whole protocol
costs on N devices (issue 16: the cost model of docs/scale.md).

For each space (nb201, nb101-1shot3, nb301; the NDS spaces are not built) it measures on
--device with --threads torch threads, on K architectures drawn from the space:

- zs: the paper's nine zero-shot measures on one architecture, --zs-batches batches of
  128 random images (the paper: 5 batches of 128), network built once
  (``engine.run_architecture``, what `score --zse paper` runs; data-free synflow /
  synflow_bn on the first batch only); seconds per architecture, from a run on 2
  batches (its wall time + the second batch's pass seconds per further batch);
- os: one-shot scoring of one architecture on one batch of 128 through a supernet of
  the space's `paper` preset (``os_scores``, BN batch statistics as `score --ose`);
  seconds per architecture-batch;
- step: one training step of that supernet at the preset's batch size (``train_supernet``
  on 4 steps' worth of real CIFAR-10 images, the first step left out); seconds per step.

Then the protocol from the paper's App. D: every architecture it evaluates (NB201 all
15,625; NB101 5,000; NB301 5,896), --zs-seeds zero-shot seeds, 3 training seeds x
1000 epochs of 40,000 training images per space, one-shot scoring at --checkpoints
checkpoints x --os-batches batches of 128 per architecture and seed. Device-hours per
part, and the wall time on N devices: scoring splits into tasks freely (divided by N
and --efficiency, the measured Ray efficiency: bench_ray's 1.81x on 2 workers = 0.9);
training fans out one task per run (9 runs), so its wall time is ceil(9 / N) runs.
The paper reports about 300 GPU-days (16 RTX 2080Ti) for all its training and evaluation.

    .venv/bin/python benchmarks/bench_costs.py [--device cpu|cuda] [--threads 1] [--archs 4]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from estbench.data.lookup import DataDir  # noqa: E402
from estbench.estimators import ESTIMATORS  # noqa: E402
from estbench.estimators.zeroshot import PAPER_MEASURES  # noqa: E402
from estbench.spaces import get_space  # noqa: E402
from estbench.store import Store  # noqa: E402

# the paper's App. D: architectures evaluated per space (training: 3 seeds x 1000 epochs)
PROTOCOL = {"nb201": 15625, "nb101-1shot3": 5000, "nb301": 5896}
SEEDS, EPOCHS, TRAIN_IMAGES, BATCH = 3, 1000, 40000, 128
WARMUP = True


def draw(space, k: int) -> list:
    from estbench.runs.selection import ensure_archs, select_archs

    with Store(":memory:") as st:
        ensure_archs(st, space, DataDir(None))
        ids = select_archs(st, space, f"sample:{k}@0")
        strs = st.arch_strings(space.name)
        return [space.parse(strs[i]) for i in ids]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def zs_cost(space, archs, batches: int, device: str) -> float:
    """Seconds per architecture for ``batches`` batches, from a run on 2: its wall time
    plus (batches - 2) x the second batch's pass seconds (the build, and the data-free
    measures, come once)."""
    from estbench.estimators.zeroshot.engine import run_architecture

    gen = torch.Generator().manual_seed(0)
    data = [(torch.randn(BATCH, 3, 32, 32, generator=gen), torch.randint(0, 10, (BATCH,), generator=gen))] * 2
    times = []
    for i, arch in enumerate([archs[0], *archs] if WARMUP else [None, *archs]):  # the first again: warm-up
        if arch is None:
            continue
        start = time.perf_counter()
        needed = {m: 1 if ESTIMATORS.meta(m)["data_free"] else 2 for m in PAPER_MEASURES}
        per_batch, _ = run_architecture(lambda bn, a=arch: space.build(a, bn=bn), data, needed, seed=20, device=device)
        sync(device)
        wall = time.perf_counter() - start
        second = sum(t for k, t in per_batch[1][1].items() if k != "build")
        if i:
            times.append(wall + (batches - 2) * second)
    return float(np.median(times))


def os_and_step_cost(space, archs, device: str) -> tuple[float, float, int]:
    from estbench.data.cifar10 import load_cifar10
    from estbench.estimators.oneshot.evaluate import os_scores
    from estbench.estimators.oneshot.train import build_supernet, preset_config, train_supernet

    images = load_cifar10(DataDir(None), "train")
    probe = preset_config(space, "paper", device=device)
    cfg = preset_config(space, "paper", device=device, epochs=1, train_images=4 * probe.batch_size)
    model = build_supernet(cfg, space)
    trained_as = space.trained_as(cfg.sampler)
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randn(BATCH, 3, 32, 32, generator=gen), torch.randint(0, 10, (BATCH,), generator=gen))
    times = []
    for i, arch in enumerate([archs[0], *archs] if WARMUP else [None, *archs]):
        if arch is None:
            continue
        start = time.perf_counter()
        list(os_scores(model, [trained_as(arch)], [batch]))
        sync(device)
        if i:
            times.append(time.perf_counter() - start)
    steps: list[float] = []

    def on_step(epoch: int, step: int, loss: float) -> None:
        sync(device)
        steps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        train_supernet(cfg, space, images, Path(tmp), on_step=on_step)
    step = float(np.median(np.diff(steps))) if len(steps) > 2 else math.nan
    return float(np.median(times)), step, cfg.batch_size


def hours(seconds: float) -> str:
    return f"{seconds / 3600:10.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--archs", type=int, default=4, help="architectures measured per space (median)")
    ap.add_argument("--spaces", default=",".join(PROTOCOL))
    ap.add_argument("--zs-batches", type=int, default=5)
    ap.add_argument("--zs-seeds", type=int, default=1)
    ap.add_argument("--checkpoints", type=int, default=5, help="checkpoints scored per run (paper tables: 200..1000)")
    ap.add_argument("--os-batches", type=int, default=5, help="validation batches of 128 per one-shot score")
    ap.add_argument("--efficiency", type=float, default=0.9)
    ap.add_argument("--devices", default="1,4,16,64")
    ap.add_argument("--no-warmup", action="store_true", help="time the first architecture too (slow CPU spaces)")
    args = ap.parse_args()
    global WARMUP
    WARMUP = not args.no_warmup
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print(f"error: --device {args.device}: no CUDA device is available", file=sys.stderr)
            sys.exit(2)
        torch.backends.cuda.matmul.allow_tf32 = False  # estbench's default
        torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(args.threads)
    spaces = [s for s in args.spaces.split(",") if s]
    warm = "after a warm-up architecture" if WARMUP else "no warm-up"
    print(f"device {args.device}, {args.threads} thread(s), {args.archs} archs per space (medians, {warm})")
    print(f"{'space':14s} {'zs s/arch':>10s} {'os s/arch-batch':>16s} {'train s/step':>13s} {'batch':>6s}")
    units = {}
    for name in spaces:
        space = get_space(name)
        archs = draw(space, args.archs)
        zs = zs_cost(space, archs, args.zs_batches, args.device)
        os_, step, bs = os_and_step_cost(space, archs, args.device)
        units[name] = (zs, os_, step, bs)
        print(f"{name:14s} {zs:10.3f} {os_:16.4f} {step:13.3f} {bs:6d}")
    print()
    print(f"protocol (App. D): {SEEDS} seeds x {EPOCHS} epochs x {TRAIN_IMAGES} images per space; zs {args.zs_seeds} "
          f"seed(s) x {args.zs_batches} batches; os {args.checkpoints} checkpoints x {args.os_batches} batches "
          f"x {SEEDS} seeds")  # fmt: skip
    print(f"{'space':14s} {'archs':>6s} {'zs h':>10s} {'os h':>10s} {'train h':>10s} {'h per run':>10s}")
    total = {"zs": 0.0, "os": 0.0, "train": 0.0}
    run_times: list[float] = []
    for name, (zs, os_, step, bs) in units.items():
        n = PROTOCOL[name]
        t_zs = n * args.zs_seeds * zs
        t_os = n * SEEDS * args.checkpoints * args.os_batches * os_
        per_run = EPOCHS * math.ceil(TRAIN_IMAGES / bs) * step
        t_train = SEEDS * per_run
        total["zs"] += t_zs
        total["os"] += t_os
        total["train"] += t_train
        run_times += [per_run] * SEEDS
        print(f"{name:14s} {n:6d} {hours(t_zs)} {hours(t_os)} {hours(t_train)} {hours(per_run)}")
    device_h = sum(total.values()) / 3600
    print(f"{'all':14s} {'':6s} {hours(total['zs'])} {hours(total['os'])} {hours(total['train'])}"
          f"   = {device_h:.0f} device-hours ({device_h / 24:.1f} device-days)")  # fmt: skip
    print(f"\nwall time on N devices (scoring / {args.efficiency:g} efficiency; training: {len(run_times)} runs, "
          "one device each, longest first onto the least loaded device):")  # fmt: skip
    for n in [int(d) for d in args.devices.split(",")]:
        scoring = (total["zs"] + total["os"]) / (n * args.efficiency)
        loads = [0.0] * n
        for t in sorted(run_times, reverse=True):
            loads[loads.index(min(loads))] += t
        training = max(loads)
        print(f"  N={n:3d}: scoring {scoring / 3600:8.1f} h + training {training / 3600:8.1f} h "
              f"= {(scoring + training) / 86400:6.1f} days")  # fmt: skip


if __name__ == "__main__":
    main()
