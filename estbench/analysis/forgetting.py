"""Multi-model forgetting (paper Sec. 5.3, Fig. A14) from the probes of
``estbench train --probe-forgetting N`` (table ``forgetting``).

A probe is one architecture trained at one step of an epoch; its forgetting value is
FV = acc_after_epoch - acc_after_step: its accuracy on the run's fixed probe batch after
the epoch's last step minus right after its own step. FV < 0: training the other
architectures of the epoch undid some of what this step taught it (forgetting); FV > 0:
they helped it (positive transfer). Store only, numpy; no torch."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from estbench.errors import BadInput

QUANTILES = (0.1, 0.5, 0.9)
SUMMARY_COLUMNS = (
    "epoch", "probes", "mean_fv", "std_fv", "min_fv", "q10_fv", "median_fv", "q90_fv", "max_fv", "neg_share",
    "zero_share", "acc_after_step", "acc_after_epoch",
)  # fmt: skip


def forgetting_values(acc_after_step: np.ndarray, acc_after_epoch: np.ndarray) -> np.ndarray:
    return np.asarray(acc_after_epoch, dtype=np.float64) - np.asarray(acc_after_step, dtype=np.float64)


def summarize(epoch: np.ndarray, acc_after_step: np.ndarray, acc_after_epoch: np.ndarray) -> dict[str, np.ndarray]:
    """Per epoch (ascending): probes, mean / std (population, ddof=0) / min / 10%, 50%,
    90% quantiles (numpy's linear interpolation) / max of FV, the share of probes with
    FV < 0 and FV = 0, and the mean accuracies after the step and after the epoch."""
    epoch = np.asarray(epoch)
    fv = forgetting_values(acc_after_step, acc_after_epoch)
    a1, a2 = np.asarray(acc_after_step, dtype=np.float64), np.asarray(acc_after_epoch, dtype=np.float64)
    epochs = np.unique(epoch)
    out: dict[str, list] = {c: [] for c in SUMMARY_COLUMNS}
    for e in epochs:
        m = epoch == e
        v = fv[m]
        q = np.quantile(v, QUANTILES)
        values = (
            int(e), int(m.sum()), v.mean(), v.std(), v.min(), q[0], q[1], q[2], v.max(), float(np.mean(v < 0)),
            float(np.mean(v == 0)), a1[m].mean(), a2[m].mean(),
        )  # fmt: skip
        for c, x in zip(SUMMARY_COLUMNS, values):
            out[c].append(x)
    return {c: np.asarray(v) for c, v in out.items()}


def load_forgetting(store, space: str, run: str, epochs: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """The probe rows of ``run`` (``Store.forgetting_rows``) plus column ``fv``. BadInput
    (one line) for a run the store does not know, a run without probes, and a requested
    epoch without probes."""
    probed = store.forgetting_epochs(space, run)
    if not probed:
        known = store.train_run_names(space)
        if run not in known:
            names = ", ".join(known) or "none"
            raise BadInput(f"no training run {run!r} for {space} in the store (known: {names})")
        raise BadInput(
            f"run {run!r} has no forgetting probes; train (or --resume) it with `estbench train --space {space} "
            f"--run {run} --probe-forgetting N`"
        )
    missing = sorted({int(e) for e in epochs or []} - set(probed))
    if missing:
        raise BadInput(
            f"run {run!r} has no forgetting probes at epoch {', '.join(map(str, missing))}; "
            f"probed epochs: {epoch_ranges(probed)}"
        )
    rows = store.forgetting_rows(space, run, epochs)
    rows["fv"] = forgetting_values(rows["acc_after_step"], rows["acc_after_epoch"])
    return rows


def epoch_ranges(epochs: Sequence[int]) -> str:
    """``1-5, 8, 10-11`` for [1, 2, 3, 4, 5, 8, 10, 11]."""
    parts: list[str] = []
    es = sorted(set(int(e) for e in epochs))
    i = 0
    while i < len(es):
        j = i
        while j + 1 < len(es) and es[j + 1] == es[j] + 1:
            j += 1
        parts.append(str(es[i]) if i == j else f"{es[i]}-{es[j]}")
        i = j + 1
    return ", ".join(parts)
