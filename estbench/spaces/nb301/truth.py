"""NAS-Bench-301 measured ground truth as estbench truth tables (``truth load``).

Two readers, each ``reader(path, arch_ids, metrics=None)`` (``spaces.base.TruthSource``):

- ``read_naslib``: NASLib's zero-cost NB301 table (``naslib_zc_nb301.json`` /
  ``zc_nasbench301.json``, ``{"cifar10": {key: {"val_accuracy": %, ...}}}``, 725 archs
  keyed by NASLib's compact string): ``cifar10-valid-1seed``, one training run's
  validation accuracy. NASLib reads it off NB301's training data (the last point of the
  arch's validation curve) and calls it "the validation accuracy at epoch 100".
- ``read_nb301_dir``: NB301's own training data (``nb_301_v13_lc_iclr_final``), a tree
  of ``results_*.json`` files, one per training run, read as the nasbench301 repo reads
  them (``surrogate_models/utils.py``, ``ConfigLoader``): the ConfigSpace configuration
  in ``optimized_hyperparamater_config`` (sic), the final validation accuracy in
  ``info[0]["val_accuracy"]``, the test accuracy in ``test_accuracy`` (both %), the
  training budget in epochs in ``budget`` (= the cosine schedule's ``T_max``).

Epochs: NB301 trains every architecture for 100 epochs (``T_max`` = budget = 100, 32
initial channels, 8 cells); its logged curves hold 98 points (hence the YAHPO
surrogate's epoch range 1..98, ``surrogate.py``), whose last is the final accuracy read
here. Measured metrics are therefore at epoch 100 (``NB301_EPOCHS``; estbench tables of
the space use the same default).

Splits: NB301 trains on 40k CIFAR-10 train images and validates on the other 10k
("valid"); "test" is the CIFAR-10 test set. Accuracies are in percent.

Every architecture becomes its estbench string (``genotype.to_str``); one the store
lacks gets id -1 (``load_truth`` adds it: nb301 is an open space).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from estbench.errors import BadInput, MissingData
from estbench.spaces.nb301 import genotype as gt
from estbench.truth.files import load_json
from estbench.truth.model import MetricInfo, TruthTable

NB301_EPOCHS = 100  # NB301's training budget (T_max of the cosine schedule)
NB301_SHAPE = (32, 8)  # initial channels, cells of NB301's trained networks
CONFIG_KEY = "optimized_hyperparamater_config"  # sic: the key as NB301 writes it
_BUDGET_KEY = "SimpleLearningrateSchedulerSelector:cosine_annealing:T_max"
_CHANNELS_KEY = "NetworkSelectorDatasetInfo:darts:init_channels"
_LAYERS_KEY = "NetworkSelectorDatasetInfo:darts:layers"
_SPLIT_ABOUT = {
    "valid": "NB301's CIFAR-10 validation split (10k train images held out)",
    "test": "the CIFAR-10 test set",
}


def metric_name(split: str, epochs: int = NB301_EPOCHS, one_seed: bool = False) -> str:
    """``cifar10-valid``, ``cifar10-test-50ep``, ``cifar10-valid-1seed``, ..."""
    ep = "" if epochs == NB301_EPOCHS else f"-{epochs}ep"
    return f"cifar10-{split}{ep}{'-1seed' if one_seed else ''}"


# ---- shared checks ---------------------------------------------------------------------


def _percent(v: Any, where: str, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0.0 <= v <= 100.0:
        raise BadInput(f"{where}: {what} {v!r} is not a percentage in [0, 100]")
    return float(v)


def _select(infos: dict[str, MetricInfo], metrics: list[str] | None, source: str) -> list[str]:
    """The metric names to return: all the file has, or exactly ``metrics``."""
    if not metrics:
        return list(infos)
    missing = [m for m in metrics if m not in infos]
    if missing:
        raise BadInput(f"{source}: no metric {', '.join(missing)} in the file (has: {', '.join(infos)})")
    return list(dict.fromkeys(metrics))


def _table(
    strs: list[str],
    values: dict[str, list[float | None]],
    infos: dict[str, MetricInfo],
    arch_ids: dict[str, int],
    metrics: list[str] | None,
    source: str,
    duplicates: int = 0,
) -> TruthTable:
    table = TruthTable([arch_ids.get(s, -1) for s in strs], list(strs), duplicates=duplicates)
    for name in _select(infos, metrics, source):
        table.add(infos[name], values[name])
    return table


# ---- NASLib's zero-cost table ----------------------------------------------------------


def _naslib_rows(data: Any, path: Path) -> dict[str, Any]:
    rows = data.get("cifar10") if isinstance(data, dict) else None
    if rows is None and isinstance(data, dict) and isinstance(data.get("nasbench301"), dict):
        rows = data["nasbench301"].get("cifar10")  # the nesting of NASLib's other spaces' files
    if not isinstance(rows, dict):
        has = ", ".join(list(data)[:6]) if isinstance(data, dict) else f"a JSON {type(data).__name__}"
        raise BadInput(f"{path}: expected {{'cifar10': {{NASLib key: {{'val_accuracy': ...}}}}}} (found {has})")
    if not rows:
        raise BadInput(f"{path}: holds no architectures")
    return rows


def read_naslib(path: Path, arch_ids: dict[str, int], metrics: list[str] | None = None) -> TruthTable:
    """NASLib's NB301 zero-cost table: ``cifar10-valid-1seed`` (one run, epoch 100, %).

    Two keys of the same architecture (operands written in the other order) are one row
    when their accuracies agree, refused when they differ."""
    path = Path(path)
    rows = _naslib_rows(load_json(path), path)
    name = metric_name("valid", one_seed=True)
    strs: list[str] = []
    vals: list[float | None] = []
    first: dict[str, tuple[str, float]] = {}
    duplicates = 0
    for key, entry in rows.items():
        where = f"{path} {key[:60]}"
        if not isinstance(entry, dict):
            raise BadInput(f"{where}: entry is a {type(entry).__name__}, not an object")
        try:
            s = gt.to_str(gt.from_naslib(key))
        except BadInput as exc:
            raise BadInput(f"{where}: {exc}") from None
        acc = _percent(entry.get("val_accuracy"), where, "val_accuracy")
        if s in first:
            other, had = first[s]
            if had != acc:
                raise BadInput(f"{where}: the same architecture as key {other[:60]} with another val_accuracy "
                               f"({acc} vs {had})")  # fmt: skip
            duplicates += 1
            continue
        first[s] = (key, acc)
        strs.append(s)
        vals.append(acc)
    info = MetricInfo(
        name=name, epoch=NB301_EPOCHS, seed_mean=False, source=str(path),
        description=f"top-1 accuracy (%) on {_SPLIT_ABOUT['valid']} after {NB301_EPOCHS} epochs; one training run "
        "(NASLib's zero-cost benchmark table, from NB301's training data)",
    )  # fmt: skip
    return _table(strs, {name: vals}, {name: info}, arch_ids, metrics, str(path), duplicates)


# ---- NB301's training-data json directories --------------------------------------------


def _int_setting(v: Any, where: str, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v) or v <= 0:
        raise BadInput(f"{where}: {what} {v!r} is not a positive integer")
    return int(v)


def _read_run(file: Path) -> tuple[str, float, float | None, tuple[int, int | None, int | None]]:
    """One training-run file: (arch string, val %, test % or None, (budget, channels, cells))."""
    data = load_json(file)
    if not isinstance(data, dict):
        raise BadInput(f"{file}: expected an NB301 result object, found a JSON {type(data).__name__}")
    config = data.get(CONFIG_KEY)
    if not isinstance(config, dict):
        raise BadInput(f"{file}: no {CONFIG_KEY!r} object (the run's ConfigSpace configuration)")
    info = data.get("info")
    if not isinstance(info, list) or not info or not isinstance(info[0], dict) or "val_accuracy" not in info[0]:
        raise BadInput(f"{file}: no info[0]['val_accuracy'] (the run's final validation accuracy)")
    try:
        s = gt.to_str(gt.from_config(config))
    except BadInput as exc:
        raise BadInput(f"{file}: {exc}") from None
    val = _percent(info[0]["val_accuracy"], str(file), "info[0].val_accuracy")
    test = data.get("test_accuracy")
    test = None if test is None else _percent(test, str(file), "test_accuracy")
    budget = data.get("budget", config.get(_BUDGET_KEY))
    if budget is None:
        raise BadInput(f"{file}: no 'budget' (the training epochs) and no {_BUDGET_KEY} in the configuration")
    setting = (
        _int_setting(budget, str(file), "budget"),
        None if config.get(_CHANNELS_KEY) is None else _int_setting(config[_CHANNELS_KEY], str(file), "init_channels"),
        None if config.get(_LAYERS_KEY) is None else _int_setting(config[_LAYERS_KEY], str(file), "layers"),
    )
    return s, val, test, setting


def _about_setting(setting: tuple[int, int | None, int | None]) -> str:
    budget, channels, cells = setting
    return f"{budget} epochs, {'?' if channels is None else channels} channels, {'?' if cells is None else cells} cells"


def read_nb301_dir(path: Path, arch_ids: dict[str, int], metrics: list[str] | None = None) -> TruthTable:
    """Every ``*.json`` under ``path`` (sorted by relative path), one training run each:
    ``cifar10-valid`` and, where the files have it, ``cifar10-test`` (%, at the runs'
    budget: a budget other than 100 epochs names the metric ``cifar10-valid-<E>ep``).

    The files of one architecture are its repeated runs (other seeds, or an optimizer
    that drew it again): the metric is their mean, and ``seed_mean`` is True when some
    architecture has more than one run (the description says how many). Every file must
    share one training setting (budget, channels, cells): NB301's fidelity runs are a
    different measurement, refused with the first file that differs."""
    path = Path(path)
    if not path.is_dir():
        raise MissingData(f"{path} is not a directory (NB301's training data: a tree of results_*.json files)")
    files = sorted((p for p in path.rglob("*.json") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise BadInput(f"{path}: no .json files under it (NB301's training data holds one results_*.json per run)")
    runs: dict[str, tuple[list[float], list[float]]] = {}  # arch -> (val %, test %) per run, first seen first
    setting = first_file = None
    for file in files:
        s, val, test, this = _read_run(file)
        if setting is None:
            setting, first_file = this, file
        elif this != setting:
            raise BadInput(
                f"{file}: trained with {_about_setting(this)}, {first_file} with {_about_setting(setting)}; "
                "the directory mixes training settings (NB301's fidelity runs?): load the runs of one setting"
            )
        vals, tests = runs.setdefault(s, ([], []))
        vals.append(val)
        if test is not None:
            tests.append(test)
    assert setting is not None
    budget = setting[0]
    strs = list(runs)
    repeated = sum(len(v) > 1 for v, _ in runs.values())
    n_files = len(files)
    runs_about = (
        f"mean over an architecture's runs ({n_files} runs of {len(strs)} archs; {repeated} with more than one)"
        if repeated
        else "one training run"
    )
    shape = "" if setting[1:] == NB301_SHAPE else f"; trained with {_about_setting(setting)}"
    infos: dict[str, MetricInfo] = {}
    values: dict[str, list[float | None]] = {}
    for split, col in (("valid", 0), ("test", 1)):
        per_arch = [runs[s][col] for s in strs]
        if not any(per_arch):
            continue  # no file has test_accuracy
        name = metric_name(split, budget)
        values[name] = [sum(v) / len(v) if v else None for v in per_arch]
        infos[name] = MetricInfo(
            name=name, epoch=budget, seed_mean=bool(repeated), source=str(path),
            description=f"top-1 accuracy (%) on {_SPLIT_ABOUT[split]} after {budget} epochs; {runs_about} "
            f"(NB301 training data){shape}",
        )  # fmt: skip
    return _table(strs, values, infos, arch_ids, metrics, str(path))
