"""Zero-shot measures: the contract over the toy space (finite, deterministic), the fused
engine against textbook per-measure implementations (one deep copy and one pass per
measure, the reference code's recipe), pass sharing, error isolation, and that a
caller's model is never changed."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from estbench.errors import UnknownName
from estbench.estimators import ESTIMATORS
from estbench.estimators.zeroshot import DERIVED, SPECS, engine, formulas, measures
from estbench.estimators.zeroshot.engine import run_measures
from estbench.spaces import get_space

# the engine's measures (``vote`` is registered as zeroshot too but computed at analysis time)
ZSE = [n for n in ESTIMATORS.names(kind="zeroshot") if ESTIMATORS.meta(n)["needs"] != "analysis"]
BATCH = 8


def toy_batch(seed: int = 123, n: int = BATCH, res: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, res, res, generator=g), torch.randint(0, 10, (n,), generator=g)


def builder(space, arch):
    return lambda bn: space.build(arch, bn=bn)


# ---- textbook references: a deep copy and a separate pass per measure ----------------
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


# ---- registry and metadata ----------------------------------------------------------------
def test_every_spec_is_registered_with_a_loadable_target():
    assert set(ZSE) == set(SPECS) == set(REFERENCE)
    for name in ZSE:
        meta = ESTIMATORS.meta(name)
        assert meta["needs"] in {"ce_backward", "grasp", "input_grad", "relu_forward", "synflow", "synflow_bn"}
        assert isinstance(meta["settings"], tuple) and meta["description"]
        assert ESTIMATORS.get(name) is getattr(measures, name)
    assert "vote" not in SPECS and DERIVED["vote"]["needs"] == "analysis"


def test_listing_estimators_does_not_import_torch():
    code = "import sys, estbench.estimators as e; e.estimator_names(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_measure_is_rejected(toy):
    x, y = toy_batch()
    with pytest.raises(UnknownName, match="synflw"):
        run_measures(builder(toy, toy.cell.enumerate()[5]), x, y, ["synflw"], seed=0)


# ---- the contract over the whole toy space -------------------------------------------------
@pytest.fixture(scope="module")
def toy_suite():
    """Every measure on every toy arch: twice with seed 0, once with seed 1."""
    space = get_space("toy")
    x, y = toy_batch()
    out = []
    for arch in space.cell.enumerate():
        runs = [run_measures(builder(space, arch), x, y, ZSE, seed=s) for s in (0, 0, 1)]
        out.append((arch, space.is_degenerate(arch), runs))
    return out


@pytest.mark.parametrize("name", ZSE)
def test_contract_finite_and_deterministic(toy_suite, name):
    assert len(toy_suite) == 27
    for arch, degenerate, runs in toy_suite:
        (v0, _, e0), (v0b, _, _), (v1, _, _) = runs
        assert name not in e0, (arch, e0.get(name))
        if not degenerate:
            assert np.isfinite(v0[name]), (arch, v0[name])
        assert v0[name] == v0b[name] or (np.isnan(v0[name]) and np.isnan(v0b[name])), arch
    varied = [runs[0][0][name] != runs[2][0][name] for arch, degenerate, runs in toy_suite if not degenerate]
    assert any(varied), "the seed does not change the weights"


# ---- the fused engine against the references ---------------------------------------------
ARCHS = [
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|",
    "|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|",
]


@pytest.mark.parametrize("arch_str", ARCHS)
def test_fused_suite_matches_per_measure_references(toy, arch_str):
    """float64, so the comparison is about semantics (plain and grasp are signed sums)."""
    arch = toy.parse(arch_str)
    x, y = toy_batch()
    values, timings, errors = run_measures(builder(toy, arch), x, y, ZSE, seed=7, dtype=torch.float64)
    assert not errors
    assert {"build", "forward", "ce_backward", "grasp", "input_grad", "synflow"} <= set(timings)
    torch.manual_seed(7)
    net = toy.build(arch).double()
    for name in ZSE:
        expected = REFERENCE[name](net, x.double(), y)
        assert values[name] == pytest.approx(expected, rel=1e-6, abs=1e-12), name


@pytest.mark.parametrize("arch_str", ARCHS[:1])
def test_float32_suite_close_to_references(toy, arch_str):
    arch = toy.parse(arch_str)
    x, y = toy_batch()
    values, _, errors = run_measures(builder(toy, arch), x, y, ZSE, seed=7)
    assert not errors
    torch.manual_seed(7)
    net = toy.build(arch)
    for name in ZSE:
        assert values[name] == pytest.approx(REFERENCE[name](net, x, y), rel=1e-4, abs=1e-6), name


def test_each_measure_alone_equals_its_value_in_the_suite(toy):
    arch = toy.parse(ARCHS[0])
    x, y = toy_batch()
    suite, _, _ = run_measures(builder(toy, arch), x, y, ZSE, seed=3, dtype=torch.float64)
    for name in ZSE:
        alone, _, errors = run_measures(builder(toy, arch), x, y, [name], seed=3, dtype=torch.float64)
        assert not errors and alone[name] == pytest.approx(suite[name], rel=1e-12), name


def test_measure_functions_equal_the_engine(toy):
    """The registered functions score a caller's model; synflow there bypasses BN with
    hooks instead of building a BN-free network: both must agree."""
    arch = toy.parse(ARCHS[1])
    x, y = toy_batch()
    suite, _, _ = run_measures(builder(toy, arch), x, y, ZSE, seed=5, dtype=torch.float64)
    torch.manual_seed(5)
    net = toy.build(arch).double()
    for name in ZSE:
        assert ESTIMATORS.get(name)(net, x.double(), y) == pytest.approx(suite[name], rel=1e-12), name


# ---- pass sharing ----------------------------------------------------------------------------
def counting_builder(space, arch, counts):
    """Counts forwards of the whole network (by batch size) and backward passes that
    reach its logits."""

    def on_forward(_m, inputs, out):
        counts.setdefault(("forward", inputs[0].shape[0]), 0)
        counts[("forward", inputs[0].shape[0])] += 1
        if out.requires_grad:
            out.register_hook(lambda g: counts.__setitem__("backward", counts.get("backward", 0) + 1))

    def build(bn):
        net = space.build(arch, bn=bn)
        net.register_forward_hook(on_forward)
        return net

    return build


def test_one_forward_and_one_ce_backward_serve_the_ce_measures(toy):
    x, y = toy_batch()
    counts: dict = {}
    build = counting_builder(toy, toy.parse(ARCHS[0]), counts)
    values, timings, errors = run_measures(build, x, y, ["grad_norm", "snip", "plain", "fisher"], seed=0)
    assert not errors and len(values) == 4
    assert counts == {("forward", BATCH): 1, "backward": 1}
    assert set(timings) == {"build", "forward", "ce_backward"}


def test_full_suite_runs_one_batch_forward(toy):
    x, y = toy_batch()
    counts: dict = {}
    run_measures(counting_builder(toy, toy.parse(ARCHS[0]), counts), x, y, ZSE, seed=0)
    assert counts[("forward", BATCH)] == 1  # synflow / synflow_bn add batch-1 forwards only
    assert counts[("forward", 1)] == 2


def test_relu_logdet_alone_runs_without_autograd(toy):
    x, y = toy_batch()
    counts: dict = {}
    run_measures(counting_builder(toy, toy.parse(ARCHS[0]), counts), x, y, ["relu_logdet"], seed=0)
    assert counts == {("forward", BATCH): 1}


# ---- failures and nonfinite values -----------------------------------------------------------
def test_a_failing_measure_loses_no_other(toy, monkeypatch):
    def broken(*_a, **_k):
        raise FloatingPointError("boom")

    monkeypatch.setattr(formulas, "jacob_cov", broken)
    x, y = toy_batch()
    build = builder(toy, toy.parse(ARCHS[0]))
    values, _, errors = run_measures(build, x, y, ZSE, seed=0)
    assert errors == {"jacob_cov": "FloatingPointError: boom"}
    assert set(values) == set(ZSE) - {"jacob_cov"}


def test_synflow_in_the_suite_bypasses_bn_and_alone_builds_without_bn(toy):
    """With other measures synflow reuses the BN network (BNs bypassed, no second
    build); alone it builds the BN-free network. Either way a failing build is recorded
    against the measures it would have served, and the call returns."""
    x, y = toy_batch()
    arch = toy.parse(ARCHS[0])
    built = []

    def build(bn):
        built.append(bn)
        if not bn:
            raise NotImplementedError("no BN-free variant")
        return toy.build(arch)

    values, _, errors = run_measures(build, x, y, ZSE, seed=0)
    assert built == [True] and not errors and set(values) == set(ZSE)
    values, _, errors = run_measures(build, x, y, ["synflow"], seed=0)
    assert built == [True, False] and not values and "NotImplementedError" in errors["synflow"]

    def broken(bn):
        raise RuntimeError("cannot build")

    values, _, errors = run_measures(broken, x, y, ["snip", "synflow"], seed=0)
    assert not values and set(errors) == {"snip", "synflow"}


def test_relu_logdet_hooks_relus_and_relu_conv_bn_wrappers(toy):
    """Deliberately faithful to the reference: its ``'ReLU' in str(type(module))`` also
    matches NB201's ReLUConvBN wrapper, whose input is its inner ReLU's input, so every
    conv edge's codes enter K twice."""
    from estbench.estimators.zeroshot.passes import is_relu
    from estbench.spaces.cellnet import ReLUConvBN

    net = toy.build(toy.parse(ARCHS[0]))
    hooked = [m for m in net.modules() if is_relu(m)]
    n_relu = sum(isinstance(m, nn.ReLU) for m in net.modules())
    n_wrappers = sum(isinstance(m, ReLUConvBN) for m in net.modules())
    assert n_wrappers > 0 and len(hooked) == n_relu + n_wrappers


