"""Weight-gradient measures on the CE backward: grad_norm, plain, snip."""

from __future__ import annotations

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, CEGradients
from estbench.estimators.zeroshot.reduce import total


@register_measure(
    "grad_norm", needs="ce_backward", higher_is_better=True, settings=DATA_SETTINGS,
    description="sum over conv/linear layers of the L2 norm of the CE weight gradient",
)  # fmt: skip
def grad_norm(p: CEGradients) -> float:
    """Sum over layers of the L2 norm of each layer's whole weight gradient
    (``grad_norm.py``: ``l.weight.grad.norm()`` per layer, then summed)."""
    return total([g.norm() for g in p.grads if g is not None])


# The paper's figure/table script (aw_nas examples/research/surgery, fig4) negates plain
# before ranking, i.e. it treats plain as lower-is-better.
@register_measure(
    "plain", needs="ce_backward", higher_is_better=False, settings=DATA_SETTINGS,
    description="signed sum of w * dL/dw over conv/linear weights",
)  # fmt: skip
def plain(p: CEGradients) -> float:
    """Signed sum of w * dL/dw (``plain.py``)."""
    return total([(w * g).sum() for w, g in zip(p.weights, p.grads) if g is not None])


@register_measure(
    "snip", needs="ce_backward", higher_is_better=True, settings=DATA_SETTINGS,
    description="sum of |w * dL/dw| over conv/linear weights",
)  # fmt: skip
def snip(p: CEGradients) -> float:
    """Sum of |w * dL/dw|. The reference differentiates w.r.t. a ones mask on each weight
    (``snip.py``), whose gradient is exactly w * dL/dw."""
    return total([(w * g).abs().sum() for w, g in zip(p.weights, p.grads) if g is not None])
