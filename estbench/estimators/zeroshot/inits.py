"""Weight initialisations the newer proxies' reference code applies before scoring
(``--weights kaiming-fanin``): the seeded default PyTorch build, then re-initialised in
place, so every measure of a run sees the same network."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def kaiming_fanin_(net: nn.Module) -> nn.Module:
    """AZ-NAS's and VKDNW's ``init_model(net, 'kaiming_norm_fanin')``: every Conv2d and
    Linear weight ``kaiming_normal_(mode='fan_in', nonlinearity='relu')`` (std
    sqrt(2 / fan_in)), their biases 0; every affine BatchNorm / GroupNorm weight 1, bias 0.
    Draws from torch's global generator (seeded by the engine before the build)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net
