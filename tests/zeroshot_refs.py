"""Textbook references for the zero-shot measures: a deep copy and a separate pass per
measure (the reference code's recipe), checked against the fused engine in
tests/test_zeroshot.py and timed in benchmarks/bench_zeroshot.py. A new measure adds its
reference to :data:`REFERENCE` (its test entry); the contract test in test_zeroshot.py
covers it without one."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BATCH = 8


def toy_batch(seed: int = 123, n: int = BATCH, res: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch of random 8x8 images and labels for the toy space."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, res, res, generator=g), torch.randint(0, 10, (n,), generator=g)


def _copy(net: nn.Module) -> nn.Module:
    c = copy.deepcopy(net).train()
    c.zero_grad(set_to_none=True)
    return c


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _ce_backward(net, x, y) -> nn.Module:
    n = _copy(net)
    F.cross_entropy(n(x), y).backward()
    return n


def ref_grad_norm(net, x, y):
    return sum(m.weight.grad.norm().item() for m in _layers(_ce_backward(net, x, y)) if m.weight.grad is not None)


def ref_plain(net, x, y):
    n = _ce_backward(net, x, y)
    return sum((m.weight * m.weight.grad).sum().item() for m in _layers(n) if m.weight.grad is not None)


def ref_snip(net, x, y):
    n = _ce_backward(net, x, y)
    return sum((m.weight * m.weight.grad).abs().sum().item() for m in _layers(n) if m.weight.grad is not None)


def ref_fisher(net, x, y):
    n = _copy(net)
    acts: dict[nn.Module, torch.Tensor] = {}

    def keep(m, _inp, out):
        out.retain_grad()
        acts[m] = out

    hooks = [m.register_forward_hook(keep) for m in _layers(n)]
    F.cross_entropy(n(x), y).backward()
    for h in hooks:
        h.remove()
    total = 0.0
    for m, a in acts.items():
        s = (a * a.grad).sum(dim=(2, 3)) if a.dim() == 4 else a * a.grad
        total += (0.5 * s.pow(2).mean(0)).sum().item() * m.weight[0].numel()  # broadcast over the channel
    return total


def ref_grasp(net, x, y):
    n = _copy(net)
    weights = [m.weight for m in _layers(n)]
    g1 = torch.autograd.grad(F.cross_entropy(n(x), y), weights, allow_unused=True)  # pass 1
    g2 = torch.autograd.grad(F.cross_entropy(n(x), y), weights, create_graph=True, allow_unused=True)  # pass 2
    z = sum((a.detach() * b).sum() for a, b in zip(g1, g2) if a is not None)
    z.backward()
    return sum((-w.detach() * w.grad).sum().item() for w in weights if w.grad is not None)


def _without_bn(n: nn.Module) -> nn.Module:
    for m in list(n.modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(m, child_name, nn.Identity())
    return n


def _synflow(net, x, keep_bn: bool):
    n = _copy(net)
    if not keep_bn:
        _without_bn(n)
    n.double()
    with torch.no_grad():
        for t in n.state_dict().values():
            t.abs_()
    n(torch.ones((1, *x.shape[1:]), dtype=torch.float64)).sum().backward()
    return sum((m.weight * m.weight.grad).abs().sum().item() for m in _layers(n) if m.weight.grad is not None)


def ref_synflow(net, x, y):
    return _synflow(net, x, keep_bn=False)


def ref_synflow_bn(net, x, y):
    return _synflow(net, x, keep_bn=True)


def ref_jacob_cov(net, x, y):
    n = _copy(net)
    xx = x.clone().requires_grad_(True)
    out = n(xx)
    out.backward(torch.ones_like(out))
    corr = np.corrcoef(xx.grad.reshape(len(x), -1).numpy())
    v = np.linalg.eig(corr)[0].real  # the reference's general solver
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def ref_relu_logdet(net, x, y):
    n = _copy(net)
    K = np.zeros((len(x), len(x)))

    def count(_m, inputs, _out):
        nonlocal K
        c = (inputs[0].detach().reshape(len(x), -1) > 0).double()
        K = K + (c @ c.T + (1 - c) @ (1 - c).T).numpy()

    # the reference (and NASWOT's original) hooks every module whose type mentions ReLU
    hooks = [m.register_forward_hook(count) for m in n.modules() if "ReLU" in str(type(m))]
    n(x)
    for h in hooks:
        h.remove()
    return float(np.linalg.slogdet(K)[1])


REFERENCE = {
    "grad_norm": ref_grad_norm,
    "plain": ref_plain,
    "snip": ref_snip,
    "fisher": ref_fisher,
    "grasp": ref_grasp,
    "synflow": ref_synflow,
    "synflow_bn": ref_synflow_bn,
    "jacob_cov": ref_jacob_cov,
    "relu_logdet": ref_relu_logdet,
}
