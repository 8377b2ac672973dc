"""The NB101 standalone network and its structural costs: the channel-splitting rule,
forward passes, bn=False, the cached costs against the built network (params, ReLU
modules, fvcore FLOPs) and, on the real data, params equal to the benchmark's
trainable_parameters for every spec of nasbench_vis_1k.json."""

import json
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from estbench.errors import BadInput
from estbench.spaces.base import NetShape
from estbench.spaces.cell.cost import count_params, count_relus, fvcore_flops
from estbench.spaces.nb101.cost import structural
from estbench.spaces.nb101.network import NB101Network, check_cell, vertex_channels

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
SMALL = NetShape(c=16, n=1, num_classes=10, resolution=32)


def edges_to_matrix(n, edges):
    return [[int((i, j) in edges) for j in range(n)] for i in range(n)]


# pruned specs (matrix, ops) covering the builder's cases
SPECS = {
    "chain": (edges_to_matrix(3, {(0, 1), (1, 2)}), ["input", C3, "output"]),
    "in_out_only": (edges_to_matrix(2, {(0, 1)}), ["input", "output"]),
    # three vertices feed the output (43/43/42 of 128, 6/5/5 of 16): 1 -> 3 truncates,
    # input -> output adds a projection to the concat
    "truncate": (
        edges_to_matrix(5, {(0, 1), (0, 2), (0, 3), (1, 3), (1, 4), (2, 4), (3, 4), (0, 4)}),
        ["input", C3, C1, MP, "output"],
    ),
    # vertex 1 feeds only interior vertices (takes the max of theirs); 9 edges
    "seven": (
        edges_to_matrix(7, {(0, 1), (1, 2), (1, 3), (2, 6), (3, 6), (0, 4), (4, 5), (5, 6), (0, 6)}),
        ["input", C1, C3, MP, C3, C1, "output"],
    ),
    "pool_only": (edges_to_matrix(3, {(0, 1), (1, 2)}), ["input", MP, "output"]),
}


def build(name, shape=SMALL, bn=True):
    matrix, ops = SPECS[name]
    return NB101Network(matrix, ops, shape.c, shape.n, shape.num_classes, bn=bn)


