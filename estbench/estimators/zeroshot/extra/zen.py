"""Zen-NAS's pass (Lin et al., ICCV 2021; idstcv/ZenNAS @ d1d617e
``ZeroShotProxy/compute_zen_score.py``, as NAS-Bench-Suite-Zero runs it on NB201:
automl/NASLib ``naslib/predictors/utils/pruners/measures/zen.py::compute_zen_score``,
batch 64, repeat 1, mixup_gamma 1e-2, fp32, train mode). Its measure is in
:mod:`..measures.zen`.

The network is evaluated functionally (``torch.func.functional_call``) on fresh tensors:
Gaussian conv/linear weights, BN weight 1 / bias 0 and fresh BN buffers, so the network
itself (weights, running statistics) is never touched and no deep copy is made."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.func import functional_call

from estbench.estimators.zeroshot.measures.zen import ZEN_GAMMA
from estbench.estimators.zeroshot.plan import ZenFeatures

if TYPE_CHECKING:
    from estbench.estimators.zeroshot.engine import _State

ZEN_DTYPE = torch.float32  # the reference's; fixed, so the run's dtype does not change zen


def gaussian_tensors(
    net: nn.Module, generator: torch.Generator, device: torch.device, dtype: torch.dtype = ZEN_DTYPE
) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of ``net``, re-initialised as NASLib's
    ``network_weight_gaussian_init`` on a freshly built network: Conv2d and Linear weights
    ~ N(0, 1) drawn from ``generator`` (on CPU, in ``named_modules()`` order, one
    ``randn`` of the weight's shape each), their biases 0; affine BatchNorm2d / GroupNorm
    weight 1, bias 0; every BatchNorm's running_mean 0, running_var 1,
    num_batches_tracked 0. Anything else is a detached copy; floating tensors in
    ``dtype``."""
    out: dict[str, torch.Tensor] = {}
    for name, p in net.named_parameters():
        out[name] = p.detach().to(device=device, dtype=dtype, copy=True)
    for name, b in net.named_buffers():
        out[name] = b.detach().to(device=device, dtype=dtype if b.is_floating_point() else b.dtype, copy=True)
    prefix = lambda mod_name: f"{mod_name}." if mod_name else ""  # noqa: E731
    for mod_name, m in net.named_modules():
        pre = prefix(mod_name)
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = torch.randn(m.weight.shape, generator=generator, dtype=dtype)
            out[f"{pre}weight"] = w.to(device)
            if m.bias is not None:
                out[f"{pre}bias"].zero_()
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            out[f"{pre}weight"].fill_(1.0)
            out[f"{pre}bias"].zero_()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            out[f"{pre}running_mean"].zero_()
            out[f"{pre}running_var"].fill_(1.0)
            out[f"{pre}num_batches_tracked"].zero_()
    return out


class PrePoolTap:
    """The feature map before global pooling, ``f(x)`` of Zen-NAS: the input of the last
    call of any ``nn.AdaptiveAvgPool2d`` (NASLib's ``forward_before_global_avg_pool``
    hooks every such module; NB201: ReLU(BN(last cell)), [B, 4C, H/4, W/4]). Without
    one, the input of the network's ``head`` module (NB101, whose head pools with
    ``x.mean((2, 3))``; NASLib takes the output of the last layer, the same tensor), else
    the input of the last ``nn.Linear``. The captured map must be 4-D, otherwise the
    network has no pre-pool feature map this tap can find (RuntimeError)."""

    def __init__(self, net: nn.Module) -> None:
        pools = [m for m in net.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
        inner = getattr(net, "supernet", net)
        head = getattr(net, "head", None)
        head = getattr(inner, "head", None) if head is None else head
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        if pools:
            self.modules, self.where = pools, "the input of the last nn.AdaptiveAvgPool2d call"
        elif isinstance(head, nn.Module):
            self.modules, self.where = [head], "the input of the network's head"
        elif linears:
            self.modules, self.where = linears[-1:], "the input of the last nn.Linear"
        else:
            raise RuntimeError("zen: the network has no nn.AdaptiveAvgPool2d, head or nn.Linear to take f(x) from")
        self.features: torch.Tensor | None = None

    def __call__(self, _module: nn.Module, inputs: tuple) -> None:
        self.features = inputs[0]

    def run(self, forward) -> torch.Tensor:
        self.features = None
        handles = [m.register_forward_pre_hook(self) for m in self.modules]
        try:
            forward()
        finally:
            for h in handles:
                h.remove()
        f = self.features
        if f is None or f.dim() != 4:
            got = "it did not run" if f is None else f"it is {f.dim()}-D"
            raise RuntimeError(f"zen: no 4-D pre-global-pool feature map ({self.where}: {got})")
        return f


def bn_log_scale(net: nn.Module, tensors: dict[str, torch.Tensor]) -> float:
    """Sum over every ``nn.BatchNorm2d`` of log(sqrt(mean_c running_var)), read from the
    functional buffers after the forwards (NASLib's ``log_bn_scaling_factor``; a BN that
    did not run keeps running_var 1 and adds 0). float64 (the reference: float32)."""
    total = 0.0
    for name, m in net.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            rv = tensors.get(f"{name}.running_var" if name else "running_var")
            if rv is None:
                raise RuntimeError(f"zen: BatchNorm2d {name!r} keeps no running_var (track_running_stats=False)")
            total += math.log(math.sqrt(float(rv.double().mean())))
    return total


def zen(s: _State) -> ZenFeatures:
    """Data-free (batch 0): a generator seeded from (seed, batch) draws the N(0, 1)
    conv/linear weights (:func:`gaussian_tensors`), then x and e ~ N(0, 1) of the batch's
    shape; two train-mode forwards, of x and of x + ZEN_GAMMA * e, under no_grad (the BN
    buffers move with each, as in the reference); f = the pre-global-pool features
    (:class:`PrePoolTap`). Returns mean over images of sum_(c,h,w) |f(x) - f(x')| and the
    BN term read after both forwards. Always float32 (the reference's dtype); the draws
    are made on CPU, so they are the same on every device."""
    net = s.net
    device = s.x.device
    generator = torch.Generator().manual_seed(s.seed * 1000003 + s.batch)
    tensors = gaussian_tensors(net, generator, device)
    x = torch.randn(s.x.shape, generator=generator, dtype=ZEN_DTYPE).to(device)
    e = torch.randn(s.x.shape, generator=generator, dtype=ZEN_DTYPE).to(device)
    tap = PrePoolTap(net)
    with torch.no_grad():
        f1 = tap.run(lambda: functional_call(net, tensors, (x,)))
        f2 = tap.run(lambda: functional_call(net, tensors, (x + ZEN_GAMMA * e,)))
        distance = float((f1 - f2).abs().sum(dim=(1, 2, 3)).mean())
    return ZenFeatures(distance, bn_log_scale(net, tensors))
