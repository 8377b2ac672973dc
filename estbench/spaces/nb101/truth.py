"""NAS-Bench-101 ground truth from the official ``.tfrecord`` and the partial JSON copies.

Every reader returns neutral :class:`NB101Record` s: the official module hash, the
(pruned) spec where the file has one, metrics by estbench name, the parameter count.

Metric names follow estbench's truth naming (``estbench.truth.model.metric_from_column``
with default epoch 108): ``cifar10-<split>[-<E>ep][-1seed]``.

- ``cifar10-valid`` / ``cifar10-test``: mean over the training repeats (3 in the official
  file) of the final validation / test accuracy after 108 epochs; ``-1seed``: one run
  (repeat 0 = the first in file order, the one the official API lists first).
- ``cifar10-valid-36ep`` ...: the same after a 4/12/36-epoch budget (only the full file).
- NB101's "valid" is a 10k split held out of CIFAR-10 train (trained on the other 40k),
  "test" the CIFAR-10 test set; optionally ``train``: accuracy on 10k fixed train images.

Accuracies are in percent, as estbench's NB201 truth (the files hold fractions, NASLib %).

The JSON copies hold one training run per architecture (every value is k/9984, the
official eval set of 78 batches of 128: a mean of 3 runs would not be), so they give
``-1seed`` metrics; which of the 3 repeats is unknown (the official ``query`` samples one).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estbench.errors import BadInput
from estbench.spaces.nb101.tfrecord import iter_rows
from estbench.truth.files import load_json
from estbench.truth.model import MetricInfo, metric_from_column

INPUT, OUTPUT = "input", "output"
# the official op names in config['available_ops'] order (= estbench.spaces.nb101.spec.OPS);
# the index is the op's label in the official hash, so the vis files' codes 0/1/2 use it
OFFICIAL_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
DEFAULT_EPOCHS = 108
EPOCH_BUDGETS = (4, 12, 36, 108)
SPLITS = ("valid", "test", "train")
_SPLIT_FIELD = {"valid": "validation_accuracy", "test": "test_accuracy", "train": "train_accuracy"}
_SPLIT_ABOUT = {
    "valid": "CIFAR-10 validation split (10k images held out of train)",
    "test": "CIFAR-10 test set",
    "train": "10k fixed images of the 40k training split",
}

# nasbench_vis_1k.json: the official hash labels (-1 input, -2 output, index in OFFICIAL_OPS);
# -3 pads a pruned spec to 7 vertices (after the output, no edges). Checked: the official
# hash of every one of the 1,000 specs read this way equals its key.
VIS_OP_CODES = {-1: INPUT, -2: OUTPUT, 0: OFFICIAL_OPS[0], 1: OFFICIAL_OPS[1], 2: OFFICIAL_OPS[2]}
VIS_PAD = -3
# naslib_zc_nb101.json keys: 49 adjacency digits (7x7 row-major, not pruned) + 7 op codes
NASLIB_OP_CODES = {0: INPUT, 1: OUTPUT, 2: "maxpool3x3", 3: "conv1x1-bn-relu", 4: "conv3x3-bn-relu"}
NASLIB_SCORES = (
    "epe_nas",
    "fisher",
    "flops",
    "grad_norm",
    "grasp",
    "jacov",
    "l2_norm",
    "params",
    "plain",
    "snip",
    "synflow",
)


@dataclass(slots=True)
class NB101Record:
    """One architecture's truth: ``matrix``/``ops`` pruned (None when the file has no
    spec); ``metrics`` by estbench name (percent); ``params`` the trainable parameters."""

    module_hash: str
    matrix: list[list[int]] | None
    ops: list[str] | None
    metrics: dict[str, float]
    params: int | None


def metric_name(split: str, epochs: int = DEFAULT_EPOCHS, one_seed: bool = False) -> str:
    """``cifar10-valid``, ``cifar10-test-36ep``, ``cifar10-valid-4ep-1seed``, ..."""
    if split not in SPLITS:
        raise BadInput(f"NB101 split {split!r}: expected one of {', '.join(SPLITS)}")
    ep = "" if epochs == DEFAULT_EPOCHS else f"-{epochs}ep"
    return f"cifar10-{split}{ep}{'-1seed' if one_seed else ''}"


def metric_info(name: str, source: str = "") -> MetricInfo:
    """The MetricInfo of an NB101 metric name (epoch, seed mean, description)."""
    info = metric_from_column(name.replace("-", "_"), DEFAULT_EPOCHS, source)
    split = info.name.split("-")[1]
    about = _SPLIT_ABOUT.get(split, split)
    runs = "one training run" if not info.seed_mean else "mean over the training repeats"
    desc = f"top-1 accuracy (%) on the {about} after {info.epoch} epochs; {runs}"
    return MetricInfo(name=info.name, epoch=info.epoch, seed_mean=info.seed_mean, source=source, description=desc)


# ---- checks ------------------------------------------------------------------------------


def _check_hash(key: Any, where: str) -> str:
    if not isinstance(key, str) or len(key) != 32 or any(c not in "0123456789abcdef" for c in key):
        raise BadInput(f"{where}: module hash {str(key)[:40]!r} is not 32 lowercase hex digits")
    return key


def _check_ops(ops: list[str], where: str) -> list[str]:
    if len(ops) < 2 or ops[0] != INPUT or ops[-1] != OUTPUT:
        raise BadInput(f"{where}: operations {','.join(ops)} do not run from {INPUT} to {OUTPUT}")
    bad = [o for o in ops[1:-1] if o not in OFFICIAL_OPS]
    if bad:
        raise BadInput(f"{where}: unknown operation {bad[0]!r} (NB101 has {', '.join(OFFICIAL_OPS)})")
    return ops


def _check_matrix(matrix: list[list[int]], where: str) -> list[list[int]]:
    n = len(matrix)
    for i, row in enumerate(matrix):
        if any(row[j] for j in range(i + 1)):
            raise BadInput(f"{where}: adjacency is not upper triangular (row {i})")
    if n > 7 or sum(map(sum, matrix)) > 9:
        raise BadInput(f"{where}: {n} vertices / {sum(map(sum, matrix))} edges exceed NB101's 7 / 9")
    return matrix


def _fraction(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise BadInput(f"{where}: accuracy {v!r} is not a fraction in [0, 1]")
    return float(v)


def _params(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise BadInput(f"{where}: trainable_parameters {v!r} is not a non-negative integer")
    return v


# ---- the official tfrecord ---------------------------------------------------------------


class _Arch:
    __slots__ = ("adjacency", "operations", "params", "runs", "where")

    def __init__(self, adjacency: str, operations: str, params: int | None, where: str):
        self.adjacency, self.operations, self.params, self.where = adjacency, operations, params, where
        self.runs: dict[int, list[tuple[float, ...]]] = {}


def read_official(
    path: str | Path, splits: tuple[str, ...] = ("valid", "test"), verify: bool = True
) -> Iterator[NB101Record]:
    """One NB101Record per module hash of ``nasbench_only108.tfrecord`` /
    ``nasbench_full.tfrecord``, in the order hashes first appear, with the seed mean and
    the repeat-0 value of the final accuracy of each split in ``splits`` at every epoch
    budget the file has (108 only, or 4/12/36/108). Spec and parameters are those of the
    hash's first row (as the official API keeps them). The file is read once, streaming;
    memory grows with the number of architectures only."""
    path = Path(path)
    for s in splits:
        metric_name(s)
    fields = [_SPLIT_FIELD[s] for s in splits]
    archs: dict[str, _Arch] = {}
    for k, row in enumerate(iter_rows(path, verify=verify)):
        evals = row.metrics.evaluation_data
        if not evals:
            raise BadInput(f"{path}: row {k} (hash {row.module_hash}, {row.epochs} epochs) has no evaluation data")
        final = evals[-1]  # the official API reads evaluation_data[2] of [start, halfway, final]
        arch = archs.get(row.module_hash)
        if arch is None:
            arch = archs[row.module_hash] = _Arch(
                row.adjacency, row.operations, row.metrics.trainable_parameters, f"{path} row {k}"
            )
        runs = arch.runs.get(row.epochs)
        if runs is None:
            runs = arch.runs[row.epochs] = []
        runs.append(tuple(getattr(final, f) for f in fields))
    if not archs:
        raise BadInput(f"{path}: holds no records")
    names = {}
    for module_hash, arch in archs.items():
        dim = int(len(arch.adjacency) ** 0.5 + 0.5)
        where = f"{arch.where} (hash {module_hash})"
        matrix = _check_matrix([[int(c) for c in arch.adjacency[i * dim : (i + 1) * dim]] for i in range(dim)], where)
        ops = _check_ops(arch.operations.split(","), where)
        metrics: dict[str, float] = {}
        for epochs in sorted(arch.runs):
            runs = arch.runs[epochs]
            for j, split in enumerate(splits):
                key = (split, epochs)
                if key not in names:
                    names[key] = (metric_name(split, epochs), metric_name(split, epochs, one_seed=True))
                mean_name, one_name = names[key]
                vals = [r[j] for r in runs]
                for v in vals:
                    if not math.isfinite(v):
                        raise BadInput(f"{where}: {split} accuracy {v} at {epochs} epochs is not finite")
                metrics[mean_name] = 100.0 * sum(vals) / len(vals)
                metrics[one_name] = 100.0 * vals[0]
        yield NB101Record(module_hash, matrix, ops, metrics, arch.params)


# ---- the nasbench-vis JSON copies ----------------------------------------------------------


def _vis_columns(path: Path, need: tuple[str, ...]) -> tuple[dict[str, list], int]:
    data = load_json(path)
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a JSON object of columns, found {type(data).__name__}")
    missing = [c for c in need if c not in data]
    if missing:
        raise BadInput(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(list(data)[:12])})")
    lens = {c: len(data[c]) if isinstance(data[c], list) else -1 for c in need}
    if -1 in lens.values():
        bad = next(c for c, n in lens.items() if n == -1)
        raise BadInput(f"{path}: column {bad} is not a list")
    if len(set(lens.values())) != 1:
        raise BadInput(f"{path}: columns have different lengths ({', '.join(f'{c}: {n}' for c, n in lens.items())})")
    n = lens["key"]
    if n == 0:
        raise BadInput(f"{path}: holds no architectures")
    return data, n


_VIS_ACC = tuple(f"{e}_final_validation_accuracy" for e in EPOCH_BUDGETS)


def _vis_records(path: Path, with_spec: bool) -> list[NB101Record]:
    need = ("key", *_VIS_ACC, "trainable_parameters") + (("adjacency", "operations") if with_spec else ())
    data, n = _vis_columns(path, need)
    names = [metric_name("valid", e, one_seed=True) for e in EPOCH_BUDGETS]
    out, seen = [], {}
    for i in range(n):
        where = f"{path} entry {i}"
        key = _check_hash(data["key"][i], where)
        if key in seen:
            raise BadInput(f"{where}: hash {key} appears again (first at entry {seen[key]})")
        seen[key] = i
        metrics = {m: 100.0 * _fraction(data[c][i], f"{where} {c}") for m, c in zip(names, _VIS_ACC)}
        matrix = ops = None
        if with_spec:
            matrix, ops = _vis_spec(data["adjacency"][i], data["operations"][i], f"{where} ({key})")
        out.append(NB101Record(key, matrix, ops, metrics, _params(data["trainable_parameters"][i], where)))
    return out


def _vis_spec(adj: Any, codes: Any, where: str) -> tuple[list[list[int]], list[str]]:
    if not isinstance(codes, list) or not isinstance(adj, list) or len(adj) != len(codes):
        raise BadInput(f"{where}: adjacency and operations are not a matrix and a list of the same size")
    rows = []
    for r in adj:
        if not isinstance(r, list) or len(r) != len(codes) or any(x not in (0, 1) for x in r):
            raise BadInput(f"{where}: adjacency is not a {len(codes)}x{len(codes)} matrix of 0/1")
        rows.append([int(x) for x in r])
    keep = [k for k, c in enumerate(codes) if c != VIS_PAD]
    pads = [k for k, c in enumerate(codes) if c == VIS_PAD]
    if pads and (min(pads) < max(keep) or any(rows[k][j] or rows[j][k] for k in pads for j in range(len(codes)))):
        raise BadInput(f"{where}: padding vertices (code {VIS_PAD}) must come last and have no edges")
    bad = [c for k, c in enumerate(codes) if k in keep and c not in VIS_OP_CODES]
    if bad:
        raise BadInput(f"{where}: unknown operation code {bad[0]!r} (the file uses {sorted(VIS_OP_CODES)}, {VIS_PAD})")
    ops = _check_ops([VIS_OP_CODES[codes[k]] for k in keep], where)
    return _check_matrix([[rows[a][b] for b in keep] for a in keep], where), ops


def read_vis_1k(path: str | Path) -> list[NB101Record]:
    """``nasbench_vis_1k.json`` (nasbench-vis): spec, params and one run's validation
    accuracy at 4/12/36/108 epochs (``cifar10-valid-1seed``, ``cifar10-valid-4ep-1seed``, ...)."""
    return _vis_records(Path(path), with_spec=True)


def read_vis_20k(path: str | Path) -> list[NB101Record]:
    """``nasbench_vis_20k.json``: hash, params and the same validation accuracies; no spec."""
    return _vis_records(Path(path), with_spec=False)


# ---- NASLib's zero-cost benchmark ----------------------------------------------------------


@dataclass(slots=True)
class PeerRecord:
    """An architecture of NASLib's zero-cost file: its truth and NASLib's proxy values
    (``scores``: NASLIB_SCORES; ``flops`` in MFLOPs and ``params`` in millions, as stored)."""

    record: NB101Record
    scores: dict[str, float]
    key: str  # the NASLib key as stored


def _naslib_spec(key: str, where: str) -> tuple[list[list[int]], list[int]]:
    try:
        t = ast.literal_eval(key)  # a tuple of ints, written by str(tuple); literal_eval runs nothing
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise BadInput(f"{where}: key is not a tuple of integers") from None
    if not isinstance(t, tuple) or len(t) != 56 or any(type(x) is not int for x in t):
        raise BadInput(f"{where}: key is not 49 adjacency digits + 7 op codes")
    if any(x not in (0, 1) for x in t[:49]) or any(x not in NASLIB_OP_CODES for x in t[49:]):
        raise BadInput(f"{where}: key has adjacency digits other than 0/1 or op codes outside 0..4")
    return [list(t[7 * r : 7 * r + 7]) for r in range(7)], list(t[49:])


def read_naslib_zc(path: str | Path, dataset: str = "cifar10") -> list[PeerRecord]:
    """``naslib_zc_nb101.json`` ({'nasbench101': {dataset: {key: {...}}}}): per architecture
    the pruned spec, its official hash, ``cifar10-valid-1seed`` (NASLib's val_accuracy, %)
    and the 11 proxy values (params None: NASLib's count is in ``scores``). Isomorphic keys are kept as
    separate records (the file has several with different runs' accuracies)."""
    from estbench.spaces.nb101 import spec as nb101_spec  # the official pruning and hash

    path = Path(path)
    data = load_json(path)
    top = data.get("nasbench101") if isinstance(data, dict) else None
    if not isinstance(top, dict) or not isinstance(top.get(dataset), dict):
        has = ", ".join(top) if isinstance(top, dict) else "no 'nasbench101' object"
        raise BadInput(f"{path}: expected {{'nasbench101': {{{dataset!r}: {{key: {{...}}}}}}}} ({has})")
    rows = top[dataset]
    if not rows:
        raise BadInput(f"{path}: holds no architectures")
    name = metric_name("valid", one_seed=True)
    out = []
    for key, entry in rows.items():
        where = f"{path} {key[:40]}..."
        if not isinstance(entry, dict):
            raise BadInput(f"{where}: entry is a {type(entry).__name__}, not an object")
        matrix, codes = _naslib_spec(key, where)
        ops = [NASLIB_OP_CODES[c] for c in codes]
        try:
            spec = nb101_spec.prune(matrix, ops)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc}") from None
        acc = entry.get("val_accuracy")
        if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not 0.0 <= acc <= 100.0:
            raise BadInput(f"{where}: val_accuracy {acc!r} is not a percentage")
        scores = {}
        for s in NASLIB_SCORES:
            v = entry.get(s)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise BadInput(f"{where}: proxy {s} is {v!r}, not a number")
            scores[s] = float(v)
        # params stays in ``scores``: NASLib counted some unpruned keys' dangling vertices
        # (087fdce1...: 2,781,083 there, 2,792,597 official), so it is not the truth's count
        record = NB101Record(
            nb101_spec.module_hash(spec), [list(r) for r in spec.matrix], list(spec.ops), {name: float(acc)}, None
        )
        out.append(PeerRecord(record, scores, key))
    return out
