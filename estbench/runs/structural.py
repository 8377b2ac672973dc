"""Structural scoring: data-free facts of the standalone network (params, FLOPs, ReLUs)."""

from __future__ import annotations

from estbench.estimators import ESTIMATORS
from estbench.runs.loop import Group, record_config, timed
from estbench.spaces.base import SearchSpace
from estbench.store import ScoreKey, ScoreRow, Store


class StructuralJob:
    """One group per estimator; each row is ``fn(space, arch, **shape)``."""

    def __init__(self, store: Store, space: SearchSpace, names: list[str], shape: dict, chunk_size: int = 5000):
        self.space, self.chunk_size = space, chunk_size
        self.shape = vars(space.shape(**shape))
        self.strs = store.arch_strings(space.name)
        self.keys = {}
        for name in names:
            settings = {"space": space.name, **{k: self.shape[k] for k in ESTIMATORS.meta(name)["settings"]}}
            self.keys[name] = (ScoreKey(space.name, name, record_config(store, name, settings)), settings)
        self.name = ",".join(names)
        self.config = {"estimators": {n: k.config_hash for n, (k, _) in self.keys.items()}, **self.shape}

    def groups(self) -> list[Group]:
        return [Group(name, [key]) for name, (key, _) in self.keys.items()]

    def prepare(self, group: Group) -> None:
        group.context["fn"] = ESTIMATORS.get(group.keys[0].estimator)

    def compute(self, group: Group, arch_id: int, keys: list[ScoreKey], run_id: str) -> list[ScoreRow]:
        fn, arch = group.context["fn"], self.space.parse(self.strs[arch_id])
        value, seconds, error = timed(lambda: fn(self.space, arch, **self.shape))
        return [ScoreRow.of(keys[0], arch_id, 0, value, seconds, run_id, error)]
