"""The typed score row and the one policy for values that are not plain finite numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

SCORE_COLUMNS = (
    "space", "arch_id", "estimator", "config_hash", "epoch", "seed", "batch",
    "value", "status", "detail", "elapsed_s", "run_id",
)  # fmt: skip


@dataclass(frozen=True)
class ScoreKey:
    """Everything but the batch that identifies a stored score."""

    space: str
    estimator: str
    config_hash: str
    epoch: int = 0
    seed: int = 0
    n_batches: int = 1  # how many batches a complete score has (0 .. n_batches - 1)


class ScoreRow(NamedTuple):
    """One stored score, in ``SCORE_COLUMNS`` order (a tuple: cheap to make and to bind)."""

    space: str
    arch_id: int
    estimator: str
    config_hash: str
    epoch: int
    seed: int
    batch: int
    value: float | None
    status: str  # ok | nonfinite | failed
    detail: str | None
    elapsed_s: float
    run_id: str | None

    @classmethod
    def of(
        cls,
        key: ScoreKey,
        arch_id: int,
        batch: int,
        value: float | None,
        elapsed_s: float,
        run_id: str | None,
        error: str | None = None,
    ) -> ScoreRow:
        """The row for one computed value. The policy, the same for every estimator: a
        failure is ``failed`` with the error in ``detail`` and no value; inf / -inf are
        kept with status ``nonfinite`` (DuckDB stores them); NaN is ``nonfinite`` with no
        value. ``detail`` of a non-finite value is its repr."""
        k = (key.space, int(arch_id), key.estimator, key.config_hash, key.epoch, key.seed, int(batch))
        if error is not None:
            return cls(*k, None, "failed", error, elapsed_s, run_id)
        v = float(value)
        if math.isfinite(v):
            return cls(*k, v, "ok", None, elapsed_s, run_id)
        return cls(*k, None if math.isnan(v) else v, "nonfinite", repr(v), elapsed_s, run_id)
