"""Zero-shot estimators (ZSEs): proxies computed on a randomly initialised network.

``SPECS`` is the metadata the estimator registry reads (``estbench.estimators``); it is
plain data so that listing estimators never imports torch. Each name is registered with
the target ``estbench.estimators.zeroshot.measures:<name>``, a pure function
``(net, x, y) -> float``. Bulk scoring goes through ``engine.run_measures``, which runs
every pass a suite needs once per (architecture, batch) and feeds all measures from it.

Passes (``needs``):

- ``ce_backward``: one cross-entropy forward + backward (grad_norm, plain, snip, fisher)
- ``grasp``: a Hessian-gradient product on top of the CE pass (grasp)
- ``input_grad``: the gradient of the summed logits w.r.t. the input (jacob_cov)
- ``relu_forward``: a forward with hooks on every ReLU (relu_logdet)
- ``synflow`` / ``synflow_bn``: a float64 all-ones forward + backward on |weights|,
  without / with BatchNorm (data-independent)

``vote`` (the paper's ensemble of the best experts) is not a per-architecture measure: a
rank needs the whole population, so it is computed at analysis time from the stored
scores of its experts and is deliberately absent from ``SPECS`` (see ``DERIVED``).
"""

# Settings that change a data-dependent value (they enter the config hash).
_DATA = ("batch_size", "n_batches", "input", "init", "dtype", "c", "n", "num_classes", "resolution")
# synflow ignores the batch (all-ones input of the batch's image shape) and always runs
# in float64, so neither the data settings nor dtype change its value.
_DATA_FREE = ("init", "c", "n", "num_classes", "resolution")


def _spec(higher_is_better: bool, needs: str, settings: tuple[str, ...], description: str) -> dict:
    return {"higher_is_better": higher_is_better, "needs": needs, "settings": settings, "description": description}


SPECS: dict[str, dict] = {
    "grad_norm": _spec(
        True, "ce_backward", _DATA, "sum over conv/linear layers of the L2 norm of the CE weight gradient"
    ),
    # The paper's figure/table script (aw_nas examples/research/surgery, fig4) negates
    # plain before ranking, i.e. it treats plain as lower-is-better.
    "plain": _spec(False, "ce_backward", _DATA, "signed sum of w * dL/dw over conv/linear weights"),
    "snip": _spec(True, "ce_backward", _DATA, "sum of |w * dL/dw| over conv/linear weights"),
    "fisher": _spec(
        True,
        "ce_backward",
        _DATA,
        "sum over conv/linear output channels of fan_in * 0.5 * mean_batch(sum_spatial(act * dL/dact))^2",
    ),
    "grasp": _spec(True, "grasp", _DATA, "signed sum of -w * (H g) over conv/linear weights (Hessian-gradient)"),
    "synflow": _spec(
        True, "synflow", _DATA_FREE, "sum of |w * dR/dw|, R = sum of the output of the BN-free |w| network on ones"
    ),
    "synflow_bn": _spec(True, "synflow_bn", _DATA_FREE, "synflow with BatchNorm kept (train mode, batch statistics)"),
    "jacob_cov": _spec(
        True, "input_grad", _DATA, "-sum(log(v + k) + 1/(v + k)) over eigenvalues v of the input-Jacobian correlation"
    ),
    "relu_logdet": _spec(True, "relu_forward", _DATA, "log|K| of the ReLU binary-code kernel (NASWOT)"),
}

# Computed at analysis time from the stored scores of other estimators, never by the
# engine; kept here so the metadata lives next to its experts'.
DERIVED: dict[str, dict] = {
    "vote": {
        "higher_is_better": True,
        "needs": "analysis",
        "settings": (),
        "description": "ensemble of expert ZSEs (NB201: relu_logdet, jacob_cov, synflow), ranked over the population",
    },
}
