"""Architecture-level bias (paper Sec. 5.2 "Arch-level Bias", Fig. 6, A25-A28, B.2):
the architectures an estimator ranks best and worst, next to what they truly are.

For one point set (an estimator group against a truth metric; ranks 1 = best among
its M points), the top-k are the points with estimated rank 1 .. k (best first), the
bottom-k those with estimated rank M .. M-k+1 (worst first); k is clipped to M, so
with 2k > M a point can be in both. Each is described by its representative
architecture (the smallest scored arch id of the point): its string, the op counts of
the space (``SearchSpace.op_counts``), its params / FLOPs (stored structural scores)
and the size of its isomorphism class; what is shown beside it (true rank among the
same M points, truth, score) comes from the point set. Everything is numpy; no torch."""

from __future__ import annotations

import numpy as np

WHICH = ("top", "bottom", "both")


def extremes(score_rank, k: int, which: str = "both") -> tuple[np.ndarray, np.ndarray]:
    """Positions of the top-k (estimated rank 1 .. k, best first) and/or bottom-k
    (rank M .. M-k+1, worst first) points, and the label ("top" / "bottom") of each."""
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}")
    if k < 1:
        raise ValueError("k must be at least 1")
    sr = np.asarray(score_rank, dtype=np.int64)
    order = np.argsort(sr, kind="stable")  # position of rank 1, 2, ...
    k = min(int(k), len(sr))
    picks, labels = [], []
    if which in ("top", "both"):
        picks.append(order[:k])
        labels += ["top"] * k
    if which in ("bottom", "both"):
        picks.append(order[::-1][:k])
        labels += ["bottom"] * k
    pos = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    return pos.astype(np.int64), np.asarray(labels, dtype=object)


def op_count_table(space, arch_strs: list[str]) -> tuple[list[str], np.ndarray]:
    """The op names of ``space`` (in the order the space lists them, then first
    appearance) and an (archs x ops) matrix of how often each occurs in each arch;
    ([], empty) for a space without ``op_counts``."""
    counts = [space.op_counts(space.parse(s)) for s in arch_strs]
    ops: list[str] = []
    for c in counts:
        for op in c:
            if op not in ops:
                ops.append(op)
    mat = np.array([[c.get(op, 0) for op in ops] for c in counts], dtype=np.int64).reshape(len(arch_strs), len(ops))
    return ops, mat
