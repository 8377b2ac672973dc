"""The zero-shot passes below the engine: the ReLU code kernel (which modules it hooks,
its bit-packed and matmul paths) and the BN-free network synflow runs on."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from zeroshot_refs import toy_batch

from estbench.estimators.zeroshot.plan import ForwardNeeds
from estbench.spaces import get_space

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|"


def test_relu_logdet_hooks_relus_and_relu_conv_bn_wrappers(toy):
    """Deliberately faithful to the reference: its ``'ReLU' in str(type(module))`` also
    matches NB201's ReLUConvBN wrapper, whose input is its inner ReLU's input, so every
    conv edge's codes enter K twice."""
    from estbench.estimators.zeroshot.relu_kernel import is_relu

    net = toy.build(toy.parse(ARCH))
    hooked = [m for m in net.modules() if is_relu(m)]
    n_relu = sum(isinstance(m, nn.ReLU) for m in net.modules())
    n_wrappers = sum(type(m).__name__ == "ReLUConvBN" for m in net.modules())
    assert n_wrappers > 0 and len(hooked) == n_relu + n_wrappers


@pytest.mark.parametrize("shape", [(5, 3), (8, 77), (16, 4, 9, 9)])
def test_code_kernel_bit_and_matmul_paths_are_exact(shape):
    from estbench.estimators.zeroshot import relu_kernel

    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    x[0] = 0.0  # exact zeros are "off", as (x > 0) says
    c = (x.flatten(1) > 0).double()
    expected = c @ c.T + (1 - c) @ (1 - c).T
    assert torch.equal(relu_kernel.agreements_bits(x.flatten(1)), expected)
    assert torch.equal(relu_kernel.agreements_matmul(x.flatten(1)), expected)


def test_relu_kernel_matmul_path_equals_the_packed_bits_path(toy, monkeypatch):
    """Off CPU (or without numpy's popcount) each hooked tensor adds one matmul to the
    kernel; on CPU the codes are packed and compared once. Forcing the matmul branch on
    CPU checks the GPU code path's logic: both kernels must be equal exactly."""
    from estbench.estimators.zeroshot import passes, relu_kernel

    net = toy.build(toy.parse(ARCH)).train()
    x, _ = toy_batch()

    def kernel():
        return passes.forward(net, x, ForwardNeeds(relu=True)).relu_kernel

    packed = kernel()
    monkeypatch.setattr(relu_kernel, "BITS", False)
    assert torch.equal(kernel(), packed)


# ---- the BN-free network ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "space_name, arch_str",
    [
        ("toy", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"),
        ("nb201", "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"),
    ],
)
def test_bn_free_build_has_identical_weights(space_name, arch_str):
    space = get_space(space_name)
    arch = space.parse(arch_str)
    torch.manual_seed(11)
    with_bn = space.build(arch).state_dict()
    torch.manual_seed(11)
    net = space.build(arch, bn=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    without = net.state_dict()
    assert set(without) <= set(with_bn)
    assert all(torch.equal(without[k], with_bn[k]) for k in without)
    assert any(k.endswith("running_mean") for k in with_bn)
