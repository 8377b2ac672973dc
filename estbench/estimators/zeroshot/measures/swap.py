"""SWAP (Peng et al., ICLR 2024; github:pym1024/SWAP @ f6049f7, ``src/metrics/swap.py``):
the number of distinct sample-wise activation patterns. The pass is ``relu_patterns``
(:class:`..passes.PatternTap` on the shared train-mode forward).

The regularised score (SWAP * exp(-(P/1e3 - mu)^2 / sigma)) is not registered: the
authors' code ships only a DARTS script and neither repository (nor any source read for
issue 15) gives their NB201 mu and sigma."""

from __future__ import annotations

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, ReluPatterns


@register_measure(
    "swap", needs="relu_patterns", higher_is_better=True, settings=DATA_SETTINGS,
    description="distinct per-neuron activation patterns (output > 0 over the batch) of every 4-D nn.ReLU call",
)  # fmt: skip
def swap(p: ReluPatterns) -> float:
    """The number of distinct rows of the [neurons, batch] sign matrix of every
    ``nn.ReLU`` call with a 4-D input (a neuron: one (call, channel, h, w); the
    reference's ``torch.unique(sign(A).T, dim=0)``), at most min(2^batch, neurons).

    Deviations: the batch is the run's (the reference's DARTS script: 16 images; at 16
    every NB201 arch with a conv lies within 0.2% of 2^16, so the run's 64 is more
    informative), on the network's own init (the reference averages 32 N(0, 1)
    re-initialisations; estbench averages over seeds)."""
    return float(p.distinct)
