"""Structural facts: params equal the official formula on all 15,625 NB201 archs; the
additive cost tables equal direct counts on the built networks."""

import pytest
import torch

from estbench.spaces import get_space
from estbench.spaces.cell.cost import count_params, count_relus, fvcore_flops


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201")


def official_params(arch, classes=10):
    return 73306 + 243040 * arch.count("nor_conv_3x3") + 28000 * arch.count("nor_conv_1x1") + 65 * (classes - 10)


def test_params_equal_official_formula_on_all_archs(nb201):
    for arch in nb201.cell.enumerate():
        assert nb201.structural(arch, "params") == official_params(arch)


def test_params_other_class_counts(nb201):
    arch = nb201.cell.enumerate()[1234]
    assert nb201.structural(arch, "params", num_classes=100) == official_params(arch, 100)


SAMPLE = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_3x3~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]


@pytest.mark.parametrize("arch_str", SAMPLE)
def test_cost_tables_match_full_network(nb201, arch_str):
    arch = nb201.parse(arch_str)
    net = nb201.build(arch)
    assert nb201.structural(arch, "params") == count_params(net)
    assert nb201.structural(arch, "relu") == count_relus(net)
    assert nb201.structural(arch, "flops") == fvcore_flops(net, (1, 3, 32, 32))


def test_built_network_runs_and_has_nb201_shape(nb201):
    net = nb201.build(nb201.parse(SAMPLE[0]))
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert len(net.cells) == 17  # 3 stages x 5 cells + 2 reduction blocks


def test_toy_costs_match(toy):
    for s in toy.arch_list(None)[:5]:
        arch = toy.parse(s)
        net = toy.build(arch)
        assert toy.structural(arch, "params") == count_params(net)
        assert toy.structural(arch, "flops") == fvcore_flops(net, (1, 3, 8, 8))
