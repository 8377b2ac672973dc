"""The newer proxies zico, meco, swap, zen, l2_norm and epe_nas (issue 15; specs
runs/specs/zico_meco_swap.md and zen_epe_l2.md) against straightforward textbook
re-implementations of their references (a deep copy, plain autograd / hooks / numpy
loops), on the toy space, a small NB201 network and a small NB101 network, and their
edge cases (dead cell, fewer batches than defined, no pre-pool feature map)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from zeroshot_refs import toy_batch

from estbench.estimators.zeroshot.engine import _State, run_all_batches, run_measures, score_model
from estbench.spaces import get_space

ARCHS = [
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|",
    "|skip_connect~0|+|none~0|nor_conv_3x3~1|",
]
DEAD = "|none~0|+|none~0|none~1|"  # no input-output path
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def built(space, arch_str: str, seed: int, dtype=torch.float32, **shape) -> nn.Module:
    """The network the engine builds: torch seeded, then built, cast, train mode."""
    torch.manual_seed(seed)
    return space.build(space.parse(arch_str), **shape).to(dtype).train()


def builder(space, arch_str: str, **shape):
    return lambda bn: space.build(space.parse(arch_str), bn=bn, **shape)


def small_nb201():
    return get_space("nb201"), {"c": 4, "n": 1}


# ---- zico ------------------------------------------------------------------------------------
def ref_zico(net, batches) -> float:
    """ZiCo by hand: one zero_grad / forward / CE / backward per batch on a copy, each
    conv/linear weight's .grad flattened; per layer numpy population std and mean |g|
    over the batches, log of the sum of their ratio over the nonzero std."""
    n = copy.deepcopy(net).train()
    grads: dict[int, list[np.ndarray]] = {}
    for x, y in batches:
        n.zero_grad(set_to_none=True)
        F.cross_entropy(n(x.to(torch.float64)), y).backward()
        for i, m in enumerate(layers(n)):
            if m.weight.grad is not None:
                grads.setdefault(i, []).append(m.weight.grad.detach().numpy().reshape(-1).astype(np.float64))
    total = 0.0
    for rows in grads.values():
        g = np.array(rows)
        sd = np.std(g, axis=0)
        ma = np.mean(np.abs(g), axis=0)
        nz = np.nonzero(sd)[0]
        s = np.sum(ma[nz] / sd[nz])
        if s != 0:
            total += np.log(s)
    return float(total)


@pytest.mark.parametrize("arch_str", [*ARCHS, DEAD])
@pytest.mark.parametrize("n_batches", [2, 3])
def test_zico_equals_the_per_batch_autograd_reference(toy, arch_str, n_batches):
    batches = [toy_batch(seed=s) for s in (1, 2, 3)[:n_batches]]
    values, _, errors = run_all_batches(builder(toy, arch_str), batches, ["zico"], seed=4, dtype=torch.float64)
    assert not errors
    expected = ref_zico(built(toy, arch_str, 4, torch.float64), batches)
    assert values["zico"] == pytest.approx(expected, rel=1e-10, abs=1e-10)
    if arch_str != DEAD:
        assert values["zico"] > 0


def test_zico_refuses_a_single_batch(toy):
    values, _, errors = run_all_batches(builder(toy, ARCHS[0]), [toy_batch()], ["zico"], seed=0)
    assert "zico" not in values and "zico needs at least 2 batches" in errors["zico"]


def test_zico_excludes_gradients_equal_in_every_batch(toy):
    """The same batch twice: every std is 0, so every layer adds 0 (the reference's
    one-batch constant)."""
    values, _, _ = run_all_batches(builder(toy, ARCHS[0]), [toy_batch(), toy_batch()], ["zico"], seed=0)
    assert values["zico"] == 0.0


# ---- meco ------------------------------------------------------------------------------------
def ref_meco(net, x) -> float:
    """MeCo by hand: a hook on every named module of a copy, output[0] reshaped [C, -1],
    torch.corrcoef, nan/inf -> 0, min real part of torch.linalg.eig; one forward of the
    first image; sum without nan/inf terms."""
    n = copy.deepcopy(net).train()
    terms = []

    def hook(_m, _inp, out):
        fea = out[0].detach()
        fea = fea.reshape(fea.shape[0], -1)
        with pytest.warns(UserWarning) if fea.shape[1] < 2 else _nothing():
            corr = torch.corrcoef(fea)
        corr[torch.isnan(corr)] = 0
        corr[torch.isinf(corr)] = 0
        terms.append(torch.min(torch.real(torch.linalg.eig(corr)[0])).item())

    for _, m in n.named_modules():
        m.register_forward_hook(hook)
    n(x[:1])
    return float(sum(t for t in terms if math.isfinite(t))), len(terms)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("arch_str", [*ARCHS, DEAD])
def test_meco_equals_the_hook_every_module_reference(toy, arch_str):
    x, y = toy_batch(res=8)
    values, _, errors = run_measures(builder(toy, arch_str), x, y, ["meco"], seed=2, dtype=torch.float64)
    assert not errors
    expected, _ = ref_meco(built(toy, arch_str, 2, torch.float64), x.double())
    assert values["meco"] == pytest.approx(expected, abs=1e-9)


def test_meco_on_nb201_counts_every_module_call_and_leaves_the_network_as_it_was():
    space, shape = small_nb201()
    net = built(space, NB201_ARCH, 0, torch.float64, **shape)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    from estbench.estimators.zeroshot.extra.meco import meco

    out = meco(_State(net, x, torch.zeros(2, dtype=torch.long), None))
    expected, calls = ref_meco(net, x)
    assert len(out.min_eigenvalues) == calls == len(out.channels)
    assert sum(out.min_eigenvalues) == pytest.approx(expected, abs=1e-9)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


# ---- swap ------------------------------------------------------------------------------------
def ref_swap(net, x) -> int:
    """SWAP by hand: the outputs of every nn.ReLU with a 4-D input, flattened per image
    and concatenated, sign, transposed to [neurons, batch], torch.unique(dim=0)."""
    n = copy.deepcopy(net).train()
    acts = []

    def hook(_m, inp, out):
        if inp[0].dim() == 4:
            acts.append(out.detach().reshape(out.shape[0], -1))

    for m in n.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(hook)
    with torch.no_grad():
        n(x)
    return torch.unique(torch.sign(torch.cat(acts, 1)).T, dim=0).shape[0]


@pytest.mark.parametrize("arch_str", [*ARCHS, DEAD])
@pytest.mark.parametrize("batch", [8, 70])  # 70 images: two 64-bit words per neuron
def test_swap_equals_unique_rows_of_the_sign_matrix(toy, arch_str, batch):
    x, y = toy_batch(n=batch)
    values, _, errors = run_measures(builder(toy, arch_str), x, y, ["swap"], seed=1)
    assert not errors
    assert values["swap"] == ref_swap(built(toy, arch_str, 1), x)
    if arch_str == DEAD:
        assert values["swap"] == 1.0  # everything after the first cell is 0


# ---- zen -------------------------------------------------------------------------------------
def ref_zen(net, shape, seed, pre_pool, gamma=1e-2) -> float:
    """Zen by hand (NASLib's recipe): a deep copy, Conv2d/Linear weights nn.init.normal_
    and biases 0, BatchNorm2d weight 1 bias 0 and fresh running stats; x, e ~ N(0, 1);
    f = the tensor ``pre_pool(copy)`` returns from a hook; log of the mean L1 distance +
    sum of log sqrt(mean running_var). The draws come from the generator the engine
    seeds, in the same order (weights in modules() order, then x, then e)."""
    n = copy.deepcopy(net).float().train()
    g = torch.Generator().manual_seed(seed * 1000003)
    with torch.no_grad():
        for m in n.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, generator=g)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                if m.affine:
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
        x = torch.randn(shape, generator=g)
        e = torch.randn(shape, generator=g)
        f = pre_pool(n)
        f1, f2 = f(x), f(x + gamma * e)
        delta = torch.mean(torch.sum(torch.abs(f1 - f2), dim=[1, 2, 3]))
        bn = sum(torch.log(torch.sqrt(torch.mean(m.running_var))) for m in n.modules() if isinstance(m, nn.BatchNorm2d))
    return float(torch.log(delta) + bn)


def features_at(module_of, *, pre: bool):
    """f(x) = the input of (pre) / the output of the module ``module_of(net)``."""

    def make(net):
        def f(x):
            kept = []
            m = module_of(net)
            if pre:
                h = m.register_forward_pre_hook(lambda _m, inp: kept.append(inp[0]))
            else:
                h = m.register_forward_hook(lambda _m, _inp, out: kept.append(out))
            net(x)
            h.remove()
            return kept[-1]

        return f

    return make


BEFORE_GAP = features_at(lambda net: net.global_pooling, pre=True)


@pytest.mark.parametrize("arch_str", ARCHS)
def test_zen_equals_the_deepcopy_gaussian_init_reference(toy, arch_str):
    x, y = toy_batch()
    values, _, errors = run_measures(builder(toy, arch_str), x, y, ["zen"], seed=3)
    assert not errors
    expected = ref_zen(built(toy, arch_str, 3), x.shape, 3, BEFORE_GAP)
    assert values["zen"] == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_zen_on_nb201_ignores_data_dtype_and_the_network_state():
    space, shape = small_nb201()
    x, y = toy_batch(n=4, res=16)
    build = builder(space, NB201_ARCH, **shape)
    values, _, errors = run_measures(build, x, y, ["zen"], seed=0)
    assert not errors
    expected = ref_zen(built(space, NB201_ARCH, 0, **shape), x.shape, 0, BEFORE_GAP)
    assert values["zen"] == pytest.approx(expected, rel=1e-5)
    other, _, _ = run_measures(build, torch.zeros_like(x), y, ["zen"], seed=0, dtype=torch.float64)
    assert other["zen"] == values["zen"]  # noise input, always float32
    net = built(space, NB201_ARCH, 0, **shape)
    net(x)  # the shared forward moves the running stats: zen must not read them
    before = {k: v.clone() for k, v in net.state_dict().items()}
    from estbench.estimators.zeroshot.extra.zen import zen

    out = zen(_State(net, x, y, None, seed=0))
    assert math.log(out.feature_distance) + out.log_bn_scale == pytest.approx(expected, rel=1e-5)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(not m._forward_pre_hooks for m in net.modules())


def test_zen_of_a_dead_cell_is_minus_infinity(toy):
    x, y = toy_batch()
    values, _, errors = run_measures(builder(toy, DEAD), x, y, ["zen"], seed=0)
    assert not errors and values["zen"] == -math.inf


def test_zen_on_nb101_takes_the_head_input():
    """NB101's head pools with x.mean((2, 3)): f is its input, the output of the last
    layer (NASLib's NB101 hook)."""
    from estbench.spaces.nb101.network import NB101Network

    spec = ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
    x, y = toy_batch(n=4, res=8)
    values, _, errors = score_model(NB101Network(*spec, c=8, n=1), x, y, ["zen"], seed=5)
    assert not errors
    torch.manual_seed(0)
    expected = ref_zen(NB101Network(*spec, c=8, n=1), x.shape, 5, features_at(lambda n: n.layers[-1], pre=False))
    assert values["zen"] == pytest.approx(expected, rel=1e-5)


def test_zen_without_a_pre_pool_feature_map_is_an_error():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    x, y = toy_batch(n=4, res=8)
    values, _, errors = score_model(net, x, y, ["zen", "l2_norm"], seed=0)
    assert "zen" not in values and "no 4-D pre-global-pool feature map" in errors["zen"]
    assert "l2_norm" in values


# ---- l2_norm ---------------------------------------------------------------------------------
@pytest.mark.parametrize("space_name", ["toy", "nb201"])
def test_l2_norm_is_the_sum_of_the_frobenius_norms(toy, space_name):
    space, shape = (toy, {}) if space_name == "toy" else small_nb201()
    arch_str = ARCHS[0] if space_name == "toy" else NB201_ARCH
    x, y = toy_batch()
    values, _, errors = run_measures(builder(space, arch_str, **shape), x, y, ["l2_norm"], seed=6)
    assert not errors
    net = built(space, arch_str, 6, **shape)
    expected = math.fsum(float(m.weight.detach().double().norm()) for m in layers(net))
    assert values["l2_norm"] == pytest.approx(expected, rel=1e-13)
    again, _, _ = run_measures(builder(space, arch_str, **shape), x, y, ["l2_norm"], seed=6, dtype=torch.float64)
    assert again["l2_norm"] == values["l2_norm"]  # float32 draws, float64 norms


# ---- epe_nas ---------------------------------------------------------------------------------
def ref_epe_nas(net, x, y, n_classes) -> float:
    """EPE-NAS by hand: J = d(sum of logits)/dx by autograd on a copy, numpy rows; per
    class a loop collecting its rows, np.corrcoef, sum of log(|corr| + 1e-5); variant B
    (<= 100 classes) sums the absolute class scores, A divides each by its row count
    (one-row classes skipped) and sums the absolute pairwise differences over the
    number of classes kept."""
    n = copy.deepcopy(net).train()
    xg = x.clone().requires_grad_(True)
    out = n(xg)
    out.backward(torch.ones_like(out))
    jac = xg.grad.detach().numpy().reshape(len(x), -1).astype(np.float64)
    per_class: dict[int, list[np.ndarray]] = {}
    for row, label in zip(jac, y.tolist()):
        per_class.setdefault(label, []).append(row)
    scores = []
    for rows in per_class.values():
        if n_classes > 100 and len(rows) == 1:
            continue
        corr = np.corrcoef(np.array(rows)) if len(rows) > 1 else np.corrcoef(rows[0])
        s = np.sum(np.log(np.abs(corr) + 1e-5))
        scores.append(s / len(rows) if n_classes > 100 else s)
    if n_classes <= 100:
        return float(sum(abs(s) for s in scores))
    if not scores:
        return 0.0
    return float(sum(abs(a - b) for a in scores for b in scores) / len(scores))


@pytest.mark.parametrize("arch_str", ARCHS)
@pytest.mark.parametrize("classes", [10, 120])
def test_epe_nas_equals_the_numpy_per_class_reference(toy, arch_str, classes):
    x, _ = toy_batch(n=16)
    y = torch.tensor([0, 1, 1, 2, 2, 2, 3, 4, 5, 5, 6, 7, 7, 7, 7, 9]) * (classes // 10)
    build = builder(toy, arch_str, num_classes=classes)
    values, _, errors = run_measures(build, x, y, ["epe_nas"], seed=8, dtype=torch.float64)
    assert not errors
    expected = ref_epe_nas(built(toy, arch_str, 8, torch.float64, num_classes=classes), x.double(), y, classes)
    assert values["epe_nas"] == pytest.approx(expected, rel=1e-10)
    assert values["epe_nas"] > 0


def test_epe_nas_edge_cases(toy):
    x, y = toy_batch(n=8)
    with np.errstate(all="ignore"):
        dead, _, _ = run_measures(builder(toy, DEAD), x, y, ["epe_nas"], seed=0)
    assert math.isnan(dead["epe_nas"])  # constant Jacobian rows: nan, as NASLib
    singles = torch.arange(8) * 15  # 120 logits, no class seen twice: variant A keeps none
    a, _, errors = run_measures(builder(toy, ARCHS[0], num_classes=120), x, singles, ["epe_nas"], seed=0)
    assert not errors and a["epe_nas"] == 0.0
    b, _, _ = run_measures(builder(toy, ARCHS[0]), x, torch.arange(8), ["epe_nas"], seed=0)
    assert b["epe_nas"] == pytest.approx(8 * math.log(1 + 1e-5))  # B: each singleton adds |log(1 + k)|
