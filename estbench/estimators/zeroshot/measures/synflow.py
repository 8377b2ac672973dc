"""synflow and synflow_bn: data-free, on the absolute float64 network and an all-ones
image (computed for batch 0 only; neither the data settings nor dtype change them)."""

from __future__ import annotations

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_FREE_SETTINGS, SynflowGradients
from estbench.estimators.zeroshot.reduce import total


def synflow_formula(p: SynflowGradients) -> float:
    """Sum of |w * dR/dw| with w the absolute (float64) weights (``synflow.py``). float64
    is needed: the BN-free NB201 network reaches ~1e50, beyond float32's range."""
    return total([(w * g).abs().sum() for w, g in zip(p.weights, p.grads) if g is not None])


register_measure(
    "synflow", synflow_formula, needs="synflow", higher_is_better=True, settings=DATA_FREE_SETTINGS,
    description="sum of |w * dR/dw|, R = sum of the output of the BN-free |w| network on ones",
)  # fmt: skip
register_measure(
    "synflow_bn", synflow_formula, needs="synflow_bn", higher_is_better=True, settings=DATA_FREE_SETTINGS,
    description="synflow with BatchNorm kept (train mode, batch statistics)",
)  # fmt: skip
