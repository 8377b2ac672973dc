"""Cost of the forgetting probe (issue 11, item 3): one cpu-small NB201 training epoch
with and without `--probe-forgetting 50`. Target: the probe adds at most 10%.

Both cases run in this process through the trainer itself (``train_supernet``, the
preset's 20,000 images = 313 steps of 64, ``--epochs 1``), interleaved (the order
alternates per repeat, so drift of the machine hits both), on ``--threads`` torch
threads (default 1, as a training run on a loaded 2-core machine gets). The time is
the epoch's own (``EpochStats.seconds``: its steps and, with the probe, its 2N probe
forward passes; model build, data decode and the checkpoint write are outside). Also
printed: the seconds spent inside the probe (timed around each call in the probed
run), and the bit-identity of the two runs' losses.

Cost model: a probe is two no-grad forwards of the probe batch (one right after its
step, one after the epoch) against a training step's forward + backward + SGD step
of 64, so N=50 probes of 64 images cost about 100 forward passes, ~30-35 steps' worth
at a forward ~1/3 of a step, i.e. close to 10% of 313 steps: `--probe-batch 32` halves
it (accuracy steps of 1/32 instead of 1/64; BN then normalises over 32 images).

``--train-images N`` (a quick check) shrinks the epoch; the probes are capped at the
steps, so the measured ratio is not the full epoch's: the projection line scales the
in-run probe and step costs to 313 steps and 50 probes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_forgetting.py [--repeats 3] [--probe-batch 32]
    .venv/bin/python benchmarks/bench_forgetting.py --train-images 640 --repeats 1   # quick check
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 1.10
FULL_STEPS, FULL_PROBES = 313, 50


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probes", type=int, default=FULL_PROBES, help="--probe-forgetting N [50]")
    ap.add_argument("--probe-batch", type=int, default=32, help="--probe-batch [32]")
    ap.add_argument("--train-images", type=int, default=None, help="quick check: fewer images [preset: 20,000]")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=None, help="where CIFAR-10 is [the usual lookup, then ../shared/data]")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from estbench.data.cifar10 import load_cifar10
    from estbench.data.lookup import DataDir
    from estbench.estimators.oneshot import train as trainmod
    from estbench.spaces import get_space

    space = get_space("nb201")
    overrides = {"epochs": 1, "train_images": args.train_images}
    cfg = trainmod.preset_config(space, "cpu-small", **overrides)
    probe = trainmod.ForgettingProbe(args.probes, args.probe_batch)
    images = load_cifar10(DataDir(args.data_dir), "train")

    inside = [0.0]
    real = trainmod._probe_accuracy

    def timed_probe(*a, **kw):
        t0 = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            inside[0] += time.perf_counter() - t0

    trainmod._probe_accuracy = timed_probe
    times: dict[str, list[float]] = {"plain": [], "probe": []}
    probe_secs: list[float] = []
    losses: dict[str, set[float]] = {"plain": set(), "probe": set()}
    steps = 0
    print(
        f"cpu-small NB201, 1 epoch, {torch.get_num_threads()} thread(s), probe N={args.probes} batch "
        f"{args.probe_batch}, {args.repeats} repeat(s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats + 1):  # round 0 warms up both (allocator, oneDNN primitives)
            order = ("plain", "probe") if r % 2 else ("probe", "plain")
            for case in order:
                inside[0] = 0.0
                rows: list = []
                stats = trainmod.train_supernet(
                    cfg, space, images, Path(tmp) / f"{case}-{r}", probe=probe if case == "probe" else None,
                    on_probes=lambda e, got, rows=rows: rows.extend(got),
                )  # fmt: skip
                steps = stats[0].steps
                if r:
                    times[case].append(stats[0].seconds)
                    losses[case].add(stats[0].train_loss)
                    if case == "probe":
                        probe_secs.append(inside[0])
                print(
                    f"  {'warm-up' if not r else f'repeat {r}'} {case:5}: {stats[0].seconds:7.2f} s"
                    + (f" ({inside[0]:.2f} s in {len(rows)} probes)" if case == "probe" else "")
                )
    plain, probed, in_probe = (statistics.median(v) for v in (times["plain"], times["probe"], probe_secs))
    n = len(trainmod.probe_steps(args.probes, steps))
    ratio = probed / plain
    print(f"epoch: {steps} steps, {n} probes; median without {plain:.2f} s, with {probed:.2f} s: ratio {ratio:.3f}")
    step_cost = (probed - in_probe) / steps
    print(
        f"inside the probe {in_probe:.2f} s = {in_probe / (probed - in_probe):.1%} of that epoch's training "
        f"({1000 * in_probe / max(n, 1):.1f} ms per probe, {1000 * step_cost:.1f} ms per step)"
    )
    print(f"losses identical with and without the probe: {losses['plain'] == losses['probe']}")
    quick = steps != FULL_STEPS or args.probes != FULL_PROBES
    projected = 1 + FULL_PROBES * (in_probe / max(n, 1)) / (FULL_STEPS * step_cost)
    if quick:
        print(f"projected to {FULL_STEPS} steps and {FULL_PROBES} probes: ratio {projected:.3f}")
    judged = projected if quick else ratio
    ok = judged <= TARGET
    print(f"{'projected' if quick else 'measured'} ratio {judged:.3f} (target <= {TARGET}) {'ok' if ok else 'MISSED'}")
    sys.exit(0 if ok and losses["plain"] == losses["probe"] else 1)


if __name__ == "__main__":
    main()
