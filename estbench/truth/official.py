"""Readers for the official NAS-Bench-201 and NATS-Bench (topology) result files.

Both kinds of file hold, per architecture and per training schedule ("hp": '12' or
'200' epochs), the state dict of the official ``ArchResults`` class:

    {'arch_index': int, 'arch_str': str, 'clear_net_done': bool,
     'dataset_seed': {dataset: [seed, ...]},
     'all_results': {(dataset, seed): <ResultsCount state dict>}}

A ResultsCount state dict (one training run) carries ``epochs`` (the number of training
epochs) and ``eval_acc1es``: top-1 accuracy in percent keyed ``'<eval set>@<epoch
index>'`` with the epoch index counted from 0 (``'ori-test@199'`` is after epoch 200).

- NATS-Bench ``NATS-tss-v1_0-3ffb9-simple/``: ``meta.pickle.pbz2`` holds
  ``{'meta_archs': [arch_str, ...], 'total_archs': N, ...}`` and ``<index:06d>.pickle.pbz2``
  holds ``{'12': ArchResults, '200': ArchResults}`` (bz2-compressed pickles).
- NAS-Bench-201 ``NAS-Bench-201-v1_0-e61699.pth`` / ``-v1_1-096897.pth``: one torch.save'd
  dict ``{'meta_archs': [...], 'arch2infos': {index: {'less': ArchResults (12 epochs),
  'full': ArchResults (200 epochs)}}, 'evaluated_indexes': ...}``.
"""

from __future__ import annotations

import bz2
import contextlib
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estbench.data.safepickle import restricted_load, torch_safe_globals
from estbench.errors import BadInput, MissingData
from estbench.truth.model import MetricInfo, TruthTable

NATS_META = "meta.pickle.pbz2"
NATS_HOW_TO_GET = "get NATS-tss-v1_0-3ffb9-simple.tar (github D-X-Y/NATS-Bench) and unpack it with tar xf"
NB201_HP_KEYS = {"12": "less", "200": "full"}


@dataclass(frozen=True)
class OfficialSplit:
    """Where a metric lives in the official files: the training set-up (``dataset``)
    and the evaluation set (``eval_set``)."""

    dataset: str
    eval_set: str
    about: str


# The splits NATS-Bench's own get_more_info reports as valid-/test-accuracy per dataset
# ('ori-test' for the CIFAR-10 set-ups, 'x-valid'/'x-test' for CIFAR-100 and ImageNet16-120).
OFFICIAL_METRICS: dict[str, OfficialSplit] = {
    "cifar10-valid-valid": OfficialSplit(
        "cifar10-valid", "x-valid", "trained on the 25k train half of CIFAR-10 train, tested on the other 25k"
    ),
    "cifar10-valid-test": OfficialSplit(
        "cifar10-valid", "ori-test", "trained on the 25k train half of CIFAR-10 train, tested on CIFAR-10 test"
    ),
    "cifar10-test": OfficialSplit(
        "cifar10", "ori-test", "trained on all 50k CIFAR-10 train images, tested on CIFAR-10 test"
    ),
    "cifar100-valid": OfficialSplit(
        "cifar100", "x-valid", "trained on CIFAR-100 train, tested on half of CIFAR-100 test (x-valid)"
    ),
    "cifar100-test": OfficialSplit(
        "cifar100", "x-test", "trained on CIFAR-100 train, tested on the other half of CIFAR-100 test (x-test)"
    ),
    "imagenet16-valid": OfficialSplit(
        "ImageNet16-120", "x-valid", "ImageNet16-120 train, tested on half of its validation set (x-valid)"
    ),
    "imagenet16-test": OfficialSplit(
        "ImageNet16-120", "x-test", "ImageNet16-120 train, tested on the other half of its validation set (x-test)"
    ),
}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _get(obj: Any, key: Any, where: str) -> Any:
    """``obj[key]`` or a BadInput naming the file/record and the keys that are there."""
    if not isinstance(obj, dict):
        raise BadInput(f"{where}: expected a dict, found {type(obj).__name__}")
    if key not in obj:
        has = ", ".join(repr(k) for k in list(obj)[:12])
        raise BadInput(f"{where}: missing key {key!r} (has: {has})")
    return obj[key]


