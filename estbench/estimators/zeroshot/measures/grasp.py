"""grasp: the Hessian-gradient product."""

from __future__ import annotations

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, HessianGradients
from estbench.estimators.zeroshot.reduce import total


@register_measure(
    "grasp", needs="grasp", higher_is_better=True, settings=DATA_SETTINGS,
    description="signed sum of -w * (H g) over conv/linear weights (Hessian-gradient)",
)  # fmt: skip
def grasp(p: HessianGradients) -> float:
    """Signed sum of -w * (H g) (``grasp.py``: ``-layer.weight.data * layer.weight.grad``
    after ``z.backward()``)."""
    return total([(-w * h).sum() for w, h in zip(p.weights, p.hessian_grads) if h is not None])
