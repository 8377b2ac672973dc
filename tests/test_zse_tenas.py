"""TE-NAS's measures (ntk_cond, linear_regions) against textbook re-implementations of
github:VITA-Group/TENAS: the NTK from B backward passes with ``.grad`` collection
(``get_ntk_n``), the region count from the A(1-A)^T Hamming matrix (``calc_LR``), on the
toy space; the thin network; a missing thin builder."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from zeroshot_refs import toy_batch

from estbench.estimators.zeroshot import engine, passes
from estbench.estimators.zeroshot.extra import tenas
from estbench.estimators.zeroshot.measure import get_measure
from estbench.estimators.zeroshot.measures.tenas import ntk_cond
from estbench.estimators.zeroshot.plan import ForwardNeeds, NTKGram, plan
from estbench.spaces import get_space

ARCHS = [
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|",  # no conv in the cells
]
NB201 = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def toy_net(space, arch_str: str, seed: int = 0, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return space.build(space.parse(arch_str)).to(dtype).train()


def thin_extras(space, arch_str: str) -> dict:
    return {"thin_build": lambda: space.thin_network(space.parse(arch_str))}


# ---- ntk ------------------------------------------------------------------------------------
def ref_ntk(net: nn.Module, x: torch.Tensor, frozen: tuple[str, ...] = ()) -> torch.Tensor:
    """``get_ntk_n`` on a copy: one train-mode forward, then per image
    ``logit[i:i+1].backward(ones, retain_graph=True)``, the .grad of every parameter named
    '*weight*' that got one (``frozen``: names not taken), concatenated; K = J J^T."""
    n = copy.deepcopy(net).train()
    n.zero_grad(set_to_none=True)
    logits = n(x)
    rows = []
    for i in range(len(x)):
        logits[i : i + 1].backward(torch.ones_like(logits[i : i + 1]), retain_graph=True)
        g = [
            p.grad.flatten().clone()
            for name, p in n.named_parameters()
            if "weight" in name and name not in frozen and p.grad is not None
        ]
        rows.append(torch.cat(g))
        n.zero_grad(set_to_none=True)
    j = torch.stack(rows).double()
    return torch.einsum("nc,mc->nm", j, j)


def engine_ntk(net: nn.Module, x: torch.Tensor, measures=("ntk_cond",), check_graph: bool = False) -> torch.Tensor:
    """The ntk step on a fresh shared forward; ``check_graph``: the graph is still usable
    afterwards exactly when a later pass of the plan needs it."""
    state = engine._State(net, x, torch.zeros(len(x), dtype=torch.long), plan([get_measure(m) for m in measures]))
    state.fwd = passes.forward(net, x, ForwardNeeds(grad=True))
    kernel = tenas.ntk(state).kernel
    if check_graph:
        again = lambda: torch.autograd.grad(state.fwd.logits.sum(), list(net.parameters()), allow_unused=True)  # noqa: E731
        if state.plan.graph_used_after("ntk"):
            again()
        else:
            with pytest.raises(RuntimeError, match="backward through the graph a second time"):
                again()
    return kernel


@pytest.mark.parametrize("arch_str", ARCHS)
def test_ntk_gram_matches_b_backward_passes(toy, arch_str):
    """float64: the engine's per-image gradients (on CPU one backward each; the batched
    VJP in the next test) are the reference's B backward passes with train-mode BN, BN
    gamma and the classifier weight included, biases not."""
    net = toy_net(toy, arch_str)
    x, y = toy_batch()
    x = x.double()
    ref = ref_ntk(net, x)
    k = engine_ntk(net, x, check_graph=True)
    assert k.dtype == torch.float64 and k.shape == (len(x), len(x))
    torch.testing.assert_close(k, ref, rtol=1e-10, atol=1e-12)
    eig = np.linalg.eigvalsh(ref.numpy())
    values, _, errors = engine.run_measures(lambda bn: toy.build(toy.parse(arch_str), bn=bn), x, y, ["ntk_cond"],
                                            seed=0, dtype=torch.float64)  # fmt: skip
    assert not errors and values["ntk_cond"] == pytest.approx(eig[-1] / eig[0], rel=1e-9)


@pytest.mark.parametrize("chunk, fail_from", [(0, 0), (64, 0), (64, 1), (3, 0), (3, 1), (3, 2), (1, 5)])
def test_ntk_chunks_and_loop_fallback_are_the_same(toy, monkeypatch, chunk, fail_from):
    """Batched VJPs of ``chunk`` images (0: none, the CPU default); from the
    ``fail_from``-th batched call on they raise and the remaining images get one
    backward each; the same K every way, with the graph retained for a later pass or
    freed at the end."""
    net = toy_net(toy, ARCHS[0])
    x, _ = toy_batch()
    x = x.double()
    expected = engine_ntk(net, x, ("ntk_cond", "grad_norm"), check_graph=True)
    real, calls = torch.autograd.grad, []

    def failing(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            calls.append(1)
            if len(calls) > fail_from:
                raise RuntimeError("no batching rule (test)")
        return real(*args, **kwargs)

    monkeypatch.setattr(tenas, "NTK_CPU_CHUNK", chunk)
    monkeypatch.setattr(torch.autograd, "grad", failing)
    for measures in (("ntk_cond",), ("ntk_cond", "grad_norm")):
        torch.testing.assert_close(engine_ntk(net, x, measures, check_graph=True), expected, rtol=1e-12, atol=1e-12)


def test_ntk_keeps_the_graph_for_the_ce_backward(toy):
    x, y = toy_batch()
    build = lambda bn: toy.build(toy.parse(ARCHS[0]), bn=bn)  # noqa: E731
    both, _, errors = engine.run_measures(build, x, y, ["ntk_cond", "grad_norm"], seed=2)
    alone, _, _ = engine.run_measures(build, x, y, ["grad_norm"], seed=2)
    ntk, _, _ = engine.run_measures(build, x, y, ["ntk_cond"], seed=2)
    assert not errors and both == {**alone, **ntk}


def test_ntk_of_a_frozen_caller_model_takes_every_weight(toy):
    """A caller's model with every parameter frozen: ``passes.preserved`` turns them all
    on for the pass (BN gammas included, as the reference's '*weight*' parameters) and
    restores the flags; the model is left as it was."""
    net = toy_net(toy, ARCHS[0], dtype=torch.float32)
    x, y = toy_batch()
    for p in net.parameters():
        p.requires_grad_(False)
    before = copy.deepcopy(net.state_dict())
    values, _, errors = engine.score_model(net, x, y, ["ntk_cond"])
    assert not errors and not any(p.requires_grad for p in net.parameters())
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    with passes.preserved(net):
        k = ref_ntk(net, x)
    eig = np.linalg.eigvalsh(k.numpy())
    assert values["ntk_cond"] == pytest.approx(eig[-1] / eig[0], rel=1e-3)


def test_ntk_cond_edge_cases():
    assert ntk_cond(NTKGram(torch.eye(4, dtype=torch.float64))) == 1.0
    assert ntk_cond(NTKGram(torch.diag(torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)))) == pytest.approx(4.0)
    assert math.isnan(ntk_cond(NTKGram(torch.zeros(3, 3, dtype=torch.float64))))  # output ignores the weights
    assert math.isnan(ntk_cond(NTKGram(torch.diag(torch.tensor([1.0, -1e-9], dtype=torch.float64)))))
    assert math.isnan(ntk_cond(NTKGram(torch.full((2, 2), math.inf, dtype=torch.float64))))


def test_ntk_of_a_dead_cell_is_nan(toy):
    """The cell output is zero: only constants reach the classifier, K = 0 (reference 1e5)."""
    dead = "|none~0|+|none~0|nor_conv_3x3~1|"
    x, y = toy_batch()
    values, _, errors = engine.run_measures(lambda bn: toy.build(toy.parse(dead), bn=bn), x, y, ["ntk_cond"], seed=0)
    assert not errors and math.isnan(values["ntk_cond"])


# ---- linear regions -------------------------------------------------------------------------
def ref_calc_lr(codes: torch.Tensor) -> float:
    """``calc_LR``: R = A (1-A)^T in fp16, R + R^T (the Hamming distances), S = 1 - sign(R)
    (1 where two rows are identical), n_LR = sum_i 1 / sum_j S_ij."""
    a = codes.half()
    r = a @ (1 - a).T
    r = r + r.T
    s = 1 - torch.sign(r)
    return float((1.0 / s.float().sum(1)).sum())


def ref_codes(net: nn.Module, crops: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """The reference's collector: a hook on every ``nn.ReLU`` keeps the output of a 4-D
    input; per batch, cat(out.view(B, -1)).sign() fills the rows of the sample matrix."""
    feats: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, i, o: feats.append(o.view(len(o), -1)) if i[0].dim() == 4 else None)
        for m in net.modules()
        if isinstance(m, nn.ReLU)
    ]
    rows = []
    net.train()
    with torch.no_grad():
        for k in range(0, len(crops), chunk):
            feats.clear()
            net(crops[k : k + chunk])
            rows.append(torch.cat(feats, 1).sign())
    for h in hooks:
        h.remove()
    return torch.cat(rows)


def test_distinct_rows_equal_the_hamming_matrix_count():
    g = torch.Generator().manual_seed(0)
    base = (torch.rand(7, 5, generator=g) > 0.5).float()
    codes = base[torch.randint(0, 7, (40,), generator=g)]  # many repeats
    assert ref_calc_lr(codes) == pytest.approx(torch.unique(codes, dim=0).shape[0], abs=1e-3)


def test_crops_are_windows_of_one_channel_of_the_batch():
    x = torch.randn(4, 3, 8, 8)
    g = torch.Generator().manual_seed(3)
    crops = tenas.lr_crops(x, g, n=50)
    assert crops.shape == (50, 1, 3, 3)
    windows = {tuple(x[i, c, r : r + 3, q : q + 3].flatten().tolist()) for i in range(4) for c in range(3)
               for r in range(6) for q in range(6)}  # fmt: skip
    assert all(tuple(c.flatten().tolist()) in windows for c in crops)
    assert torch.equal(tenas.lr_crops(x, torch.Generator().manual_seed(3), n=50), crops)


@pytest.mark.parametrize("arch_str", ARCHS + ["|none~0|+|skip_connect~0|none~1|"])
def test_linear_regions_match_the_reference_count(toy, arch_str):
    x, y = toy_batch(n=16)
    seed, batch = 4, 0
    extras = thin_extras(toy, arch_str)
    values, _, errors = engine.run_measures(
        lambda bn: toy.build(toy.parse(arch_str), bn=bn), x, y, ["linear_regions"], seed=seed, extras=extras
    )
    assert not errors
    torch.manual_seed(seed)
    thin = toy.thin_network(toy.parse(arch_str))
    crops = tenas.lr_crops(x, torch.Generator().manual_seed(seed * 1000003 + batch))
    codes = ref_codes(thin, crops)
    n_relu = sum(isinstance(m, nn.ReLU) for m in thin.modules())
    assert codes.shape == (3000, 9 * n_relu)
    assert values["linear_regions"] == pytest.approx(ref_calc_lr(codes), abs=0.05)
    assert values["linear_regions"] == torch.unique(codes, dim=0).shape[0]
    if "nor_conv" not in arch_str:
        assert values["linear_regions"] <= 2**9  # only lastact's 9 codes


def test_linear_regions_are_deterministic_and_touch_nothing(toy):
    arch = toy.parse(ARCHS[0])
    net = toy_net(toy, ARCHS[0], dtype=torch.float32)
    x, y = toy_batch()
    before = copy.deepcopy(net.state_dict())
    extras = thin_extras(toy, ARCHS[0])
    state = engine._State(net, x, y, plan([get_measure("linear_regions")]), seed=1, batch=0, extras=extras)
    rng = torch.get_rng_state()
    first = tenas.linear_regions(state)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is untouched
    torch.manual_seed(123)  # whatever was drawn before: the same thin net
    assert tenas.linear_regions(state) == first and first.samples == 3000
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    other = engine._State(net, x, y, state.plan, seed=1, batch=1, extras=extras)
    assert tenas.linear_regions(other) != first  # other crops
    assert 1 < first.distinct <= 3000 and toy.thin_network(arch) is not None


@pytest.mark.parametrize("extras", [None, {}, {"thin_build": None}, {"thin_build": lambda: None}])
def test_missing_thin_builder_is_an_error_of_the_measure(toy, extras):
    x, y = toy_batch()
    values, _, errors = engine.run_measures(
        lambda bn: toy.build(toy.parse(ARCHS[0]), bn=bn), x, y, ["linear_regions", "ntk_cond"], seed=0, extras=extras
    )
    assert "linear_regions" not in values and "ntk_cond" in values
    assert errors["linear_regions"].startswith("RuntimeError") and "thin" in errors["linear_regions"]


# ---- the thin network -----------------------------------------------------------------------
@pytest.mark.parametrize("space_name, arch_str", [("toy", ARCHS[0]), ("nb201", NB201)])
def test_thin_network_is_the_first_cell_at_one_channel(space_name, arch_str):
    space = get_space(space_name)
    arch = space.parse(arch_str)
    thin = space.thin_network(arch)
    convs = [m for m in thin.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == sum(op.startswith("nor_conv") for op in arch)
    assert all(m.in_channels == m.out_channels == 1 for m in convs)
    assert all(m.num_features == 1 for m in thin.modules() if isinstance(m, nn.BatchNorm2d))
    assert sum(isinstance(m, nn.ReLU) for m in thin.modules()) == len(convs) + 1
    assert len(thin.cell.ops) == len(arch)  # one cell, no stem, no reduction
    assert thin.train()(torch.randn(5, 1, 3, 3)).shape == (5, space.shape().num_classes)
