"""Frozen run configurations and the stable config hash that is part of every cache key.

Only the settings that change an estimator's value enter its hash (an estimator
declares them), so e.g. the batch size does not split the cache of ``params``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


def config_hash(settings: dict[str, Any]) -> str:
    """12 hex digits of SHA-1 over the canonical JSON of ``settings``."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ScoreConfig:
    """Everything `estbench score` can vary. Network shape fields left as None take the
    space's defaults (NB201: C=16, N=5, 10 classes, 32x32)."""

    space: str
    c: int | None = None
    n: int | None = None
    num_classes: int | None = None
    resolution: int | None = None
    seeds: tuple[int, ...] = (0,)
    chunk_size: int = 500
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def settings_for(self, names: tuple[str, ...], resolved: dict[str, Any]) -> dict[str, Any]:
        """The subset of (resolved) settings an estimator depends on, plus the space."""
        out = {"space": self.space}
        for n in names:
            out[n] = resolved[n]
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
