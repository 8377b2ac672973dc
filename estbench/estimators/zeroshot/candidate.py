"""Zero-shot scoring of supernet candidates (``--weights supernet-init``): an
architecture as a view of one shared, randomly initialised supernet, the way the
paper's code produced its ZSE numbers. Made by ``SearchSpace.candidate``."""

from __future__ import annotations

import torch
from torch import nn

from estbench.estimators.zeroshot.passes import bypassed_batchnorm
from estbench.spaces.base import Arch


class SupernetCandidate(nn.Module):
    """``net(x)`` for one architecture of ``supernet``; with ``bn=False`` the supernet's
    BatchNorms are bypassed (synflow's BN-free network, same weights)."""

    def __init__(self, supernet: nn.Module, arch: Arch, bn: bool = True) -> None:
        super().__init__()
        self.supernet, self.arch, self.bn = supernet, arch, bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn:
            return self.supernet(x, self.arch)
        with bypassed_batchnorm(self.supernet):
            return self.supernet(x, self.arch)
