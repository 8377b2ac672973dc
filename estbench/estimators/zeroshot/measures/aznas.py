"""AZ-NAS's three data measures (Lee & Ham, CVPR 2024; cvlab-yonsei/AZ-NAS @ 5e6683a,
``NB201/ZeroShotProxy/compute_az_nas_score.py``) over the ``az_blocks`` pass
(:mod:`..extra.aznas`): expressivity, progressivity, trainability. All higher-is-better;
a nan becomes -inf, as the reference's ``float(x) if not isnan(x) else -inf``. The
fourth, complexity, is the structural ``flops``; the rank-sum aggregate ``az_nas`` is a
derived estimator over stored scores, not a measure."""

from __future__ import annotations

import math

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, BlockStats

ENTROPY_EPS = 1e-8  # log(p + eps) in the entropy (the reference's; extra.aznas reads these)
SIGMA_EPS = 1e-6  # 1 / (sigma + eps) in the trainability term


def _finite_or_low(v: float) -> float:
    return -math.inf if math.isnan(v) else float(v)


@register_measure(
    "az_expressivity", needs="az_blocks", higher_is_better=True, settings=DATA_SETTINGS,
    constants={"entropy_eps": ENTROPY_EPS},
    description="AZ-NAS expressivity: sum over stem and cells of the spectral entropy of the channel covariance",
)  # fmt: skip
def az_expressivity(p: BlockStats) -> float:
    """sum_l E_l (``np.sum(expressivity_scores)``)."""
    return _finite_or_low(sum(p.entropies))


@register_measure(
    "az_progressivity", needs="az_blocks", higher_is_better=True, settings=DATA_SETTINGS,
    constants={"entropy_eps": ENTROPY_EPS},
    description="AZ-NAS progressivity: the smallest entropy increase between consecutive blocks",
)  # fmt: skip
def az_progressivity(p: BlockStats) -> float:
    """min_l (E_l - E_{l-1}) (``np.min`` of the consecutive differences: any nan gives
    nan, hence -inf). Needs at least two blocks."""
    e = p.entropies
    if len(e) < 2:
        raise ValueError(f"progressivity needs at least two feature blocks, got {len(e)}")
    diffs = [b - a for a, b in zip(e, e[1:])]
    return _finite_or_low(math.nan if any(map(math.isnan, diffs)) else min(diffs))


@register_measure(
    "az_trainability", needs="az_blocks", higher_is_better=True, settings=DATA_SETTINGS,
    constants={"sigma_eps": SIGMA_EPS},
    description="AZ-NAS trainability: mean over blocks of -s - 1/s + 2, s the top singular value of a random VJP",
)  # fmt: skip
def az_trainability(p: BlockStats) -> float:
    """mean_i t_i (``np.mean``: one -inf term, an identity block, gives -inf; a nan gives
    -inf; no pair at all gives the reference's nan, hence -inf)."""
    t = p.trainability
    return _finite_or_low(sum(t) / len(t) if t else math.nan)
