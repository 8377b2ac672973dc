"""Zero-shot estimators (ZSEs): proxies computed on a randomly initialised network.

A measure is a formula over what one pass produced, registered next to that formula
with :func:`register_measure` (``measures/``: one module per family). Its metadata (the
pass it ``needs``, ``higher_is_better``, the ``settings`` that change its value,
``data_free``, ``all_batches``) lands in ``estbench.estimators.ESTIMATORS`` and is all
the engine plans from: ``engine.run_measures`` runs each pass a set of measures needs
once per (architecture, batch) and feeds every measure from it (``engine.run_all_batches``
for measures that need all batches at once).

Passes (``needs``; what they produce is in :mod:`.plan`):

- ``ce_backward``: one cross-entropy forward + backward (grad_norm, plain, snip, fisher)
- ``grasp``: a Hessian-gradient product on top of the CE pass (grasp)
- ``input_grad``: the gradient of the summed logits w.r.t. the input (jacob_cov)
- ``relu_forward``: a forward with hooks on every ReLU (relu_logdet)
- ``synflow`` / ``synflow_bn``: a float64 all-ones forward + backward on |weights|,
  without / with BatchNorm (data-free: batch 0 only)

Importing this package (and registering measures) imports no torch: the metadata lives
in :mod:`.plan` and :mod:`.measure`, and formulas import torch when they run, so
``estbench list estimators`` and analyses stay torch-free. ``vote`` (the paper's
ensemble of experts) is not a measure: it is a derived estimator computed from stored
scores, registered in ``estbench.estimators``."""

from estbench.estimators.zeroshot.measure import Measure, get_measure, measure_names, register_measure
from estbench.estimators.zeroshot.plan import DATA_FREE_SETTINGS, DATA_SETTINGS

# The paper's nine measures (its Table A9 zero-shot rows with vote): `score --zse paper`,
# the suite of benchmarks/cuda_check.py and bench_gpu.py.
PAPER_MEASURES = ("grad_norm", "plain", "snip", "fisher", "grasp", "synflow", "synflow_bn", "jacob_cov", "relu_logdet")

__all__ = [
    "DATA_FREE_SETTINGS", "DATA_SETTINGS", "PAPER_MEASURES", "Measure", "get_measure", "measure_names",
    "register_measure",
]  # fmt: skip
