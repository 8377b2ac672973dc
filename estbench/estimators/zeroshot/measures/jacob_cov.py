"""jacob_cov: the correlation of the per-image input gradients (Mellor et al.)."""

from __future__ import annotations

import math

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, InputGradient

JACOB_K = 1e-5  # the reference's k in -sum(log(v + k) + 1 / (v + k))


@register_measure(
    "jacob_cov", needs="input_grad", higher_is_better=True, settings=DATA_SETTINGS,
    description="-sum(log(v + k) + 1/(v + k)) over eigenvalues v of the input-Jacobian correlation",
)  # fmt: skip
def jacob_cov(p: InputGradient, k: float = JACOB_K) -> float:
    """-sum(log(v + k) + 1/(v + k)) over the eigenvalues v of the correlation matrix of
    the per-image input gradients (``jacob_cov.py``).

    Deviation: the reference uses the general solver ``np.linalg.eig``; the correlation
    matrix is symmetric, so we use ``np.linalg.eigvalsh`` (real eigenvalues by
    construction, same values up to rounding). A non-finite correlation (an image with a
    constant gradient, e.g. a network whose output ignores its input) gives nan, as the
    reference's ``except: nan`` does."""
    import numpy as np

    jac = p.jacobian.double().cpu().numpy()
    jac = jac.reshape(len(jac), -1)
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jac)
        if not np.all(np.isfinite(corr)):
            return math.nan
        v = np.linalg.eigvalsh(corr)
        return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))
