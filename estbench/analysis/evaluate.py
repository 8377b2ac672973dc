"""Criteria over the store: SQL builds the point sets (joins, deiso grouping, ranks),
numpy/scipy compute the criteria per estimator group."""

from __future__ import annotations

from dataclasses import dataclass

from estbench.analysis.criteria import DEFAULT_KS, compute_criteria
from estbench.errors import BadInput
from estbench.store.store import Store

PROTOCOLS = ("iso", "deiso", "deiso-computational")


@dataclass
class GroupCriteria:
    estimator: str
    config_hash: str
    epoch: int
    values: dict[str, float]
    n_failed: int = 0
    n_nonfinite: int = 0
    seconds_per_arch: float = float("nan")
    label: str | None = None
    config: str | None = None  # the config's JSON
    threads: tuple = ()  # thread counts of the runs that wrote its scores (None: unrecorded), sorted


def check_inputs(store: Store, space: str, metric: str, protocol: str, estimators: list[str]) -> list[str]:
    """Validate names against the store; return the estimators to evaluate."""
    if protocol not in PROTOCOLS:
        raise BadInput(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    _known("space in this store", store.spaces()).entry(space)
    metrics = store.metric_names(space)
    if not metrics:
        raise BadInput(f"no truth loaded for {space}; run `estbench truth load --space {space}`")
    _known(f"truth metric for {space}", metrics).entry(metric)
    scored = store.scored_estimators(space)
    if not scored:
        raise BadInput(f"no scores for {space} in the store; run `estbench score --space {space} ...`")
    names = _known(f"estimator scored for {space}", scored)
    for e in estimators:
        names.entry(e)
    return estimators or scored


def _known(kind: str, names: list[str]):
    """A registry of plain names, for its did-you-mean errors."""
    from estbench.registry import Registry

    reg = Registry(kind)
    for n in names:
        reg.register(n, n)
    return reg


def evaluate(
    store: Store,
    space: str,
    metric: str,
    protocol: str = "deiso",
    estimators: list[str] | None = None,
    epochs: list[int] | None = None,
    seeds: list[int] | None = None,
    ks: tuple[float, ...] = DEFAULT_KS,
) -> list[GroupCriteria]:
    """Criteria of every (estimator, config, epoch) group against ``metric``."""
    with store.session():  # one connection for the checks and both queries
        return _evaluate(store, space, metric, protocol, estimators, epochs, seeds, ks)


def _evaluate(store, space, metric, protocol, estimators, epochs, seeds, ks) -> list[GroupCriteria]:
    names = check_inputs(store, space, metric, protocol, list(estimators or []))
    params = {
        "space": space, "metric": metric, "protocol": protocol, "estimators": names,
        "epochs": [int(e) for e in epochs or []], "seeds": [int(s) for s in seeds or []],
    }  # fmt: skip
    rows = store.criteria_points(params)
    stats = store.group_stats({k: params[k] for k in ("space", "estimators", "epochs", "seeds")})
    threads = store.score_threads(space, names)
    out: list[GroupCriteria] = []
    if not len(rows["estimator"]):
        return out
    keys = list(zip(rows["estimator"], rows["config_hash"], rows["epoch"]))
    bounds = [0] + [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sl = slice(lo, hi)
        y = rows["truth"][sl].astype(float)
        if not bool(rows["truth_higher_is_better"][lo]):
            y = -y
        vals = compute_criteria(
            y, rows["score"][sl].astype(float), rows["truth_rank"][sl], rows["score_rank"][sl],
            bool(rows["higher_is_better"][lo]), ks,
        )  # fmt: skip
        key = (str(keys[lo][0]), str(keys[lo][1]), int(keys[lo][2]))
        failed, nonfinite, seconds, label, config = stats.get(key, (0, 0, None, None, None))
        seconds = float("nan") if seconds is None else seconds
        ts = tuple(sorted(threads.get(key, ()), key=lambda t: (t is None, t or 0)))
        out.append(GroupCriteria(*key, vals, int(failed), int(nonfinite), seconds, label, config, ts))
    return out
