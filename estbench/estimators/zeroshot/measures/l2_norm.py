"""l2_norm (NAS-Bench-Suite-Zero, automl/NASLib
``naslib/predictors/utils/pruners/measures/l2_norm.py``): the Frobenius norms of the
weights as initialised. Data-free, no forward (the ``weights`` pass)."""

from __future__ import annotations

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import Weights
from estbench.estimators.zeroshot.reduce import total

# Only the built weights change it: not the data, the resolution (no space's build takes
# it) nor the dtype (the build draws in float32, the norms are taken in float64).
L2_SETTINGS = ("init", "c", "n", "num_classes")


@register_measure(
    "l2_norm", needs="weights", higher_is_better=True, settings=L2_SETTINGS,
    description="sum over conv/linear layers of the Frobenius norm of the weight as initialised",
)  # fmt: skip
def l2_norm(p: Weights) -> float:
    """Sum over conv/linear layers (``modules()`` order) of ||W||_F (``l.weight.norm()``,
    summed by ``find_measures``; weights only: no biases, no BN), in float64."""
    import torch

    return total([w.detach().to(torch.float64).norm() for w in p.weights])
