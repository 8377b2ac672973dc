"""The lean double backward (batch norm, conv2d) used for grasp's Hessian-gradient product."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from estbench.estimators.zeroshot.hessian import _BatchNorm, _Convolution, lean_double_backward


def _inputs(affine: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    if not affine:
        return (x,), lambda x: _BatchNorm.apply(x, None, None, None, None, 0.1, 1e-5)
    w = (torch.rand(3, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    return (x, w, b), lambda x, w, b: _BatchNorm.apply(x, w, b, None, None, 0.1, 1e-5)


@pytest.mark.parametrize("affine", [True, False])
def test_first_and_second_derivatives_are_exact(affine):
    """gradgradcheck feeds random cotangents to every output of the backward (gx, and
    ggamma / gbeta when affine), so every branch of the closed form is checked."""
    args, fn = _inputs(affine)
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


@pytest.mark.parametrize(
    "stride, padding, groups, bias", [(1, 1, 1, False), (2, 0, 1, True), (2, 1, 2, False), (1, 2, 2, True)]
)
def test_convolution_first_and_second_derivatives_are_exact(stride, padding, groups, bias):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 7, 7, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 4 // groups, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    args = (x, w) + ((torch.randn(6, generator=g, dtype=torch.float64, requires_grad=True),) if bias else ())

    def fn(x, w, b=None):
        return _Convolution.apply(x, w, b, [stride] * 2, [padding] * 2, [1, 1], groups)

    torch.testing.assert_close(fn(*args), F.conv2d(*args, stride=stride, padding=padding, groups=groups))
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4, affine=False, track_running_stats=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).train()


def _hessian_gradient(net, x, y, lean):
    weights = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with lean_double_backward(enabled=lean):
        out = net(x)
    grads = torch.autograd.grad(F.cross_entropy(out, y), weights, create_graph=True)
    z = sum((g.detach() * g).sum() for g in grads)
    return out, [g.detach() for g in grads], torch.autograd.grad(z, weights)


def test_forward_first_order_and_running_stats_are_bit_identical_second_order_close():
    """A conv/BN/ReLU/linear net in float32 against PyTorch's own double backward."""
    x = torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    native_net, lean_net = _net(), _net()
    out_n, g_n, h_n = _hessian_gradient(native_net, x, y, lean=False)
    out_l, g_l, h_l = _hessian_gradient(lean_net, x, y, lean=True)
    assert torch.equal(out_n, out_l)
    assert all(torch.equal(a, b) for a, b in zip(g_n, g_l))
    for a, b in zip(native_net.state_dict().values(), lean_net.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(h_n, h_l):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_only_train_mode_cpu_batch_norm_and_conv2d_are_rerouted():
    bn = nn.BatchNorm2d(2)
    x = torch.randn(4, 2, 3, 3, requires_grad=True)
    with lean_double_backward():
        assert bn(x).grad_fn.name().endswith("_BatchNormBackward")
        assert nn.Conv2d(2, 2, 3)(x).grad_fn.name().endswith("_ConvolutionBackward")
        assert "Convolution" in nn.Conv2d(2, 2, 3, padding="same")(x).grad_fn.name()  # left to PyTorch
        bn.eval()
        assert "NativeBatchNorm" in bn(x).grad_fn.name()
    assert "NativeBatchNorm" in nn.BatchNorm2d(2)(x).grad_fn.name()  # the mode ends with the block
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        with lean_double_backward():
            nn.BatchNorm1d(2).train()(torch.randn(1, 2))
