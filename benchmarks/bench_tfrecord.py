"""Speed of the NAS-Bench-101 tfrecord reader (issue 13): 100,000 records parsed into
NB101Records in under 10 s.

Writes a fixture in the official framing into a temporary directory: 100,000 training
runs laid out as nasbench_only108.tfrecord is (3 repeats of 108 epochs per architecture,
so 33,334 architectures), each payload a real-sized row (7-vertex spec, a ModelMetrics
with evaluation data at epochs 0 / 54 / 108, parameters and total time; the official
file averages 392 bytes a record: 499 MB / 1,270,872 records). Then times
``read_official`` (both CRCs checked, JSON + protobuf decoded, repeats averaged) and
prints the seconds, the ratio to the target and the time projected for the real file.

    .venv/bin/python benchmarks/bench_tfrecord.py [--records N] [--full]

``--full`` lays the runs out as nasbench_full.tfrecord (4/12/36/108 epochs x 3 repeats)."""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from pathlib import Path

from estbench.spaces.nb101.tfrecord import EvaluationData, ModelMetrics, Row, encode_row, write_records
from estbench.spaces.nb101.truth import OFFICIAL_OPS, read_official

TARGET = 10.0
REAL_RECORDS = 423_624 * 3


def _spec(rnd: random.Random) -> tuple[str, str]:
    """A 7-vertex upper-triangular matrix with <= 9 edges (a chain plus extra edges)."""
    m = [[0] * 7 for _ in range(7)]
    for v in range(6):
        m[v][v + 1] = 1
    pairs = [(i, j) for i in range(7) for j in range(i + 2, 7)]
    for i, j in rnd.sample(pairs, rnd.randint(0, 3)):
        m[i][j] = 1
    ops = ["input", *(rnd.choice(OFFICIAL_OPS) for _ in range(5)), "output"]
    return "".join(str(x) for r in m for x in r), ",".join(ops)


def _metrics(rnd: random.Random, epochs: int) -> ModelMetrics:
    evals = []
    for e in (0.0, epochs / 2, float(epochs)):
        acc = 0.1 + 0.85 * e / epochs * rnd.random()
        evals.append(EvaluationData(e, 20.0 * e * rnd.random(), acc, acc * 0.98, acc * 0.97))
    return ModelMetrics(evals, rnd.randint(200_000, 40_000_000), 3000.0 * rnd.random())


def write_fixture(path: Path, n: int, full: bool, seed: int = 0) -> int:
    rnd = random.Random(seed)
    budgets = (4, 12, 36, 108) if full else (108,)

    def rows():
        k = a = 0
        while k < n:
            module_hash = hashlib.md5(str(a).encode()).hexdigest()
            adjacency, operations = _spec(rnd)
            a += 1
            for epochs in budgets:
                for _ in range(3):
                    if k == n:
                        return
                    yield encode_row(Row(module_hash, epochs, adjacency, operations, _metrics(rnd, epochs)))
                    k += 1

    return write_records(path, rows())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--full", action="store_true", help="the nasbench_full layout (4 budgets x 3 repeats)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fixture.tfrecord"
        t = time.perf_counter()
        write_fixture(path, args.records, args.full)
        size = path.stat().st_size
        print(
            f"fixture: {args.records:,} records, {size / 1e6:.1f} MB ({size / args.records:.0f} B/record; "
            f"official 392), written in {time.perf_counter() - t:.1f} s"
        )
        t = time.perf_counter()
        n = sum(1 for _ in read_official(path))
        dt = time.perf_counter() - t
    per = dt / args.records
    print(f"read_official: {args.records:,} records -> {n:,} NB101Records in {dt:.2f} s ({per * 1e6:.1f} us/record)")
    print(f"ratio to the {TARGET:.0f} s target: {dt / TARGET:.2f} (< 1 passes)")
    print(f"projected for nasbench_only108.tfrecord ({REAL_RECORDS:,} records): {per * REAL_RECORDS:.0f} s")


if __name__ == "__main__":
    main()
