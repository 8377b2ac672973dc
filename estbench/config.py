"""The stable config hash that is part of every cache key.

Only the settings that change an estimator's value enter its hash (an estimator
declares them), so e.g. the batch size does not split the cache of ``params``. The
frozen configs themselves live next to the code they drive: ``runs.ScoreRequest``,
``runs.zeroshot.ZeroShotConfig``, ``runs.oneshot.OneShotEval`` and
``estimators.oneshot.train.TrainConfig``."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def config_hash(settings: dict[str, Any]) -> str:
    """12 hex digits of SHA-1 over the canonical JSON of ``settings``."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]
