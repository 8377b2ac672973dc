"""Data shipped inside the package, so that the main job runs with no data directory.

``nb201_truth.csv.gz`` (0.56 MB): NAS-Bench-201 / NATS-Bench topology ground truth for
all 15,625 architectures in the official index order (the estbench table format:
``index, arch_str, cifar10_test, ...``; see the README's Data section for the columns).
Values dumped from the NATS-Bench API (github v-tao/nats-bench-landscape,
nats_bench.csv, HEAD b307ae5, and commit bca0282 for the single-run columns; data MIT,
NATS-Bench by Dong et al.) and github gabro8a/NAS-Landscapes (MIT). Written by
``python -m estbench.data.builtin.make_nb201 SOURCE``, which checks the source's sha256
and the published optima before it copies the file. A user's own table or official
files (``--file``, the data directory) take precedence; the source a metric came from
is recorded in the store's ``metrics`` table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    path: Path
    sha256: str
    licence: str


NB201_SHA256 = "8c579e9bed13a208a95f3b07320c939a5dc35ef712ebd11f8f38d39fea3c4c89"

BUILTINS: dict[str, Builtin] = {
    "nb201-builtin": Builtin(
        "nb201-builtin",
        "NB201 ground truth shipped with estbench (NATS-Bench means, 15,625 archs)",
        HERE / "nb201_truth.csv.gz",
        NB201_SHA256,
        "MIT (NATS-Bench values via nats-bench-landscape, NAS-Landscapes)",
    )
}


def builtin_path(name: str) -> Path | None:
    """The shipped file ``name``, or None when this installation lacks it."""
    b = BUILTINS.get(name)
    return b.path if b is not None and b.path.is_file() else None
