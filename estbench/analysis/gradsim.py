"""Gradient similarity between architecture pairs per supernet layer (paper A.3.1,
Fig. A15), from the stored ``gradsim`` rows (``estbench score --ose RUN --gradsim P``).
numpy only; no torch.

A group is (run, config, checkpoint epoch, layer); its values are the pairs' cosines
there, NULL ones (the pair shares no parameter of the layer that both use, or one
gradient is zero there) counted apart and left out of the statistics. ``ALL_LAYERS``
pools every non-NULL (pair, layer) value of a (run, config, epoch).

Layers are ordered by their position in the network: ``stem``, then per stage ``S{s}R``
(the reduction block that opens stage s) before the stage's cells ``S{s}C{c}`` by cell
number, then ``classifier``; any other name after those, alphabetically (the names
``estimators.oneshot.gradsim`` gives)."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

ALL_LAYERS = "all"
QUANTILES = (0.1, 0.5, 0.9)
STAT_COLUMNS = ("pairs", "null", "mean", "std", "q10", "q50", "q90", "min", "max")
_CELL = re.compile(r"^S(\d+)C(\d+)$")
_REDUCTION = re.compile(r"^S(\d+)R$")


def layer_position(name: str) -> tuple:
    """A sort key that puts layers in network order (see the module docstring)."""
    if name == "stem":
        return (0, 0, 0, "")
    if m := _REDUCTION.match(name):
        return (1, int(m.group(1)), -1, "")
    if m := _CELL.match(name):
        return (1, int(m.group(1)), int(m.group(2)), "")
    if name == "classifier":
        return (2, 0, 0, "")
    if name == ALL_LAYERS:
        return (4, 0, 0, "")
    return (3, 0, 0, name)


def order_layers(names) -> list[str]:
    return sorted(set(names), key=layer_position)


def stats(values: np.ndarray) -> dict[str, float | int | None]:
    """pairs (non-NaN values), null (NaN ones), mean, std (sample, ddof=1; None below
    two values), the 10/50/90% quantiles (numpy's linear interpolation), min, max."""
    values = np.asarray(values, dtype=np.float64)
    ok = values[~np.isnan(values)]
    out: dict[str, float | int | None] = {"pairs": int(ok.size), "null": int(values.size - ok.size)}
    if not ok.size:
        return {**out, **{k: None for k in STAT_COLUMNS[2:]}}
    q = np.quantile(ok, QUANTILES)
    out.update(
        mean=float(ok.mean()), std=float(ok.std(ddof=1)) if ok.size > 1 else None,
        q10=float(q[0]), q50=float(q[1]), q90=float(q[2]), min=float(ok.min()), max=float(ok.max()),
    )  # fmt: skip
    return out


def _groups(data: dict[str, np.ndarray], keys: Sequence[str]) -> list[tuple[tuple, np.ndarray]]:
    """(key values, row indices) of each distinct combination of ``keys``, sorted."""
    n = len(data["cosine"])
    if not n:
        return []
    codes = [np.unique(data[k].astype(str) if data[k].dtype == object else data[k], return_inverse=True) for k in keys]
    order = np.lexsort([inv for _, inv in reversed(codes)])
    stacked = np.stack([inv[order] for _, inv in codes], axis=1)
    cuts = np.flatnonzero(np.any(stacked[1:] != stacked[:-1], axis=1)) + 1
    return [(tuple(_py(data[k][idx[0]]) for k in keys), idx) for idx in np.split(order, cuts)]


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def summary(data: dict[str, np.ndarray]) -> list[dict]:
    """One dict per (run_name, config_hash, label, epoch, layer) with ``stats``; layers in
    network order within each (run, config, epoch), followed by the ``ALL_LAYERS`` row."""
    out = []
    for (run, chash, label, epoch), idx in _groups(data, ("run_name", "config_hash", "label", "epoch")):
        layers = data["layer"][idx]
        cos = data["cosine"][idx]
        base = {"run_name": run, "config_hash": chash, "label": label, "epoch": int(epoch)}
        for layer in order_layers(layers):
            out.append({**base, "layer": layer, **stats(cos[layers == layer])})
        out.append({**base, "layer": ALL_LAYERS, **stats(cos)})
    return out


def trend(data: dict[str, np.ndarray]) -> tuple[list[int], list[dict]]:
    """(epochs, rows): per (run_name, config_hash, label, layer) the mean cosine at each
    epoch (``means``: epoch -> mean or None where the layer has no value there) and
    ``change`` = the mean at the last epoch with a value minus the first; layers in
    network order, ``ALL_LAYERS`` last."""
    rows = summary(data)
    epochs = sorted({r["epoch"] for r in rows})
    table: dict[tuple, dict] = {}
    for r in rows:
        key = (r["run_name"], r["config_hash"], r["label"], r["layer"])
        entry = table.setdefault(key, {"run_name": key[0], "config_hash": key[1], "label": key[2], "layer": key[3]})
        entry.setdefault("means", {})[r["epoch"]] = r["mean"]
    out = sorted(table.values(), key=lambda e: (e["run_name"], e["config_hash"], layer_position(e["layer"])))
    for e in out:
        seen = [e["means"][ep] for ep in epochs if e["means"].get(ep) is not None]
        e["change"] = seen[-1] - seen[0] if len(seen) > 1 else None
    return epochs, out
