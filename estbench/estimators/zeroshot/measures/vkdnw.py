"""VKDNW (Tybl & Neumann, CVPR 2025; github:ondratybl/VKDNW
``NB201/ZeroShotProxy/compute_vkdnw_score.py``, ``compute_nas_score``): the entropy of the
deciles of the Fisher spectrum from the ``vkdnw`` pass (:class:`..plan.LogitFisher`,
computed in :mod:`..extra.vkdnw`), and the paper's single-proxy ranking VKDNW_single.

The paper's setting: ``--weights kaiming-fanin`` (its ``init_model``; the default init
gives a near-zero spectrum as eval BN does not rescale), Gaussian-noise input, batch 64,
one batch. Deviations, all small: F and its SVD in float64 (the reference: float32,
whose low deciles are rounding noise), alpha exactly 0.05 (an fp16 0.049988 there, so
its pi sums to 1.0002); on three NB201 archs H moved by <= 5e-4. The aggregate VKDNW_agg
(a sum of log ranks of several proxies over a population) is a derived estimator, not a
per-architecture formula, so it is not registered here."""

from __future__ import annotations

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import LogitFisher

CONSTANTS = {"params_grad_len": 128, "alpha": 0.05}  # extra.vkdnw.PARAMS_GRAD_LEN, ALPHA
ALEPH_WEIGHT = 3  # > ln 9, the largest entropy of 9 deciles


def decile_entropy(p: LogitFisher) -> float:
    """H = -sum_k t_k log(t_k + 1e-10), t = q / (sum |q| + 1e-10), q = the 9 deciles
    (0.1, ..., 0.9, linear interpolation, ``torch.quantile``) of the eigenvalues. Zero
    eigenvalues (a failed SVD gives zeros(2), as the reference) give H = 0."""
    import torch

    lam = p.eigenvalues.detach().to(torch.float64)
    # the reference's levels: float32 arange(0.1, 1., 0.1)
    q = torch.quantile(lam, torch.arange(0.1, 1.0, 0.1).to(lam))
    t = q / (q.abs().sum() + 1e-10)
    return float(-(t * torch.log(t + 1e-10)).sum()) + 0.0  # + 0.0: no -0.0


@register_measure(
    "vkdnw", needs="vkdnw", higher_is_better=True, constants=CONSTANTS,
    description="entropy of the L1-normalised deciles of the logit-Fisher spectrum w.r.t. entry 0 of the "
    "first 128 parameter tensors (eval BN as built)",
)  # fmt: skip
def vkdnw(p: LogitFisher) -> float:
    """VKDNW's ``vkdnw_entropy`` (:func:`decile_entropy`), in [0, ln 9]."""
    return decile_entropy(p)


@register_measure(
    "vkdnw_single", needs="vkdnw", higher_is_better=True, constants=CONSTANTS,
    description="3 * aleph + vkdnw, aleph = number of parameter tensors: sorts as the paper's dense rank of "
    "(aleph, vkdnw)",
)  # fmt: skip
def vkdnw_single(p: LogitFisher) -> float:
    """VKDNW_single: the paper ranks networks by the dense rank of the pair (aleph, H),
    ascending and lexicographic (``vkdnw_dim``, ``vkdnw_entropy``), aleph = the number
    of parameter tensors of the network (``len(list(model.named_parameters()))``; on
    NB201 21 + 45 k, k = the cell's conv edges). As aleph is an integer and 0 <= H <=
    ln 9 < 3, 3 * aleph + H orders any population exactly as that rank (and as its log),
    so rank correlations are the same; the value itself is not the rank, which depends
    on the population."""
    return ALEPH_WEIGHT * p.n_tensors + decile_entropy(p)
