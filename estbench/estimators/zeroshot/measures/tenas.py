"""TE-NAS (Chen et al., ICLR 2021; github:VITA-Group/TENAS @ 9df78ff): the condition
number of the NTK (``lib/procedures/ntk.py::get_ntk_n``) and the number of linear
regions of the thin network (``lib/procedures/linear_region_counter.py``). The rank-sum
``tenas`` combination of the two is a derived estimator, not a measure.

The passes are :func:`..extra.tenas.ntk` and :func:`..extra.tenas.linear_regions`."""

from __future__ import annotations

import math

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, NTKGram, RegionCount

# linear_regions' sampling (the reference's LR loader: RandomCrop(3), RandChannel(1),
# batch 1000, sample_batch 3); read by the pass, they enter the cache key
LR_CROPS = 3000  # samples per count
LR_CROP = 3  # crop side (one channel)
LR_CROP_BATCH = 1000  # samples per train-mode forward (the BN statistics of each batch)

# what changes the region count: which images the crops come from (batch size, input,
# resolution) and the dtype of the forward; the thin network is rebuilt from the seed
# with PyTorch's default init whatever --weights says (as in the reference, whose
# init_model is a no-op), and at C=1 whatever c / n / num_classes are
LR_SETTINGS = ("batch_size", "n_batches", "input", "dtype", "resolution")


@register_measure(
    "ntk_cond", needs="ntk", higher_is_better=False, settings=DATA_SETTINGS,
    description="condition number lambda_max / lambda_min of the NTK Gram J J^T of the summed logits (TE-NAS)",
)  # fmt: skip
def ntk_cond(p: NTKGram) -> float:
    """kappa = lambda_max / lambda_min of K = J J^T (``get_ntk_n``: ``torch.symeig`` of the
    fp32 Gram, then ``np.nan_to_num(kappa, nan=100000.0)``). Lower is better.

    Deviations: the eigenvalues come from ``eigvalsh`` of the float64 Gram; a K whose
    smallest eigenvalue is not positive (K = 0 for an output that ignores the weights,
    or round-off making a singular K's lambda_min <= 0) or a non-finite K / kappa gives
    nan, where the reference returns 1e5 for 0/0, ~1.8e308 for x/0 and a negative kappa
    for lambda_min < 0 (which would rank the worst network best)."""
    import numpy as np

    k = p.kernel.detach().double().cpu().numpy()
    if k.size == 0 or not np.all(np.isfinite(k)):
        return math.nan
    ev = np.linalg.eigvalsh(k)
    lo, hi = float(ev[0]), float(ev[-1])
    if not lo > 0.0:
        return math.nan
    kappa = hi / lo
    return kappa if math.isfinite(kappa) else math.nan


@register_measure(
    "linear_regions", needs="linear_regions", higher_is_better=True, settings=LR_SETTINGS,
    constants={"crops": LR_CROPS, "crop": LR_CROP, "crop_batch": LR_CROP_BATCH},
    description="distinct ReLU activation patterns of the thin (C=1) cell on 3000 one-channel 3x3 crops (TE-NAS)",
)  # fmt: skip
def linear_regions(p: RegionCount) -> float:
    """n_LR: the number of distinct activation patterns among the crops (the reference's
    sum over samples of 1 / #identical rows of its A(1-A)^T Hamming matrix, an exact
    integer here). Higher is better."""
    return float(p.distinct)