def test_vertex_channels_follow_the_official_rule():
    m = check_cell(*SPECS["truncate"])
    assert vertex_channels(128, 128, m) == [128, 43, 43, 42, 128]
    assert vertex_channels(64, 128, check_cell(*SPECS["seven"])) == [64, 43, 43, 43, 42, 42, 128]
    assert vertex_channels(128, 256, check_cell(*SPECS["in_out_only"])) == [128, 256]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_forward_on_a_32x32_batch(name):
    torch.manual_seed(0)
    net = build(name)
    out = net(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    net.eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_default_shape_forward_and_layout():
    net = build("truncate", NetShape(c=128, n=3))
    cells = [m for m in net.layers if m.__class__.__name__ == "Cell"]
    assert len(cells) == 9 and len(net.layers) == 11  # 3 stacks x 3 cells + 2 max-pools
    assert [c.channels[-1] for c in cells] == [128] * 3 + [256] * 3 + [512] * 3
    assert net.head.classifier.in_features == 512
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_odd_resolution_downsamples_like_tf_same_padding():
    net = build("chain", NetShape(c=8, n=1))
    x = net.layers[1](torch.randn(1, 16, 7, 7))  # the first max-pool
    assert x.shape[-1] == 4
    assert net(torch.randn(1, 3, 15, 15)).shape == (1, 10)


def test_bn_settings_match_tf():
    bns = [m for m in build("seven").modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(b.eps == 1e-5 and abs(b.momentum - 0.003) < 1e-12 and b.affine for b in bns)


def test_bn_false_has_no_batchnorm_and_the_same_weights():
    torch.manual_seed(3)
    with_bn = build("seven")
    torch.manual_seed(3)
    without = build("seven", bn=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in without.modules())
    plain = without.state_dict()
    shared = {k: v for k, v in with_bn.state_dict().items() if k in plain}
    assert set(plain) <= set(with_bn.state_dict()) and len(shared) == len(plain)
    assert all(torch.equal(v, plain[k]) for k, v in shared.items())
    assert without(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("shape", [SMALL, NetShape(c=128, n=3)], ids=["small", "default"])
def test_cached_params_and_relus_equal_the_network(name, shape):
    net = build(name, shape)
    matrix, ops = SPECS[name]
    assert structural(matrix, ops, "params", shape=shape) == count_params(net)
    assert structural(matrix, ops, "relu", shape=shape) == count_relus(net)
    assert structural(matrix, ops, "params", live_only=True, shape=shape) == count_params(net)


@pytest.mark.parametrize("name", ["truncate", "seven", "in_out_only"])
def test_cached_flops_equal_fvcore_on_the_network(name):
    matrix, ops = SPECS[name]
    for shape in (SMALL, NetShape(c=16, n=2, num_classes=5, resolution=16)):
        assert structural(matrix, ops, "flops", shape=shape) == fvcore_flops(
            build(name, shape), (1, 3, shape.resolution, shape.resolution)
        )


def test_cached_flops_equal_fvcore_at_the_default_shape():
    matrix, ops = SPECS["seven"]
    flops = fvcore_flops(build("seven", NetShape(c=128, n=3)), (1, 3, 32, 32))
    assert structural(matrix, ops, "flops") == flops > 0


def test_stacks_option():
    matrix, ops = SPECS["truncate"]
    net = NB101Network(matrix, ops, c=16, n=1, stacks=2)
    assert net.head.classifier.in_features == 32
    assert structural(matrix, ops, "params", shape=SMALL, stacks=2) == count_params(net)


@pytest.mark.parametrize(
    "matrix, ops, why",
    [
        (edges_to_matrix(3, {(0, 1)}), ["input", C3, "output"], "path"),  # vertex 1 is dead: not pruned
        (edges_to_matrix(2, set()), ["input", "output"], "no input-to-output path"),
        (edges_to_matrix(3, {(0, 1), (1, 2)}), ["input", "conv5x5", "output"], "unknown NB101 op"),
        (edges_to_matrix(3, {(0, 1), (1, 2)}), ["input", C3], "ops"),
        (edges_to_matrix(3, {(0, 1), (1, 2)}), [C3, C3, "output"], "'input'"),
        ([[0, 1, 0], [1, 0, 1], [0, 0, 0]], ["input", C3, "output"], "upper triangular"),
        ([[0, 1], [0]], ["input", "output"], "square"),
    ],
)
def test_bad_specs_raise_badinput(matrix, ops, why):
    with pytest.raises(BadInput, match=why):
        NB101Network(matrix, ops, c=16, n=1)
    with pytest.raises(BadInput, match=why):
        structural(matrix, ops, "params")


def test_bad_measure_and_too_narrow_network():
    with pytest.raises(BadInput, match="unknown structural measure"):
        structural(*SPECS["chain"], "latency")
    with pytest.raises(BadInput, match="too narrow"):
        NB101Network(*SPECS["truncate"], c=2, n=1)


def test_structural_is_fast():
    specs = [SPECS[k] for k in sorted(SPECS)]
    for matrix, ops in specs:  # fill the caches
        structural(matrix, ops, "params")
    start = time.perf_counter()
    for _ in range(400):
        for matrix, ops in specs:
            structural(matrix, ops, "params")
    assert (time.perf_counter() - start) / 2000 < 1e-3


# ---- the real data --------------------------------------------------------------
DATA_OPS = {-1: "input", -2: "output", 0: C3, 1: C1, 2: MP}  # -3 pads specs of < 7 vertices


def prune(matrix, ops):
    """Drop padding, then every vertex off an input-to-output path (official ModelSpec)."""
    real = [i for i, o in enumerate(ops) if o != -3]
    m = [[int(matrix[i][j]) for j in real] for i in real]
    n = len(m)
    fwd, bwd = {0}, {n - 1}
    for v in range(1, n):
        if any(m[u][v] for u in fwd):
            fwd.add(v)
    for v in range(n - 2, -1, -1):
        if any(m[v][w] for w in bwd):
            bwd.add(v)
    keep = sorted(fwd & bwd)
    return [[m[i][j] for j in keep] for i in keep], [DATA_OPS[ops[real[i]]] for i in keep]


@pytest.mark.data
def test_params_equal_trainable_parameters_of_the_1k_specs():
    path = SHARED_DATA / "nb101" / "nasbench_vis_1k.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data = json.loads(path.read_text())
    specs = [prune(a, o) for a, o in zip(data["adjacency"], data["operations"])]
    expected = data["trainable_parameters"]
    assert len(specs) == 1000
    assert [structural(m, o, "params") for m, o in specs] == expected
    for i in range(0, 1000, 25):  # the built networks too (every 25th: 40 builds)
        assert count_params(NB101Network(*specs[i])) == expected[i]
