"""AZ-NAS (az_expressivity, az_progressivity, az_trainability; cvlab-yonsei/AZ-NAS @
5e6683a, NB201/ZeroShotProxy/compute_az_nas_score.py) against a straightforward
re-implementation: its own forward through stem and cells, numpy covariance and the
general eigen-solver per feature, one ``torch.autograd.grad`` per block pair with the
"straight-forward way" of the reference (mean of per-row outer products) and a
hand-written pixel unshuffle; plus the edge cases (dead cell, identity cell), the fused
plan (input_grad and grasp next to it), supernet candidates, NB101 and NB301."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from zeroshot_refs import toy_batch

from estbench.estimators.zeroshot.engine import run_architecture, run_measures
from estbench.estimators.zeroshot.passes import feature_blocks
from estbench.spaces import get_space
from estbench.spaces.nb101.network import Cell as NB101Cell
from estbench.spaces.nb101.network import NB101Network
from estbench.spaces.nb301 import genotype as gt
from estbench.spaces.nb301.network import NB301Network

AZ = ["az_expressivity", "az_progressivity", "az_trainability"]
TOY_ARCHS = [
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|",
]
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def _low(v: float) -> float:
    return -math.inf if math.isnan(v) else float(v)


def block_features(net, x: torch.Tensor) -> list[torch.Tensor]:
    """The reference's ``extract_cell_features``, written out per network kind: stem and
    cell outputs (NB301: cells take (s0, s1); NB101: the cells, not the pools)."""
    feats = [net.stem(x)]
    if isinstance(net, NB301Network):
        s0 = s1 = feats[0]
        for cell in net.cells:
            s0, s1 = s1, cell(s0, s1)
            feats.append(s1)
    elif isinstance(net, NB101Network):
        h = feats[0]
        for layer in net.layers:
            h = layer(h)
            if isinstance(layer, NB101Cell):
                feats.append(h)
    else:
        for cell in net.cells:
            feats.append(cell(feats[-1]))
    return feats


def reference_az(net, x: torch.Tensor, seed: int, batch: int = 0) -> dict[str, float]:
    """The reference's formulas, the textbook way, on the stem and cell outputs."""
    net.train()
    feats = block_features(net, x)
    entropies = []
    for f in feats:
        rows = f.detach().double().permute(0, 2, 3, 1).reshape(-1, f.shape[1]).numpy()
        with np.errstate(all="ignore"):
            s = np.linalg.eig(np.cov(rows, rowvar=False, bias=True))[0].real
            p = s / s.sum()
            entropies.append(float(np.sum(-p * np.log(p + 1e-8))))
    gen = torch.Generator().manual_seed(seed * 1000003 + batch)
    terms = []
    for i in reversed(range(1, len(feats))):
        g_out = torch.randint(0, 2, feats[i].shape, generator=gen, dtype=feats[i].dtype) * 2 - 1  # the engine's draws
        (g_in,) = torch.autograd.grad(feats[i], feats[i - 1], grad_outputs=g_out, retain_graph=True)
        if g_in.shape == g_out.shape and torch.all(g_in == g_out):
            terms.append(-np.inf)
            continue
        if g_in.shape[2] != g_out.shape[2]:
            r = g_in.shape[2] // g_out.shape[2]
            b, c, h, w = g_in.shape
            g_in = g_in.reshape(b, c, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4).reshape(b, c * r * r, h // r, -1)
        gi = g_in.double().permute(0, 2, 3, 1).reshape(-1, g_in.shape[1])
        go = g_out.double().permute(0, 2, 3, 1).reshape(-1, g_out.shape[1])
        mat = torch.einsum("ni,nj->nij", gi, go).mean(0).numpy()
        sigma = float(np.linalg.svd(mat, compute_uv=False).max())
        terms.append(-sigma - 1 / (sigma + 1e-6) + 2)
    with np.errstate(all="ignore"):
        return {
            "az_expressivity": _low(np.sum(entropies)),
            "az_progressivity": _low(np.min(np.diff(entropies))),
            "az_trainability": _low(np.mean(terms)),
        }


def _engine(build, x, y, names=AZ, seed=0):
    values, _, errors = run_measures(build, x, y, names, seed=seed)
    assert not errors, errors
    return values


def _reference(build, x, seed=0):
    torch.manual_seed(seed)  # the engine's build
    return reference_az(build(True), x, seed)


def _close(a: dict, b: dict, tol: float = 1e-9) -> None:
    """Both sides: the same float32 forward and VJPs, float64 statistics."""
    for k in AZ:
        assert a[k] == pytest.approx(b[k], rel=tol, abs=tol), (k, a[k], b[k])


@pytest.mark.parametrize("arch_str", TOY_ARCHS)
def test_toy_matches_reference(toy, arch_str):
    arch = toy.parse(arch_str)
    x, y = toy_batch()

    def build(bn):
        return toy.build(arch, bn=bn)

    got = _engine(build, x, y)
    assert all(math.isfinite(got[k]) for k in AZ)
    _close(got, _reference(build, x))


def test_nb201_small_net_matches_reference():
    space = get_space("nb201")
    arch = space.parse(NB201_ARCH)
    x, y = toy_batch(n=6, res=16)

    def build(bn):
        return space.build(arch, c=4, n=2, bn=bn)

    assert len(feature_blocks(build(True))) == 1 + 3 * 2 + 2  # stem, 3 stages of n cells, 2 reductions
    _close(_engine(build, x, y), _reference(build, x))


def test_dead_cell_nonfinite_entropy_very_low_trainability(toy):
    arch = toy.parse("|nor_conv_3x3~0|+|none~0|none~1|")
    assert toy.is_degenerate(arch)
    x, y = toy_batch()

    def build(bn):
        return toy.build(arch, bn=bn)

    got, ref = _engine(build, x, y), _reference(build, x)
    assert got["az_expressivity"] == got["az_progressivity"] == -math.inf  # 0/0 covariance spectrum
    assert -1e6 < got["az_trainability"] < -1e5  # sigma 0 on the dead cells: -1/(0 + 1e-6) + 2
    assert got["az_trainability"] == pytest.approx(ref["az_trainability"], rel=1e-9)


def test_identity_cell_has_minus_inf_trainability(toy):
    arch = toy.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|")  # node 2 = x + 0: the identity
    assert not toy.is_degenerate(arch)
    x, y = toy_batch()

    def build(bn):
        return toy.build(arch, bn=bn)

    got, ref = _engine(build, x, y), _reference(build, x)
    assert got["az_trainability"] == ref["az_trainability"] == -math.inf
    assert got["az_progressivity"] == 0.0 and math.isfinite(got["az_expressivity"])
    _close(got, ref)


def test_fused_with_input_grad_and_grasp_changes_nothing(toy):
    """az_blocks runs between input_grad and ce_backward on the shared graph; with grasp
    planned the forward records the lean double backward (CPU)."""
    arch = toy.parse(TOY_ARCHS[0])
    x, y = toy_batch()

    def build(bn):
        return toy.build(arch, bn=bn)

    others = ["jacob_cov", "snip", "grasp", "grad_norm"]
    fused = _engine(build, x, y, AZ + others)
    alone = _engine(build, x, y)
    for k in AZ:
        assert fused[k] == pytest.approx(alone[k], rel=1e-6, abs=1e-7), k
    for k in others:
        assert fused[k] == pytest.approx(_engine(build, x, y, [k])[k], rel=1e-5, abs=1e-7), k


def test_draws_follow_seed_and_batch(toy):
    arch = toy.parse(TOY_ARCHS[0])
    x, y = toy_batch()

    def build(bn):
        return toy.build(arch, bn=bn)

    results, _ = run_architecture(build, [(x, y), (x, y)], dict.fromkeys(AZ, 2), seed=3)
    (v0, _, e0), (v1, _, e1) = results
    assert not e0 and not e1
    # same batch, same network: same features; the Rademacher draws are seeded per batch
    assert v0["az_expressivity"] == pytest.approx(v1["az_expressivity"], rel=1e-9)
    assert v0["az_trainability"] != v1["az_trainability"]
    ref = reference_az(_seeded(build, 3), x, seed=3, batch=1)
    assert v1["az_trainability"] == pytest.approx(ref["az_trainability"], rel=1e-6)


def _seeded(build, seed):
    torch.manual_seed(seed)
    return build(True)


@pytest.mark.parametrize("arch_str", [TOY_ARCHS[0], "|nor_conv_3x3~0|+|skip_connect~0|none~1|"])
def test_supernet_candidate_equals_its_standalone_network(toy, arch_str):
    arch = toy.parse(arch_str)
    x, y = toy_batch()
    torch.manual_seed(7)
    supernet = toy.supernet()
    got = _engine(lambda bn: toy.candidate(supernet, arch, bn), x, y)
    ref = reference_az(supernet.standalone(arch), x, seed=0)
    _close(got, ref, tol=1e-5)


def test_nb101_blocks_skip_the_downsampling_pools():
    c1, c3 = "conv1x1-bn-relu", "conv3x3-bn-relu"
    matrix = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]

    def build(bn):
        return NB101Network(matrix, ["input", c3, c1, "output"], c=4, n=1, stacks=3, bn=bn)

    blocks = feature_blocks(build(True))
    assert len(blocks) == 4 and all(isinstance(b, NB101Cell) for b in blocks[1:])
    x, y = toy_batch(n=4, res=8)
    got = _engine(build, x, y)
    assert all(math.isfinite(v) for v in got.values()), got
    _close(got, _reference(build, x))


