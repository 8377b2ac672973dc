"""The NB301 (DARTS) evaluation network and its structural costs: forward shapes, the
macro layout (reductions, channels, resolutions), DARTS's op modules, bn=False, the
cached costs against the built network (params, ReLU modules, fvcore FLOPs) and, on the
real data, NASLib's params / FLOPs of its 725 NB301 architectures.

What NASLib measured (automl/NASLib at the table's commits, May-June 2022:
``naslib/search_spaces/nasbench301/graph.py`` with ``channels = [32, 64, 128]``, i.e.
c=32, n=8; ``predictors/utils/pruners/predictive.py`` -> tensorwatch ``ModelStats``, a
copy of torchstat): its network is DARTS's with two differences, (1) the cell ops' BNs
are ``affine=False`` (preprocessing and stem BNs are affine) and (2) every pool is
followed by a ``BatchNorm2d(affine=False)``. So its params are ours minus 2C per
cell-op BN, and its FLOPs are torchstat's rules on that network."""

import ast
import json
import math
import time

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from torch import nn

from estbench.errors import BadInput
from estbench.spaces.base import NetShape
from estbench.spaces.cell.cost import count_params, count_relus, fvcore_flops
from estbench.spaces.nb301 import genotype as gt
from estbench.spaces.nb301.cost import structural
from estbench.spaces.nb301.network import FactorizedReduce, NB301Network, layout

DARTS_V2 = gt.make(  # DARTS's published cell (genotypes.py DARTS_V2)
    [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
     ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
     ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
)  # fmt: skip
SHAPES = [
    NetShape(c=4, n=1, num_classes=10, resolution=8),
    NetShape(c=6, n=2, num_classes=10, resolution=8),
    NetShape(c=4, n=5, num_classes=7, resolution=16),
    NetShape(c=8, n=8, num_classes=10, resolution=32),
]


def genotypes(k: int, seed: int = 0) -> list[gt.Genotype]:
    rng = np.random.default_rng(seed)
    return [DARTS_V2] + [gt.sample(rng) for _ in range(k - 1)]


def build(g, shape: NetShape, bn: bool = True) -> NB301Network:
    return NB301Network(g, shape.c, shape.n, shape.num_classes, bn=bn)


def test_forward_shapes_train_and_eval():
    torch.manual_seed(0)
    net = build(DARTS_V2, SHAPES[2])
    out = net(torch.randn(3, 3, 16, 16))
    assert out.shape == (3, 7) and torch.isfinite(out).all()
    out.sum().backward()
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 16, 16)).shape == (2, 7)


def test_layout_reductions_and_channels():
    red = [k for k, (_, _, _, r, _) in enumerate(layout(32, 8)) if r]
    assert red == [2, 5]
    assert [c for _, _, c, _, _ in layout(32, 8)] == [32, 32, 64, 64, 64, 128, 128, 128]
    assert layout(32, 8)[0][:2] == (96, 96) and layout(32, 8)[3][:2] == (128, 256)
    assert [r for *_, r, _ in layout(4, 1)] == [True] and [r for *_, r, _ in layout(4, 2)] == [True, True]
    net = NB301Network(DARTS_V2)
    assert net.classifier.in_features == 512 and net.stem[0].out_channels == 96
    pre0 = [type(cell.preprocess0).__name__ for cell in net.cells]
    assert pre0 == ["ReLUConvBN"] * 3 + ["FactorizedReduce"] + ["ReLUConvBN"] * 2 + ["FactorizedReduce", "ReLUConvBN"]
    # DARTS's state-dict names, so a NetworkCIFAR checkpoint (minus its auxiliary head) loads
    keys = set(net.state_dict())
    assert {"stem.0.weight", "cells.0.preprocess0.op.1.weight", "cells.0._ops.0.op.1.weight"} <= keys
    assert {"cells.3.preprocess0.conv_1.weight", "classifier.weight", "classifier.bias"} <= keys


