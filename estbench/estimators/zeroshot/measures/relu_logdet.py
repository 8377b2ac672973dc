"""relu_logdet (NASWOT): log|K| of the ReLU binary-code kernel."""

from __future__ import annotations

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, ReluCodes


@register_measure(
    "relu_logdet", needs="relu_forward", higher_is_better=True, settings=DATA_SETTINGS,
    description="log|K| of the ReLU binary-code kernel (NASWOT)",
)  # fmt: skip
def relu_logdet(p: ReluCodes) -> float:
    """log|K| (``relu_logdet.py`` returns ``np.linalg.slogdet(K)[1]`` whatever the sign; K
    is a sum of Gram matrices, so the sign is +1, or 0 with logdet -inf when singular)."""
    import numpy as np

    _, logdet = np.linalg.slogdet(np.asarray(p.kernel.cpu().numpy(), dtype=np.float64))
    return float(logdet)