def test_nb301_blocks_are_stem_and_cells_and_finite_in_float64():
    genotype = gt.sample(np.random.default_rng(0))

    def build(bn):
        return NB301Network(genotype, c=4, n=3, bn=bn)

    net = build(True)
    assert feature_blocks(net) == [net.stem, *net.cells]
    x, y = toy_batch(n=4, res=8)
    got = _engine(build, x, y)
    assert all(math.isfinite(v) for v in got.values()), got
    _close(got, _reference(build, x))


def test_nb301_rank_deficient_stem_is_why_entropies_are_float64():
    """The DARTS stem has 3c = 48 channels of rank <= 27 (3x3x3 patches): the reference's
    float32 eigvalsh returns tiny negative eigenvalues for the zero ones (here, on this
    CPU, below -1e-8 after normalising: log(p + 1e-8) = nan, expressivity -inf for every
    such architecture; BLAS-dependent, so only the rank deficiency is asserted); float64
    keeps them above -1e-8."""
    genotype = gt.sample(np.random.default_rng(1))

    def build(bn):
        return NB301Network(genotype, c=16, n=3, bn=bn)

    x, y = toy_batch(n=8, res=8)
    net = _seeded(build, 0).train()
    stem = net.stem(x).detach()
    rows = stem.permute(0, 2, 3, 1).reshape(-1, stem.shape[1])
    rows = rows - rows.mean(0, keepdim=True)
    s = torch.linalg.eigvalsh(rows.T @ rows / rows.shape[0])  # float32, as the reference
    assert int((s.abs() < 1e-5 * s.max()).sum()) >= 48 - 27
    got = _engine(build, x, y)
    assert math.isfinite(got["az_expressivity"]) and math.isfinite(got["az_progressivity"]), got
