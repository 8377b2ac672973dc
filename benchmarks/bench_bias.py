"""Speed of every analysis command (issue 10): each over 15,625 NB201 archs x 20
estimators under 5 s, and `criteria --ci 95 --resamples 1000` for 20 estimators x 6,466
deiso points under 30 s.

Builds a synthetic NB201 store with tests/bias_support.make_store (every arch; truth
cifar10/cifar100/imagenet16-test; params/flops; 20 zero-shot-like estimators on every
arch, one of them on class representatives only; ~10 s), or reuses the store at the
path given, then runs each command through the real CLI in a fresh process, one after
the other (wall time including Python start-up, ~0.6 s of it), and prints the seconds
and their ratio to the target. Run it on an idle machine.

    .venv/bin/python benchmarks/bench_bias.py [STORE]"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET, TARGET_CI = 5.0, 30.0
CASES = [
    ["criteria"],
    ["report"],
    ["criteria", "--protocol", "iso"],
    ["bias", "complexity"],
    ["bias", "complexity", "--protocol", "iso", "--by", "params"],
    ["bias", "op"],
    ["bias", "op", "--protocol", "iso"],
    ["bias", "op", "--by", "params", "--show", "hist"],
    ["bias", "arch"],
    ["bias", "agreement"],
    ["bias", "agreement", "--protocol", "iso"],
    ["bias", "pareto"],
    ["bias", "pareto", "--show", "fronts"],
    ["bias", "compare", "-e", "z00", "-e", "z01"],
]
CI_CASE = ["criteria", "--ci", "95", "--resamples", "1000"]


def build(path: str) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from bias_support import make_store

    est = {f"z{i:02d}": ("os_loss" if i % 4 == 3 else "synflow", 0.3 + 0.1 * i) for i in range(19)}
    est["snip"] = ("snip", 0.5)
    t = time.perf_counter()
    make_store(path, "nb201", est, metrics=("cifar10-test", "cifar100-test", "imagenet16-test"),
               representatives_only=("snip",))  # fmt: skip
    print(f"synthetic store (15,625 archs, 20 estimators + params/flops): {time.perf_counter() - t:.1f} s")


def run(case: list[str], store: str) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "estbench", *case, "--space", "nb201", "--store", store, "-f", "csv"]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"{' '.join(case)}: {p.stderr.strip()}")
    return dt, p.stdout.count("\n") - 1


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = sys.argv[1] if len(sys.argv) > 1 else str(Path(tmp) / "bench_bias.duckdb")
        if not Path(store).exists():
            build(store)
        worst = 0.0
        for case in CASES:
            dt, rows = run(case, store)
            worst = max(worst, dt / TARGET)
            print(f"{' '.join(case):58s} {dt:5.2f} s  {dt / TARGET:4.2f}x of {TARGET:g} s  ({rows} rows)")
        dt, rows = run(CI_CASE, store)
        print(f"{' '.join(CI_CASE):58s} {dt:5.2f} s  {dt / TARGET_CI:4.2f}x of {TARGET_CI:g} s  ({rows} rows)")
        print(f"worst analysis: {worst:.2f}x of its target; --ci: {dt / TARGET_CI:.2f}x")


if __name__ == "__main__":
    main()
