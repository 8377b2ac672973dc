"""fisher: channel saliency from the layer outputs tapped during the CE backward."""

from __future__ import annotations

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, CEGradients
from estbench.estimators.zeroshot.reduce import total


@register_measure(
    "fisher", needs="ce_backward", uses=("fisher",), higher_is_better=True, settings=DATA_SETTINGS,
    description="sum over conv/linear output channels of fan_in * 0.5 * mean_batch(sum_spatial(act * dL/dact))^2",
)  # fmt: skip
def fisher(p: CEGradients) -> float:
    """Per conv/linear layer, (fan_in, [g_nk per call]) with g_nk = sum_spatial(act *
    dL/dact) at the layer's output (``fisher.py`` hook). Per output channel k:
    0.5 * mean_n(g_nk^2), summed over calls; the reference then broadcasts each channel
    value over the channel's weights (``reshape_elements``), so it enters the total
    fan_in times (fan_in = weight.shape[1:].numel())."""
    terms = []
    for fan_in, calls in p.fisher or []:
        if calls:
            per_channel = sum(0.5 * g_nk.pow(2).mean(0) for g_nk in calls)
            terms.append(per_channel.abs().sum() * fan_in)
    return total(terms)
