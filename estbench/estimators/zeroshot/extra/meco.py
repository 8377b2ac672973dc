"""MeCo's pass (Jiang et al., NeurIPS 2023; github:HamsterMimi/MeCo @ 0d830dd,
``correlation/NAS_Bench_201.py::get_score``): one train-mode forward of the batch's first
image with a forward hook on every module, each call reduced on the spot to the smallest
eigenvalue of the channel correlation matrix of its output. Its measure is in
:mod:`..measures.meco`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.func import functional_call

from estbench.estimators.zeroshot.plan import ModuleCorrelations

if TYPE_CHECKING:
    from estbench.estimators.zeroshot.engine import _State


def min_correlation_eigenvalue(features: torch.Tensor) -> tuple[float, int]:
    """(lambda_min, C) of one module output of one image, ``features`` [C, ...]: the rows
    are the C channels over their positions (``reshape(C, -1)``), corr = their Pearson
    correlation (C x C), nan and inf entries set to 0, lambda_min its smallest
    eigenvalue (the reference's ``min(real(torch.linalg.eig(corr)))``).

    Deviations (rounding only): float64 on CPU and ``eigvalsh`` (corr is symmetric once
    the nan entries are zeroed). An output with one position per channel (a pooled
    vector, logits) gives an all-nan corr, hence the zero matrix and 0: returned
    directly, without the degrees-of-freedom warning. One channel: corr is its 1 x 1
    value (1, or 0 for a constant channel), where the reference's ``eig`` of a 0-d
    tensor would raise."""
    c = features.shape[0]
    rows = features.detach().reshape(c, -1).to(device="cpu", dtype=torch.float64)
    if rows.shape[1] < 2:
        return 0.0, c
    corr = torch.corrcoef(rows).reshape(c, c)
    corr = torch.where(torch.isfinite(corr), corr, torch.zeros_like(corr))
    return float(torch.linalg.eigvalsh(corr)[0]), c


def meco(s: _State) -> ModuleCorrelations:
    """Forward of ``s.x[:1]`` (no grad, the network in train mode: BN on the statistics of
    that one image) with a forward hook on every module of ``net.modules()`` (the root
    and containers included; only modules whose forward runs fire, once per call). Each
    call whose output is a tensor with a channel axis (``output[0]`` of dim >= 1) adds
    (lambda_min, C) of ``output[0]``; other outputs are skipped (the reference would
    fail on a 1-D output and read a tuple's first tensor as the image).

    The forward runs through ``functional_call`` on clones of the network's buffers, so
    the network's BN running statistics are left as they were; every hook is removed."""
    net = s.net
    lams: list[float] = []
    channels: list[int] = []

    def on_output(_module: nn.Module, _inputs: tuple, out: object) -> None:
        if isinstance(out, torch.Tensor) and out.dim() >= 2:
            lam, c = min_correlation_eigenvalue(out[0])
            lams.append(lam)
            channels.append(c)

    buffers = {name: b.detach().clone() for name, b in net.named_buffers()}
    handles = [m.register_forward_hook(on_output) for m in net.modules()]
    try:
        with torch.no_grad():
            functional_call(net, buffers, (s.x[:1],))
    finally:
        for h in handles:
            h.remove()
    if not lams:
        raise RuntimeError("meco: no module output with a channel axis to correlate")
    return ModuleCorrelations(lams, channels)