def _arch_list(obj: Any, where: str) -> list[str]:
    archs = _get(obj, "meta_archs", where)
    if not isinstance(archs, (list, tuple)) or not all(isinstance(a, str) for a in archs):
        raise BadInput(f"{where}: 'meta_archs' is not a list of architecture strings")
    return list(archs)


def _wanted(metrics: list[str] | None, source: str) -> list[str]:
    if metrics is None:
        return list(OFFICIAL_METRICS)
    unknown = [m for m in metrics if m not in OFFICIAL_METRICS]
    if unknown:
        raise BadInput(
            f"{source}: unknown metric(s) {', '.join(unknown)}; the official files have: {', '.join(OFFICIAL_METRICS)}"
        )
    return list(dict.fromkeys(metrics))


def _check_arch(arch: Any, index: int, arch_ids: dict[str, int], where: str) -> str:
    """The arch string stored at ``index`` must have that id in the space's order."""
    if not isinstance(arch, str):
        raise BadInput(f"{where}: architecture string is {type(arch).__name__}, not str")
    if arch not in arch_ids:
        raise BadInput(f"{where}: architecture {arch} (index {index}) is not in the space")
    if arch_ids[arch] != index:
        raise BadInput(f"{where}: index {index} holds {arch}, which has id {arch_ids[arch]} in the official order")
    return arch


def _seed_mean(record: dict, split: OfficialSplit, where: str) -> tuple[float, int] | None:
    """Mean top-1 accuracy over the training seeds after the last epoch, and the number
    of epochs; None when the file has no runs of this dataset / eval set."""
    seeds = _get(record, "dataset_seed", where)
    if not isinstance(seeds, dict):
        raise BadInput(f"{where}: 'dataset_seed' is not a dict")
    if not seeds.get(split.dataset):
        return None
    if not isinstance(seeds[split.dataset], (list, tuple)):
        raise BadInput(f"{where}: dataset_seed[{split.dataset!r}] is not a list of seeds")
    runs = _get(record, "all_results", where)
    accs, epochs = [], set()
    for seed in seeds[split.dataset]:
        at = f"{where} [{split.dataset} seed {seed}]"
        run = _get(runs, (split.dataset, seed), f"{where} all_results")
        n_epochs = _get(run, "epochs", at)
        if not isinstance(n_epochs, int) or n_epochs < 1:
            raise BadInput(f"{at}: 'epochs' is {n_epochs!r}, not a positive integer")
        evals = _get(run, "eval_acc1es", at)
        key = f"{split.eval_set}@{n_epochs - 1}"
        if not isinstance(evals, dict) or key not in evals:
            return None
        try:
            acc = float(evals[key])
        except (TypeError, ValueError):
            raise BadInput(f"{at}: eval_acc1es[{key!r}] is {evals[key]!r}, not a number") from None
        if not math.isfinite(acc):
            raise BadInput(f"{at}: eval_acc1es[{key!r}] is {acc}, not a finite accuracy")
        accs.append(acc)
        epochs.add(n_epochs)
    if len(epochs) > 1:
        raise BadInput(
            f"{where}: the {split.dataset} runs were trained for different numbers of epochs {sorted(epochs)}"
        )
    return sum(accs) / len(accs), epochs.pop()


