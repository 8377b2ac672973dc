"""MeCo (Jiang et al., NeurIPS 2023; github:HamsterMimi/MeCo @ 0d830dd,
``correlation/NAS_Bench_201.py::get_score`` with ``measure='meco'``): the sum over the
module calls of a one-image forward of the smallest eigenvalue of each output's channel
correlation matrix. The pass is :func:`..extra.meco.meco`. MeCo_opt (8 random channels
per call) is not implemented."""

from __future__ import annotations

import math

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, ModuleCorrelations


# What changes it: which image is x[0] of each batch (batch_size, n_batches, input,
# resolution), the weights (init, c, n; num_classes only through the draw order of a
# network building its classifier before its convs) and the forward's dtype.
@register_measure(
    "meco", needs="meco", higher_is_better=True, settings=DATA_SETTINGS,
    description="sum over module calls of the min eigenvalue of the channel correlation of the output (one image)",
)  # fmt: skip
def meco(p: ModuleCorrelations) -> float:
    """Sum of lambda_min over every module call of the train-mode forward of the batch's
    first image, nan and inf terms dropped (the reference's ``results[~isnan]``,
    ``[~isinf]``; after the zeroing of corr's non-finite entries no term is non-finite).
    Every module is hooked, so a tensor output by nested modules (a ReLUConvBN and its
    BN) counts once per module, as in the reference; its sums therefore depend on how a
    network's code nests its modules (estbench's NB201 ReLUConvBN is a Sequential: BN
    outputs count twice, the reference's three times)."""
    return float(math.fsum(v for v in p.min_eigenvalues if math.isfinite(v)))
