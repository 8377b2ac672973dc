"""Write the built-in NB201 truth table from a copy of ``nb201_truth.csv.gz``:

    python -m estbench.data.builtin.make_nb201 ../shared/data/nb201/nb201_truth.csv.gz

Checks before it writes: the source's sha256 (the file whose provenance is documented
in ``estbench.data.builtin``), 15,625 rows in index order 0..15624, every arch string
of the NB201 format, and the published optima (max test accuracy CIFAR-10 94.3733,
CIFAR-100 73.5133, ImageNet16-120 47.3111, CIFAR-10-valid validation 91.6067)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import shutil
import sys
from pathlib import Path

from estbench.data.builtin import BUILTINS, NB201_SHA256

OPTIMA = {"cifar10_test": 94.3733, "cifar100_test": 73.5133, "imagenet16_test": 47.3111, "cifar10_valid_valid": 91.6067}


def check(source: Path) -> None:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != NB201_SHA256:
        raise SystemExit(f"{source}: sha256 {digest}, expected {NB201_SHA256}")
    from estbench.spaces import get_space

    space = get_space("nb201")
    rows = list(csv.DictReader(io.TextIOWrapper(gzip.open(source), encoding="utf-8")))
    if [int(r["index"]) for r in rows] != list(range(15_625)):
        raise SystemExit(f"{source}: expected indices 0..15624 in order")
    for r in rows:
        space.parse(r["arch_str"])
    for column, best in OPTIMA.items():
        got = max(float(r[column]) for r in rows)
        if abs(got - best) > 1e-9:
            raise SystemExit(f"{source}: max {column} {got}, the published optimum is {best}")


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    source = Path(argv[0])
    check(source)
    target = BUILTINS["nb201-builtin"].path
    shutil.copyfile(source, target)
    print(f"wrote {target} ({target.stat().st_size:,} bytes); checks passed")


if __name__ == "__main__":
    main(sys.argv[1:])