def test_reduction_cells_halve_the_resolution():
    net = NB301Network(genotypes(2)[1], c=4, n=8)
    sizes = []
    hooks = [c.register_forward_hook(lambda m, i, o: sizes.append((o.shape[1], o.shape[-1]))) for c in net.cells]
    with torch.no_grad():
        net(torch.randn(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert sizes == [(16, 32)] * 2 + [(32, 16)] * 3 + [(64, 8)] * 3


def test_ops_are_dartss_modules():
    g = gt.make(
        [("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("skip_connect", 0), ("sep_conv_5x5", 2),
         ("dil_conv_5x5", 1), ("skip_connect", 3), ("dil_conv_3x3", 0), ("sep_conv_3x3", 4)],
        [("skip_connect", 0), ("avg_pool_3x3", 1), ("skip_connect", 1), ("skip_connect", 2),
         ("max_pool_3x3", 0), ("avg_pool_3x3", 3), ("dil_conv_5x5", 0), ("sep_conv_5x5", 4)],
    )  # fmt: skip
    net = NB301Network(g, c=4, n=3)
    normal, reduce = net.cells[0]._ops, net.cells[1]._ops
    assert isinstance(normal[0], nn.MaxPool2d) and normal[0].stride == 1
    assert isinstance(normal[1], nn.AvgPool2d) and not normal[1].count_include_pad
    assert isinstance(normal[2], nn.Identity) and isinstance(normal[5], nn.Identity)
    conv = normal[3].op[1]
    assert (conv.kernel_size, conv.padding, conv.groups, conv.stride) == ((5, 5), (2, 2), 4, (1, 1))
    dil = normal[4].op[1]
    assert (dil.kernel_size, dil.padding, dil.dilation) == ((5, 5), (4, 4), (2, 2))
    assert len(normal[7].op) == 8 and sum(isinstance(m, nn.ReLU) for m in normal[7].op) == 2
    # reduction cell: stride 2 only on ops reading the cell inputs; no BN after pools
    assert isinstance(reduce[0], FactorizedReduce) and isinstance(reduce[2], FactorizedReduce)
    assert isinstance(reduce[3], nn.Identity)
    assert reduce[1].stride == 2 and reduce[4].stride == 2 and reduce[5].stride == 1
    assert reduce[6].op[1].stride == (2, 2) and reduce[7].op[1].stride == (1, 1)
    # every ReLU is a module, none in place (the zero-shot engine reads their inputs)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    assert relus and not any(m.inplace for m in relus)


def test_bn_false_has_no_batchnorm_and_the_same_weights():
    g = genotypes(2)[1]
    torch.manual_seed(3)
    with_bn = NB301Network(g, c=4, n=5)
    torch.manual_seed(3)
    without = NB301Network(g, c=4, n=5, bn=False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in without.modules())
    plain = dict(without.state_dict())
    bn_free = {k: v for k, v in with_bn.state_dict().items() if k in plain}
    assert (
        set(bn_free) == set(plain)
        and len(plain) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in with_bn.modules()) + 1
    )  # + the classifier's bias
    assert all(torch.equal(bn_free[k], plain[k]) for k in plain)
    x = torch.randn(2, 3, 16, 16)
    assert without(x).shape == (2, 10)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"c{s.c}n{s.n}r{s.resolution}")
def test_cached_costs_equal_the_network(shape):
    for g in genotypes(3, seed=shape.n):
        net = build(g, shape)
        assert structural(g, "params", shape=shape) == count_params(net)
        assert structural(g, "relu", shape=shape) == count_relus(net)
        assert structural(g, "flops", shape=shape) == fvcore_flops(net, (1, 3, shape.resolution, shape.resolution))
        assert structural(g, "params", True, shape) == structural(g, "params", False, shape)  # all live


def test_cached_costs_at_the_default_shape():
    g = genotypes(2, seed=7)[1]
    net = NB301Network(g)
    assert structural(g, "params") == count_params(net)
    assert structural(g, "flops") == fvcore_flops(net, (1, 3, 32, 32))
    relus = (
        8 * 2
        + 2
        + sum(  # preprocessing (FactorizedReduce after the 2 reductions: 1 each) + ops
            n * {"sep_conv_3x3": 2, "sep_conv_5x5": 2, "dil_conv_3x3": 1, "dil_conv_5x5": 1}.get(op, 0)
            for name, n in (("normal", 6), ("reduce", 2))
            for op, _ in g.cell(name)
        )
        + 2 * sum(op == "skip_connect" and i < 2 for op, i in g.reduce)
    )
    assert structural(g, "relu") == count_relus(net) == relus - 2  # the first cells' pre0 are ReLUConvBN
    # DARTS_V2 at c=36, n=20 is DARTS's 3.3M-parameter network (3,349,342 without the auxiliary head)
    assert structural(DARTS_V2, "params", shape=NetShape(c=36, n=20)) == 3_349_342


def test_structural_is_fast():
    gs = genotypes(20, seed=1)
    for g in gs:
        structural(g, "flops")
    start = time.perf_counter()
    for _ in range(50):
        for g in gs:
            structural(g, "flops")
    assert (time.perf_counter() - start) / 1000 < 1e-3


def test_bad_inputs_raise_badinput():
    with pytest.raises(BadInput, match="unknown structural measure"):
        structural(DARTS_V2, "latency")
    with pytest.raises(BadInput, match="Genotype"):
        NB301Network("not a genotype")
    bad = gt.Genotype(DARTS_V2.normal, (("sep_conv_3x3", 0),) * 8)
    with pytest.raises(BadInput, match="twice"):
        structural(bad, "params")
    with pytest.raises(BadInput, match="positive"):
        NB301Network(DARTS_V2, c=0)
    with pytest.raises(BadInput, match="halve"):
        structural(DARTS_V2, "flops", shape=NetShape(c=4, n=3, resolution=6))


# ---- NASLib's table ----------------------------------------------------------------
def from_naslib(key: str) -> gt.Genotype:
    """A NASLib compact key "[[(input, op index) x 8], [...]]" as a Genotype."""
    cells = ast.literal_eval(key)
    return gt.make(*([(gt.OPS[op], inp) for inp, op in cell] for cell in cells))


def affine_op_bn_params(g: gt.Genotype, shape: NetShape) -> int:
    """The affine parameters (2C) of the BNs inside cell ops, which NASLib's network
    builds without affine: 2 per sep_conv, 1 per dil_conv and stride-2 skip."""
    total = 0
    for _, _, c, reduction, _ in layout(shape.c, shape.n):
        for op, i in g.reduce if reduction else g.normal:
            bns = {"sep_conv_3x3": 2, "sep_conv_5x5": 2, "dil_conv_3x3": 1, "dil_conv_5x5": 1}.get(op, 0)
            total += 2 * c * (bns + (op == "skip_connect" and reduction and i < 2))
    return total


def naslib_flops(net: NB301Network, resolution: int = 32) -> int:
    """tensorwatch's torchstat rules (per leaf module, batch 1) on our network as NASLib
    builds it: conv k*k*C_in*(C_out/groups) per output position, BN 2 per element when
    affine (cell-op BNs are not) and 1 otherwise, ReLU 1 per element, pools 9 per output
    element plus NASLib's BN(affine=False) after them, adaptive pool C*(H+1)*(W+1),
    linear in*out; adds and concatenations 0."""
    total = 0

    def count(name: str):
        def hook(m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
            nonlocal total
            x = inputs[0]
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0] * m.kernel_size[1]
                total += k * x.shape[1] * (out.shape[1] // m.groups) * out.shape[2] * out.shape[3]
            elif isinstance(m, nn.BatchNorm2d):
                total += x.numel() * (1 if "._ops." in name or not m.affine else 2)
            elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
                total += out.numel() * 9 + out.numel()
            elif isinstance(m, nn.ReLU):
                total += x.numel()
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                total += x.shape[1] * (x.shape[2] + 1) * (x.shape[3] + 1)
            elif isinstance(m, nn.Linear):
                total += x.shape[1] * out.shape[1]

        return hook

    hooks = [m.register_forward_hook(count(n)) for n, m in net.named_modules() if not list(m.children())]
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, resolution, resolution))
    for h in hooks:
        h.remove()
    return total


