"""The zero-shot suite on an accelerator against the CPU: one short script for a GPU check.

No GPU has been lent to this project so far; this is the check to run when one is.
For N random NB201 architectures and one fixed batch of random images it scores the
9 measures on the CPU and twice on --device (TF32 off, deterministic algorithms on),
then prints per measure: whether the device repeats itself bit for bit, the median
relative difference device vs CPU, and Kendall tau-b between the two rankings. The
exit status is 1 when a measure fails, does not repeat, or ranks differently
(tau < --min-tau); grasp and plain are signed sums near zero, so their relative
differences can be large while their ranks still agree.

    python benchmarks/cuda_check.py --device cuda [--archs 20] [--batch 64]
    python benchmarks/cuda_check.py --device cpu      # the script's own sanity check
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from estbench.estimators.zeroshot import PAPER_MEASURES  # noqa: E402
from estbench.estimators.zeroshot.engine import run_measures  # noqa: E402
from estbench.spaces import get_space  # noqa: E402


def score(space, archs, x, y, device: str) -> tuple[list[dict], float]:
    start = time.perf_counter()
    out = []
    for arch in archs:
        values, _, errors = run_measures(
            lambda bn, a=arch: space.build(a, bn=bn), x, y, list(PAPER_MEASURES), seed=20, device=device
        )
        out.append({**values, **{n: f"failed: {e}" for n, e in errors.items()}})
    return out, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--archs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--min-tau", type=float, default=0.9)
    args = ap.parse_args()
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print(f"error: --device {args.device}: no CUDA device is available", file=sys.stderr)
            return 2
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    space = get_space("nb201")
    archs = random.Random(0).sample(space.cell.enumerate(), args.archs)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)

    cpu, t_cpu = score(space, archs, x, y, "cpu")
    dev, t_dev = score(space, archs, x, y, args.device)
    again, _ = score(space, archs, x, y, args.device)
    print(f"{args.archs} NB201 archs, batch {args.batch}: cpu {t_cpu:.1f} s, {args.device} {t_dev:.1f} s")
    print(f"{'measure':12s} {'repeats':>8s} {'med rel diff':>13s} {'tau(dev,cpu)':>13s}")
    bad = False
    for name in list(PAPER_MEASURES):
        failed = [v for v in dev + cpu if isinstance(v[name], str)]
        if failed:
            print(f"{name:12s} {failed[0][name]}")
            bad = True
            continue
        a = [d[name] for d in dev]
        b = [c[name] for c in cpu]
        repeats = all(p == q or (math.isnan(p) and math.isnan(q)) for p, q in zip(a, (r[name] for r in again)))
        pairs = [(p, q) for p, q in zip(a, b) if math.isfinite(p) and math.isfinite(q)]
        rel = statistics.median(abs(p - q) / max(abs(q), 1e-12) for p, q in pairs) if pairs else math.nan
        tau = kendalltau([p for p, _ in pairs], [q for _, q in pairs]).statistic if len(pairs) > 2 else math.nan
        bad |= not repeats or not tau >= args.min_tau
        print(f"{name:12s} {str(repeats):>8s} {rel:13.2e} {tau:13.3f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