class _Collector:
    """Gathers the metrics architecture by architecture, then builds the TruthTable."""

    def __init__(self, arch_ids: dict[str, int], names: list[str], explicit: bool, source: str, hp: str):
        self.arch_ids, self.names, self.explicit = arch_ids, names, explicit
        self.source, self.hp = source, hp
        self.ids: list[int] = []
        self.strs: list[str] = []
        self.values: dict[str, list[float | None]] = {n: [] for n in names}
        self.epochs: dict[str, dict[int, str]] = {n: {} for n in names}
        self.first_missing: dict[str, str] = {}

    def add(self, index: int, record: Any, where: str) -> None:
        if not isinstance(record, dict):
            raise BadInput(f"{where}: hp {self.hp} results are {type(record).__name__}, not a dict")
        arch = _check_arch(_get(record, "arch_str", where), index, self.arch_ids, where)
        stored = record.get("arch_index", index)
        if stored != index:
            raise BadInput(f"{where}: file index {index} but its record says arch_index {stored}")
        self.ids.append(index)
        self.strs.append(arch)
        for name in self.names:
            got = _seed_mean(record, OFFICIAL_METRICS[name], where)
            if got is None:
                self.values[name].append(None)
                self.first_missing.setdefault(
                    name, f"{where} (datasets: {', '.join(map(str, record.get('dataset_seed', {})))})"
                )
                continue
            self.values[name].append(got[0])
            self.epochs[name].setdefault(got[1], where)

    def table(self) -> TruthTable:
        table = TruthTable(self.ids, self.strs)
        for name in self.names:
            vals, split = self.values[name], OFFICIAL_METRICS[name]
            what = f"{split.dataset} {split.eval_set} results (hp {self.hp}) for {name}"
            if vals and all(v is None for v in vals):
                if self.explicit:
                    raise MissingData(f"{self.source}: no architecture has {what}")
                continue  # e.g. NAS-Bench-201 v1.0 trained only cifar10-valid for 12 epochs
            if None in vals:
                lack = f"{vals.count(None)} of {len(vals)} architectures lack it"
                raise MissingData(f"{self.first_missing[name]}: no {what} ({lack})")
            if len(self.epochs[name]) > 1:
                (e1, w1), (e2, w2) = list(self.epochs[name].items())[:2]
                raise BadInput(f"{self.source}: {name} mixes {e1} training epochs ({w1}) and {e2} ({w2})")
            epoch = next(iter(self.epochs[name]), int(self.hp) if self.hp.isdigit() else 0)
            desc = f"mean over training seeds, epoch {epoch}; {split.about}"
            table.add(MetricInfo(name=name, epoch=epoch, seed_mean=True, source=self.source, description=desc), vals)
        if self.ids and not table.metrics:
            raise MissingData(
                f"{self.source}: none of the metrics {', '.join(self.names)} has results for hp {self.hp}"
            )
        return table


# ---- NATS-Bench topology "-simple" directory ------------------------------------------


