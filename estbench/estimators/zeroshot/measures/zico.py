"""ZiCo (Li et al., ICLR 2023; github:SLDGroup/ZiCo @ b0fec65,
``ZeroShotProxy/compute_zico.py``): the inverse coefficient of variation of the CE
weight gradients across batches. An all-batches measure on the CE pass (no extra
torch work: the per-batch CEGradients are the gradients the reference collects)."""

from __future__ import annotations

import math

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, CEGradients


@register_measure(
    "zico", needs="ce_backward", all_batches=True, min_batches=2, higher_is_better=True, settings=DATA_SETTINGS,
    description="sum over conv/linear layers of log sum_w mean_b|g| / std_b(g) of the CE gradients across batches",
)  # fmt: skip
def zico(outputs: list[CEGradients]) -> float:
    """Per conv/linear layer l, G_l = the N batches' dL/dw (mean CE), flattened, [N,
    numel]: sd = population std over the batches (``np.std``, ddof 0), ma = mean |G_l|;
    s_l = sum of ma / sd over the weights with sd != 0; ZiCo = sum over layers with
    s_l != 0 of ln(s_l) (``caculate_zico``). A weight whose gradient is the same in every
    batch (0 behind a ``none`` edge) is left out, a layer made only of such weights adds
    0, a nan gradient gives nan.

    With fewer than 2 batches every sd is 0 and the reference returns 0.0 for every
    architecture: that is refused here (ValueError, recorded as an error). Deviations: a
    layer with no gradient (None: on no path to the loss) in any batch is skipped, as
    MeCo's copy of ZiCo does (the original crashes); float64 instead of float32."""
    if len(outputs) < 2:
        raise ValueError("zico needs at least 2 batches (--batches 2)")
    import torch

    total = 0.0
    for i in range(len(outputs[0].grads)):
        grads = [o.grads[i] for o in outputs]
        if any(g is None for g in grads):
            continue
        g = torch.stack([x.reshape(-1) for x in grads]).to(torch.float64)
        sd = (g - g.mean(dim=0)).pow(2).mean(dim=0).sqrt()  # np.std's two passes (5x faster than torch.std here)
        ma = g.abs().mean(dim=0)
        keep = sd != 0
        s = float((ma[keep] / sd[keep]).sum())
        if s != 0:
            total += math.log(s) if s > 0 else math.nan  # s is a sum of ratios >= 0 (or nan)
    return total