@pytest.mark.parametrize("shape", [(5, 3), (8, 77), (16, 4, 9, 9)])
def test_code_kernel_bit_and_matmul_paths_are_exact(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    x[0] = 0.0  # exact zeros are "off", as (x > 0) says
    c = (x.flatten(1) > 0).double()
    expected = c @ c.T + (1 - c) @ (1 - c).T
    assert torch.equal(formulas.agreements_bits(x.flatten(1)), expected)
    assert torch.equal(formulas.agreements_matmul(x.flatten(1)), expected)


def test_relu_kernel_matmul_path_equals_the_packed_bits_path(toy, monkeypatch):
    """Off CPU (or without numpy's popcount) each hooked tensor adds one matmul to the
    kernel; on CPU the codes are packed and compared once. Forcing the matmul branch on
    CPU checks the GPU code path's logic: both kernels must be equal exactly."""
    from estbench.estimators.zeroshot import passes

    net = toy.build(toy.parse(ARCHS[0])).train()
    x, _ = toy_batch()

    def kernel():
        fwd = passes.forward(net, x, grad=False, input_grad=False, fisher=False, relu=True)
        return fwd.relu_kernel

    packed = kernel()
    monkeypatch.setattr(formulas, "BITS", False)
    assert torch.equal(kernel(), packed)


def test_degenerate_arch_gives_nonfinite_values_not_errors(toy):
    arch = toy.parse("|none~0|+|none~0|none~1|")
    assert toy.is_degenerate(arch)
    x, y = toy_batch()
    values, _, errors = run_measures(builder(toy, arch), x, y, ["jacob_cov", "relu_logdet"], seed=0)
    assert not errors
    assert np.isnan(values["jacob_cov"]) and values["relu_logdet"] == -np.inf


# ---- purity ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ZSE)
def test_caller_model_is_not_mutated(toy, name):
    torch.manual_seed(0)
    net = toy.build(toy.parse(ARCHS[0]))
    net.eval()
    net.cells[0].train()  # a mixed mode must come back as it was
    net.classifier.weight.requires_grad_(False)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    flags = [p.requires_grad for p in net.parameters()]
    x, y = toy_batch()
    x0 = x.clone()
    value = getattr(measures, name)(net, x, y)
    assert isinstance(value, float)
    after = net.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert [m.training for m in net.modules()] == modes
    assert [p.requires_grad for p in net.parameters()] == flags
    assert all(p.grad is None for p in net.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in net.modules())
    assert torch.equal(x, x0) and not x.requires_grad and x.grad is None


# ---- the BN-free network ---------------------------------------------------------------------
@pytest.mark.parametrize("space_name", ["toy", "nb201"])
def test_bn_free_build_has_identical_weights(space_name):
    space = get_space(space_name)
    arch = space.cell.enumerate()[-1]
    torch.manual_seed(11)
    with_bn = space.build(arch).state_dict()
    torch.manual_seed(11)
    net = space.build(arch, bn=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    without = net.state_dict()
    assert set(without) <= set(with_bn)
    assert all(torch.equal(without[k], with_bn[k]) for k in without)
    assert any(k.endswith("running_mean") for k in with_bn)


def test_engine_uses_spec_passes():
    assert {engine.pass_of(n) for n in ZSE} == {s["needs"] for s in SPECS.values()}
