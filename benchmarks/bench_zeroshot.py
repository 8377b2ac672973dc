"""Cost of the zero-shot suite relative to one plain CE forward + backward.

On one NB201 architecture and batches of random 32x32 images (the paper's batch
128, then 64), times (median of --repeats runs after a warm-up):

- plain: one CE forward + backward on an already built network;
- suite: the paper's 9 measures through ``engine.run_measures`` (its network build
  included, as in real scoring);
- suite without grasp;
- reference: the per-measure pattern of the reference code (build once, then a deep
  copy and a separate pass per measure; the textbook implementations of
  tests/zeroshot_refs.py);
- with --newer: every registered measure (the paper's 9 and the newer proxies of
  issue 15) through ``engine.run_architecture`` on two batches (zico needs two),
  per batch; the same without ntk_cond and vkdnw (whose cost is B backward passes /
  C backward passes: see docs/reproduction.md); and each newer proxy alone.

Cases are interleaved repeat by repeat, so machine load drifts hit every case alike.
Targets: suite <= 4x plain, suite without grasp <= 2x plain, all measures <= 6x plain
(issue 15). ``--sample N`` adds the suite/plain ratios over N random NB201
architectures (the fixed one could be lucky).

    .venv/bin/python benchmarks/bench_zeroshot.py [--repeats 5] [--device cpu] [--batch 128 --batch 64] [--newer]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from estbench.estimators import ESTIMATORS  # noqa: E402
from estbench.estimators.zeroshot import measure_names  # noqa: E402
from estbench.estimators.zeroshot.engine import run_architecture, run_measures  # noqa: E402
from estbench.spaces import get_space  # noqa: E402
from tests.zeroshot_refs import REFERENCE  # noqa: E402

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, action="append", help="batch size (repeatable; default 128 and 64)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--no-reference", action="store_true", help="skip the slow per-measure reference pattern")
    ap.add_argument("--sample", type=int, default=0, help="also measure N random architectures (seed 0)")
    ap.add_argument("--newer", action="store_true", help="also every registered measure, and each newer proxy alone")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    space = get_space("nb201")
    print(f"device={device} threads={torch.get_num_threads()} repeats={args.repeats}")
    for batch in args.batch or [128, 64]:
        print(f"\n== batch {batch}, arch {ARCH}")
        bench_arch(space, space.parse(ARCH), batch, device, args.repeats, reference=not args.no_reference)
        if args.newer:
            bench_newer(space, space.parse(ARCH), batch, device, args.repeats)
        if args.sample:
            rng = random.Random(0)
            archs = rng.sample(space.cell.enumerate(), args.sample)
            ratios = [
                bench_arch(space, arch, batch, device, max(3, args.repeats // 2), reference=False, quiet=True)
                for arch in archs
            ]
            full = sorted(r[0] for r in ratios)
            lean = sorted(r[1] for r in ratios)
            print(
                f"  {args.sample} random archs: suite/plain median {statistics.median(full):.2f} "
                f"(min {full[0]:.2f}, max {full[-1]:.2f}); without grasp median {statistics.median(lean):.2f} "
                f"(min {lean[0]:.2f}, max {lean[-1]:.2f})"
            )


def bench_arch(space, arch, batch: int, device: torch.device, repeats: int, *, reference: bool, quiet: bool = False):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    build = lambda bn: space.build(arch, bn=bn)  # noqa: E731
    all_names = list(REFERENCE)  # the paper's nine
    no_grasp = [n for n in all_names if n != "grasp"]

    torch.manual_seed(0)
    net = build(True).to(device).train()

    def plain() -> None:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()

    stages: dict[str, list[float]] = defaultdict(list)

    def suite(names: list[str], record: bool = False):
        def run() -> None:
            values, timings, errors = run_measures(build, x, y, names, seed=0, device=device)
            assert not errors, errors
            if record:
                for k, v in timings.items():
                    stages[k].append(v)

        return run

    def reference_pattern() -> None:
        torch.manual_seed(0)
        base = build(True).to(device)
        for name in all_names:
            REFERENCE[name](base, x, y)

    cases = {
        "plain CE fwd+bwd": plain,
        "suite (9 measures)": suite(all_names, record=True),
        "suite without grasp": suite(no_grasp),
    }
    if reference and device.type == "cpu":
        cases["reference (copy + pass per measure)"] = reference_pattern
    runs: dict[str, list[float]] = {label: [] for label in cases}
    for fn in cases.values():
        fn()  # warm-up
    stages.clear()
    for _ in range(repeats):  # interleaved, so drifting machine load hits every case alike
        for label, fn in cases.items():
            runs[label].append(timed(fn, device))
    medians = {label: statistics.median(r) for label, r in runs.items()}
    base = medians["plain CE fwd+bwd"]
    full, lean = medians["suite (9 measures)"] / base, medians["suite without grasp"] / base
    if quiet:
        return full, lean
    for label, t in medians.items():
        print(f"  {label:38s} {t * 1e3:9.1f} ms  {t / base:5.2f}x plain")
    print("  suite stages (median ms):", {k: round(statistics.median(v) * 1e3, 1) for k, v in stages.items()})
    print(f"  ratio suite/plain               = {full:.2f}  (target <= 4)")
    print(f"  ratio suite-without-grasp/plain = {lean:.2f}  (target <= 2)")
    if "reference (copy + pass per measure)" in medians:
        print(f"  ratio reference/plain           = {medians['reference (copy + pass per measure)'] / base:.2f}")
    return full, lean


EXPENSIVE = ("ntk_cond", "vkdnw", "vkdnw_single")  # B / C backward passes each


def bench_newer(space, arch, batch: int, device: torch.device, repeats: int) -> None:
    """Every registered measure on two batches (run_architecture: one build, each batch's
    plan once; zico needs both), per batch, against one plain CE forward + backward."""
    gen = torch.Generator().manual_seed(1)
    batches = [
        (
            torch.randn(batch, 3, 32, 32, generator=gen).to(device),
            torch.randint(0, 10, (batch,), generator=gen).to(device),
        )
        for _ in range(2)
    ]
    build = lambda bn: space.build(arch, bn=bn)  # noqa: E731
    extras = {"thin_build": lambda: space.thin_network(arch)}
    every = measure_names(all_batches=False) + measure_names(all_batches=True)
    newer = [n for n in every if n not in REFERENCE]
    cheap = [n for n in every if n not in EXPENSIVE]
    torch.manual_seed(0)
    net = build(True).to(device).train()
    x, y = batches[0]

    def plain() -> None:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()

    def suite(names: list[str]):
        def run() -> None:
            needed = {n: 1 if ESTIMATORS.meta(n)["data_free"] else 2 for n in names}  # as runs.zeroshot
            per, whole = run_architecture(build, batches, needed, seed=0, device=device, extras=extras)
            errors = {k: v for _, _, e in per for k, v in e.items()} | whole[2]
            assert not errors, errors

        return run

    cases = {"plain CE fwd+bwd (1 batch)": plain, "all measures (2 batches)": suite(every)}
    cases[f"all but {', '.join(EXPENSIVE)} (2 batches)"] = suite(cheap)
    for n in newer:
        cases[f"{n} alone (2 batches)"] = suite([n])
    runs: dict[str, list[float]] = {label: [] for label in cases}
    for fn in cases.values():
        fn()  # warm-up
    for _ in range(max(1, repeats // 2)):
        for label, fn in cases.items():
            runs[label].append(timed(fn, device))
    medians = {label: statistics.median(r) for label, r in runs.items()}
    base = medians["plain CE fwd+bwd (1 batch)"]
    print(f"  -- every registered measure ({len(every)}), per batch of {batch}:")
    for label, t in medians.items():
        per_batch = t if label.startswith("plain") else t / 2
        print(f"  {label:46s} {per_batch * 1e3:9.1f} ms/batch  {per_batch / base:6.2f}x plain")
    full = medians["all measures (2 batches)"] / 2 / base
    lean = medians[f"all but {', '.join(EXPENSIVE)} (2 batches)"] / 2 / base
    print(f"  ratio all-measures/plain                 = {full:.2f}  (target <= 6)")
    print(f"  ratio all-but-ntk-and-vkdnw/plain        = {lean:.2f}")


if __name__ == "__main__":
    main()
