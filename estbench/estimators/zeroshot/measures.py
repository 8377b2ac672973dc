"""The registered zero-shot measures, one pure function per name (the registry target
``estbench.estimators.zeroshot.measures:<name>``).

Each takes a network, a batch ``x`` and labels ``y`` (on the network's device/dtype)
and returns one float; the caller's network is never changed (see
``engine.score_model``). For a suite over many architectures use
``engine.run_measures``, which shares the passes between measures."""

from __future__ import annotations

import torch
from torch import nn

from estbench.estimators.zeroshot.engine import score_model_raw


def _one(name: str, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    values, _, errors = score_model_raw(net, x, y, [name])
    if name in errors:
        raise errors[name]
    return values[name]


# ---- ce_backward ------------------------------------------------------------------------
def grad_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear layers of ||dL/dw||_2 (CE loss, BN on batch statistics)."""
    return _one("grad_norm", net, x, y)


def plain(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Signed sum of w * dL/dw over conv/linear weights."""
    return _one("plain", net, x, y)


def snip(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum of |w * dL/dw| over conv/linear weights."""
    return _one("snip", net, x, y)


def fisher(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Channel saliency 0.5 * mean_n(sum_hw(act * dL/dact))^2 at every conv/linear output,
    weighted by the channel's fan-in and summed."""
    return _one("fisher", net, x, y)


# ---- grasp ------------------------------------------------------------------------------
def grasp(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Signed sum of -w * (H g) over conv/linear weights."""
    return _one("grasp", net, x, y)


# ---- synflow / synflow_bn ------------------------------------------------------------------
def synflow(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """sum |w * dR/dw| on |w| in float64 without BatchNorm; x gives only the image shape."""
    return _one("synflow", net, x, y)


def synflow_bn(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """synflow with BatchNorm kept (train mode)."""
    return _one("synflow_bn", net, x, y)


# ---- input_grad -----------------------------------------------------------------------------
def jacob_cov(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Score of the correlation of the per-image input gradients (Mellor et al.)."""
    return _one("jacob_cov", net, x, y)


# ---- relu_forward ---------------------------------------------------------------------------
def relu_logdet(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """log|K| of the ReLU binary-code kernel (NASWOT)."""
    return _one("relu_logdet", net, x, y)
