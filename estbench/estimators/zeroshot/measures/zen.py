"""Zen-NAS's zen score (Lin et al., ICCV 2021; idstcv/ZenNAS @ d1d617e, as NASLib runs it
on NB201): data-free, on a Gaussian re-initialised copy fed Gaussian noise. The pass is
:func:`..extra.zen.zen`."""

from __future__ import annotations

import math

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import NOISE_SETTINGS, ZenFeatures

ZEN_GAMMA = 1e-2  # mixup_gamma: x' = x + gamma * e (read by the pass; enters the cache key)


# What changes it: the batch's shape (batch_size, resolution), the architecture's
# widths (c, n, num_classes) and which network (init: fresh or a supernet candidate;
# every weight is re-drawn); not the data (noise) nor dtype (always float32).
@register_measure(
    "zen", needs="zen", higher_is_better=True, settings=NOISE_SETTINGS, constants={"gamma": ZEN_GAMMA, "repeat": 1},
    description="log E|f(x) - f(x + 0.01 e)| of the pre-pool features + sum of BN log sqrt(mean running_var) (N(0,1) init)",
)  # fmt: skip
def zen(p: ZenFeatures) -> float:
    """log(Delta) + sum over BatchNorm2d of log sqrt(mean_c running_var) (NASLib's
    ``compute_zen_score``, repeat 1). A network whose features ignore the input has
    Delta = 0 and zen = -inf (NASLib stores its -1e8 sentinel)."""
    d = p.feature_distance
    if math.isnan(d):
        return math.nan
    return (math.log(d) if d > 0 else -math.inf) + p.log_bn_scale