@pytest.fixture(scope="module")
def naslib_table() -> dict:
    path = SHARED_DATA / "nb301" / "naslib_zc_nb301.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    table = json.loads(path.read_text())["cifar10"]
    assert len(table) == 725
    return {from_naslib(k): v for k, v in table.items()}


@pytest.mark.data
def test_params_equal_naslibs_with_non_affine_op_bns(naslib_table):
    shape = NetShape(c=32, n=8, num_classes=10, resolution=32)
    ours = {g: structural(g, "params", shape=shape) for g in naslib_table}
    theirs = {g: round(v["params"]["score"] * 1e6) for g, v in naslib_table.items()}
    # DARTS's own evaluation network (affine cell-op BNs) never equals NASLib's count...
    assert sum(ours[g] == theirs[g] for g in ours) == 0
    # ...NASLib's network is ours without the cell-op BNs' affine parameters: all 725
    assert sum(ours[g] - affine_op_bn_params(g, shape) == theirs[g] for g in ours) == 725
    # not another shape: c=16 (NASLib's graph since Oct 2022) is far off
    g = next(iter(naslib_table))
    assert structural(g, "params", shape=NetShape(c=16, n=8)) < 0.4 * theirs[g]


@pytest.mark.data
def test_flops_equal_naslibs_torchstat_count(naslib_table):
    archs = list(naslib_table)[::29]  # 25 builds
    for g in archs:
        net = NB301Network(g)
        theirs = naslib_table[g]["flops"]["score"] * 1e6
        assert naslib_flops(net) == round(theirs), gt.to_str(g)
        # fvcore (conv/linear MACs + BN + global pool) is 1-8% below NASLib's count (0.917-0.991 over all 725)
        assert 0.91 < structural(g, "flops") / theirs < 0.995
        assert math.isclose(theirs, round(theirs), abs_tol=1e-3)
