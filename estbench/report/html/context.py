"""The report context: the options of one report and cached reads of the store that
several sections share (point sets, criteria groups), so 15,625 archs x 20 estimators
are loaded once, not once per section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from estbench.store.store import Store


@dataclass
class ReportContext:
    st: Store
    space: str
    truth: str
    protocol: str = "deiso"
    post_deiso: bool = False
    estimators: list[str] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    ci: float | None = None
    resamples: int = 1000
    ci_seed: int = 0
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def cached(self, key: Any, make):
        """``make()`` once per ``key`` for this report."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def points(
        self,
        estimators: list[str] | None = None,
        epochs: list[int] | None = None,
        seeds: list[int] | None = None,
        truth: str | None = None,
    ) -> list:
        """``load_points`` of the report's protocol; ``None`` means the report's own filter."""
        from estbench.analysis.points import load_points

        est = list(self.estimators if estimators is None else estimators)
        ep = list(self.epochs if epochs is None else epochs)
        sd = list(self.seeds if seeds is None else seeds)
        metric = truth or self.truth
        if (metric, est, ep, sd) == (self.truth, self.estimators, self.epochs, self.seeds):
            return [g.points for g in self.groups()]  # the criteria groups hold the same point sets
        key = ("points", metric, tuple(est), tuple(ep), tuple(sd))
        return self.cached(
            key, lambda: load_points(self.st, self.space, metric, self.protocol, est, ep, sd, self.post_deiso)
        )

    def groups(self) -> list:
        """Criteria groups (``evaluate``) of the report's filter, at K = 5% (with
        bootstrap intervals when ``ci``, for the groups with enough points for one), every epoch."""

        def make():
            from estbench.analysis.evaluate import evaluate

            groups = evaluate(
                self.st, self.space, self.truth, self.protocol, self.estimators, self.epochs, self.seeds,
                (0.05,), self.post_deiso,
            )  # fmt: skip
            if self.ci is not None and groups:
                from estbench.analysis.bootstrap import MIN_POINTS, add_intervals

                add_intervals([g for g in groups if len(g.points) >= MIN_POINTS], (0.05,), self.ci,
                              self.resamples, self.ci_seed)  # fmt: skip
            return groups

        return self.cached("groups", make)

    def final_groups(self) -> list:
        """Criteria groups at the last scored epoch of each (estimator, config), or every
        asked --epoch: the estimators as they end (the paper's tables use final supernets)."""
        return _final(self.groups(), bool(self.epochs))

    def final_points(self) -> list:
        """Point sets at the last scored epoch of each (estimator, config) (every asked --epoch)."""
        return _final(self.points(), bool(self.epochs))

    def space_obj(self):
        """The registered search space, or None (a store of a space this install lacks)."""
        from estbench.spaces import find_space

        return self.cached("space", lambda: find_space(self.space))

    def option_text(self) -> str:
        """The report's selection, for the page header."""
        from estbench.report.tables import protocol_title, truth_title

        bits = [f"space {self.space}", truth_title(self.st, self.space, self.truth),
                protocol_title(self.protocol, self.post_deiso)]  # fmt: skip
        if self.estimators:
            bits.append("estimators " + ", ".join(self.estimators))
        if self.epochs:
            bits.append("epochs " + ", ".join(map(str, self.epochs)))
        if self.seeds:
            bits.append("seeds " + ", ".join(map(str, self.seeds)))
        if self.ci is not None:
            bits.append(f"{self.ci:g}% bootstrap intervals ({self.resamples} resamples, seed {self.ci_seed})")
        return "; ".join(bits)


def _final(items: list, keep_all: bool) -> list:
    if keep_all:
        return list(items)
    last: dict[tuple[str, str], int] = {}
    for g in items:
        key = (g.estimator, g.config_hash)
        last[key] = max(last.get(key, g.epoch), g.epoch)
    return [g for g in items if g.epoch == last[(g.estimator, g.config_hash)]]