def _load_pbz2(path: Path) -> Any:
    """The file's content; a pickle that names anything but plain data is refused unrun."""
    try:
        with bz2.open(path, "rb") as fh:
            return restricted_load(fh)
    except FileNotFoundError:
        raise MissingData(f"{path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - unpickling a damaged file can raise almost anything
        raise BadInput(
            f"{path}: not a readable bz2-compressed pickle ({type(exc).__name__}: {_one_line(exc)})"
        ) from None


def _nats_archs(path: Path) -> list[str]:
    if not path.is_dir():
        raise MissingData(
            f"{path} is not a directory; expected the NATS-Bench archive NATS-tss-v1_0-3ffb9-simple/ ({NATS_HOW_TO_GET})"
        )
    meta = path / NATS_META
    if not meta.is_file():
        raise MissingData(f"{meta} does not exist: {path} is not a NATS-Bench '-simple' archive ({NATS_HOW_TO_GET})")
    return _arch_list(_load_pbz2(meta), str(meta))


def _nats_arch_file(path: Path, index: int) -> Path:
    padded = path / f"{index:06d}.pickle.pbz2"
    if padded.is_file():
        return padded
    plain = path / f"{index}.pickle.pbz2"  # the official loader accepts unpadded names too
    if plain.is_file():
        return plain
    raise MissingData(f"{padded} does not exist: the archive {path} is incomplete ({NATS_HOW_TO_GET})")


def nats_arch_list(path: Path) -> list[str]:
    """Architecture strings in the official index order, from ``meta.pickle.pbz2`` of a
    NATS-Bench topology ``-simple`` directory."""
    return _nats_archs(Path(path))


def read_nats_simple(
    path: Path, arch_ids: dict[str, int], hp: str = "200", metrics: list[str] | None = None
) -> TruthTable:
    """Seed-mean accuracies (percent, after the last epoch of ``hp``) of every architecture
    in a NATS-Bench topology ``-simple`` directory.

    ``arch_ids`` maps arch string -> id in the space's official order; each file's arch must
    have its file's index. ``metrics`` (names in OFFICIAL_METRICS) picks metrics; by default
    every metric the files have results for."""
    path, hp = Path(path), str(hp)
    collector = _Collector(arch_ids, _wanted(metrics, str(path)), metrics is not None, str(path), hp)
    meta = path / NATS_META
    for index, arch in enumerate(_nats_archs(path)):
        _check_arch(arch, index, arch_ids, f"{meta} meta_archs[{index}]")
        file = _nats_arch_file(path, index)
        by_hp = _load_pbz2(file)
        if not isinstance(by_hp, dict) or hp not in by_hp:
            has = ", ".join(map(repr, by_hp)) if isinstance(by_hp, dict) else type(by_hp).__name__
            raise MissingData(f"{file}: no results for hp {hp!r} (has: {has})")
        collector.add(index, by_hp[hp], str(file))
    return collector.table()


# ---- NAS-Bench-201 .pth archive -------------------------------------------------------

# how torch's weights_only unpickler names what it refused, and why else it failed
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_WEIGHTS_ONLY_REASON = re.compile(r"WeightsUnpickler error:\s*(.+?)\s*(?:Check the documentation|$)", re.S)


def _load_pth(path: Path) -> dict:
    if not path.is_file():
        raise MissingData(
            f"{path} does not exist; expected NAS-Bench-201-v1_0-e61699.pth or NAS-Bench-201-v1_1-096897.pth"
        )
    try:
        import torch
    except ImportError:
        raise BadInput(f"reading {path} needs PyTorch (pip install torch)") from None
    # weights_only: tensors and plain data only, so a crafted archive cannot run code; numpy
    # values are admitted where torch can allowlist them (torch >= 2.5), refused before
    allow = getattr(torch.serialization, "safe_globals", None)
    try:
        with allow(torch_safe_globals()) if allow else contextlib.nullcontext(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols: the error says enough
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged/foreign file fails in zipfile, pickle or torch
        text = str(exc)
        if refused := _REFUSED_GLOBAL.search(text):
            raise BadInput(
                f"{path}: refused to load {refused.group(1)}: a NAS-Bench-201 archive holds plain data only "
                "(this file could run code)"
            ) from None
        reason = _WEIGHTS_ONLY_REASON.search(text)
        why = " ".join(reason.group(1).split()) if reason else _one_line(exc)
        raise BadInput(f"{path}: not a readable NAS-Bench-201 archive ({type(exc).__name__}: {why})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: not a NAS-Bench-201 archive (holds a {type(data).__name__}, not a dict)")
    return data


def nb201_pth_arch_list(path: Path) -> list[str]:
    """Architecture strings in the official index order (``meta_archs``) of a NAS-Bench-201
    .pth archive. Loads the whole archive (several GB of memory for v1.1)."""
    path = Path(path)
    return _arch_list(_load_pth(path), str(path))


def read_nb201_pth(
    path: Path, arch_ids: dict[str, int], hp: str = "200", metrics: list[str] | None = None
) -> TruthTable:
    """Seed-mean accuracies (percent, after the last epoch of ``hp``: '200' = the 'full'
    results, '12' = 'less') of every architecture in a NAS-Bench-201 v1.0/v1.1 archive.
    Same metrics and checks as :func:`read_nats_simple`."""
    path, hp = Path(path), str(hp)
    if hp not in NB201_HP_KEYS:
        raise BadInput(f"{path}: NAS-Bench-201 archives have hp '12' and '200', not {hp!r}")
    collector = _Collector(arch_ids, _wanted(metrics, str(path)), metrics is not None, str(path), hp)
    data = _load_pth(path)
    archs = _arch_list(data, str(path))
    infos = _get(data, "arch2infos", str(path))
    if not isinstance(infos, dict):
        raise BadInput(f"{path}: 'arch2infos' is a {type(infos).__name__}, not a dict")
    bad = [k for k in infos if not isinstance(k, int) or not 0 <= k < len(archs)]
    if bad:
        raise BadInput(f"{path}: arch2infos key {bad[0]!r} is not an index in 0..{len(archs) - 1} (meta_archs)")
    for index in sorted(infos):
        where = f"{path} arch2infos[{index}]"
        _check_arch(archs[index], index, arch_ids, f"{path} meta_archs[{index}]")
        record = _get(infos[index], NB201_HP_KEYS[hp], where)
        collector.add(index, record, f"{where}[{NB201_HP_KEYS[hp]!r}]")
    return collector.table()
