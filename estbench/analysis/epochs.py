"""Estimator quality against training epoch (paper Table A11, Sec. 4.2 last paragraph):
per estimator and config, Kendall's tau-b and P@topK against the truth at every epoch
it was scored at, one column per epoch.

Built from the criteria of the stored rows (:func:`estbench.analysis.evaluate.evaluate`,
the point semantics of ``criteria``: protocol, deiso classes, scores averaged over
batches and the selected seeds), so it covers every estimator with epochs: os_acc /
os_loss at their checkpoint epochs, and zero-shot measures scored on trained weights
(``--weights supernet:RUN@EPOCH``; epoch 0 = the run's initialisation). Store only, no
torch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from estbench.analysis.criteria import format_k
from estbench.analysis.evaluate import GroupCriteria, evaluate
from estbench.store.store import Store


@dataclass
class EpochRow:
    """One (estimator, config): its name as ``criteria`` prints it without the epoch,
    and per scored epoch the criteria of that epoch's point set."""

    estimator: str
    config_hash: str
    name: str
    label: str | None
    cells: dict[int, dict[str, float]] = field(default_factory=dict)  # epoch -> points, kd, p_top


def epoch_rows(groups: list[GroupCriteria], k: float) -> tuple[list[int], list[EpochRow]]:
    """(every epoch of ``groups``, ascending; one row per (estimator, config) in the
    groups' order) from criteria computed with ``k`` among their proportions."""
    from estbench.report.tables import group_label

    p_key = f"p_top@{format_k(k)}"
    order: dict[tuple[str, str], list[GroupCriteria]] = {}
    for g in groups:
        order.setdefault((g.estimator, g.config_hash), []).append(g)
    # the name of a config without its epoch: group_label over one epoch-0 stand-in per config
    stand_ins = [replace(gs[0], epoch=0) for gs in order.values()]
    rows = []
    for (est, chash), gs in order.items():
        me = next(s for s in stand_ins if (s.estimator, s.config_hash) == (est, chash))
        row = EpochRow(est, chash, group_label(stand_ins, me), gs[0].label)
        for g in gs:
            row.cells[g.epoch] = {"points": len(g.points), "kd": g.values["kd"], "p_top": g.values[p_key]}
        rows.append(row)
    return sorted({g.epoch for g in groups}), rows


def criteria_by_epoch(
    store: Store,
    space: str,
    metric: str,
    protocol: str = "deiso",
    estimators: list[str] | None = None,
    epochs: list[int] | None = None,
    seeds: list[int] | None = None,
    k: float = 0.05,
    post_deiso: bool = False,
) -> tuple[list[int], list[EpochRow]]:
    """:func:`epoch_rows` of the stored scores (BadInput for unknown names)."""
    groups = evaluate(store, space, metric, protocol, estimators, epochs, seeds, (k,), post_deiso)
    return epoch_rows(groups, k)
