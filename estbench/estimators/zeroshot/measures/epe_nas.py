"""EPE-NAS (Lopes et al., ICANN 2021) as NAS-Bench-Suite-Zero computes it (automl/NASLib
@ 0b51bc1 ``naslib/predictors/utils/pruners/measures/epe_nas.py``): per-class
correlations of the input Jacobians. Shares ``input_grad`` with jacob_cov."""

from __future__ import annotations

from estbench.estimators.zeroshot.measure import register_measure
from estbench.estimators.zeroshot.plan import DATA_SETTINGS, InputGradient

EPE_K = 1e-5  # log(|corr| + k)
EPE_PAIRWISE_ABOVE = 100  # more logits than this: variant A (pairwise class differences)


@register_measure(
    "epe_nas", needs="input_grad", higher_is_better=True, settings=DATA_SETTINGS,
    constants={"k": EPE_K, "pairwise_above": EPE_PAIRWISE_ABOVE},
    description="sum over classes of |sum log(|corr| + 1e-5)| of the per-class input-Jacobian correlations (NASLib)",
)  # fmt: skip
def epe_nas(p: InputGradient) -> float:
    """J = d(sum of logits)/dx per image, flattened; rows grouped by the batch's label.
    Per class c: M_c = np.corrcoef(J_c) (one image: its 1-D row, corrcoef 1.0, or nan for
    a constant row), s_c = sum of log(|M_c| + k). With at most 100 logits (variant B):
    sum_c |s_c|. Above (A): s_c /= n_c, a one-image class skipped (the reference's
    ``len()`` of a 0-d array raises inside its try), then sum over class pairs of
    |s_c - s_c'| / (classes kept), 0 when none is kept (NASLib HEAD; the 2022 code that
    wrote the peer file got nan there).

    nan as in NASLib: a constant Jacobian row (a network whose output ignores its input)
    makes corrcoef nan and the score nan (NASLib's runner then stores -1e8). NASLib
    passes n_classes = the logit count, the EPE-NAS authors always used B."""
    import numpy as np

    if p.labels is None:
        raise ValueError("epe_nas needs the batch's labels (InputGradient.labels)")
    jac = p.jacobian.detach().to("cpu").double().numpy()
    jac = jac.reshape(len(jac), -1)
    labels = p.labels.detach().to("cpu").numpy()
    pairwise = p.n_classes > EPE_PAIRWISE_ABOVE
    scores: list[float] = []
    with np.errstate(all="ignore"):
        for c in dict.fromkeys(labels.tolist()):  # classes in order of first appearance
            rows = jac[labels == c]
            if pairwise and len(rows) < 2:
                continue
            corr = np.corrcoef(rows[0] if len(rows) == 1 else rows)
            s = float(np.sum(np.log(np.abs(corr) + EPE_K)))
            scores.append(s / len(corr) if pairwise else s)
    if not pairwise:
        return float(sum(abs(s) for s in scores))
    if not scores:
        return 0.0
    return float(sum(abs(a - b) for a in scores for b in scores) / len(scores))
