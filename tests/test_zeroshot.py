"""Zero-shot measures: registration and metadata, the plan the engine derives from it,
the contract over every registered measure on the toy space (finite, deterministic),
the fused engine against textbook per-measure implementations (tests/zeroshot_refs.py),
pass sharing, measures registered from outside (per batch and over all batches), error
isolation, and that a caller's model is never changed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from zeroshot_refs import BATCH, REFERENCE, toy_batch

from estbench.errors import UnknownName
from estbench.estimators import ESTIMATORS
from estbench.estimators.zeroshot import Measure, engine, get_measure, measure_names, register_measure
from estbench.estimators.zeroshot.engine import run_all_batches, run_measures, score_model
from estbench.estimators.zeroshot.plan import PASSES, CEGradients, ForwardNeeds, plan
from estbench.spaces import get_space

ZSE = measure_names(all_batches=False)  # the engine's per-batch measures
ALL_BATCHES = measure_names(all_batches=True)
PAPER = sorted(REFERENCE)  # the paper's nine, with textbook references in zeroshot_refs.py
PAPER_PASSES = {"ce_backward", "grasp", "input_grad", "relu_forward", "synflow", "synflow_bn"}
# the newer proxies (issue 15): each family's references are in its own tests/test_zse_*.py
NEWER = {
    "az_expressivity", "az_progressivity", "az_trainability", "ntk_cond", "linear_regions", "meco", "swap",
    "zen", "l2_norm", "epe_nas", "vkdnw", "vkdnw_single", "zico",
}  # fmt: skip


def builder(space, arch):
    return lambda bn: space.build(arch, bn=bn)


def extras(space, arch) -> dict:
    """What the engine's caller supplies beyond the network (runs.zeroshot does the same)."""
    return {"thin_build": lambda: space.thin_network(arch)}


def toy_archs(space) -> list:
    return [space.parse(s) for s in space.arch_list(None)]


@pytest.fixture
def scratch_estimators(monkeypatch):
    """Measures registered by a test disappear with it (other tests list every measure)."""
    monkeypatch.setattr(ESTIMATORS, "_entries", dict(ESTIMATORS._entries))


# ---- registry and metadata ----------------------------------------------------------------
def test_every_measure_is_registered_with_its_metadata():
    assert set(ZSE) | set(ALL_BATCHES) == set(REFERENCE) | NEWER and ALL_BATCHES == ["zico"]
    for name in ZSE + ALL_BATCHES:
        meta = ESTIMATORS.meta(name)
        assert meta["kind"] == "zeroshot" and meta["derived"] is False and meta["all_batches"] is (name == "zico")
        assert meta["needs"] in PASSES and isinstance(meta["higher_is_better"], bool)
        assert isinstance(meta["settings"], tuple) and meta["description"]
        assert meta["data_free"] is PASSES[meta["needs"]].data_free
        m = ESTIMATORS.get(name)
        assert isinstance(m, Measure) and m is get_measure(name) and m.needs == meta["needs"]
    from estbench.runs.vote import score_vote

    for name in ("vote", "vote_borda"):  # the paper's pairwise majority, and the Borda count
        vote = ESTIMATORS.meta(name)
        assert vote["kind"] == "zeroshot" and vote["derived"] is True and vote["needs"] == "analysis"
        assert vote["higher_is_better"] is True and vote["description"]
        assert ESTIMATORS.get(name) is score_vote


def test_listing_estimators_does_not_import_torch():
    code = "import sys, estbench.estimators as e; e.ESTIMATORS.names(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_measure_is_rejected(toy):
    x, y = toy_batch()
    with pytest.raises(UnknownName, match="synflw.*Did you mean synflow"):
        run_measures(builder(toy, toy_archs(toy)[5]), x, y, ["synflw"], seed=0)
    with pytest.raises(UnknownName, match="zero-shot measure 'params'"):
        get_measure("params")  # an estimator, but not a measure


def test_register_measure_validates_its_metadata(scratch_estimators):
    kw = dict(higher_is_better=True, description="d", compute=lambda p: 0.0)
    with pytest.raises(ValueError, match="unknown pass 'ce_backwards'"):
        register_measure("bad", needs="ce_backwards", **kw)
    with pytest.raises(ValueError, match="no optional product 'fisher'"):
        register_measure("bad", needs="input_grad", uses=("fisher",), **kw)
    with pytest.raises(ValueError, match="higher_is_better"):
        register_measure("bad", needs="synflow", higher_is_better=1, description="d", compute=lambda p: 0.0)
    with pytest.raises(ValueError, match="twice"):
        register_measure("snip", needs="ce_backward", **kw)
    m = register_measure("free", needs="synflow_bn", **kw)  # settings default to the pass's
    assert ESTIMATORS.meta("free")["settings"] == PASSES["synflow_bn"].settings and m.needs == "synflow_bn"


# ---- the plan comes from the metadata -----------------------------------------------------------
def _plan(*names, **kw):
    return plan([get_measure(n) for n in names], **kw)


def test_plan_is_the_union_of_the_needs_with_only_the_hooks_needed():
    p = _plan("snip", "grad_norm")
    assert p.passes == ("ce_backward",) and p.forward == ForwardNeeds(grad=True) and p.bn_network
    assert _plan("fisher").forward == ForwardNeeds(grad=True, fisher=True)
    p = _plan("grasp")  # grasp builds on the CE pass, whose gradients keep their graph
    assert p.passes == ("ce_backward", "grasp") and p.forward.double_backward
    assert not _plan("snip", "jacob_cov").forward.double_backward
    assert _plan("relu_logdet").forward == ForwardNeeds(relu=True)  # no autograd at all
    p = _plan("synflow")  # alone: a BN-free build, no shared forward
    assert p.passes == ("synflow",) and p.forward is None and not p.bn_network
    p = _plan(*PAPER)
    assert p.passes == tuple(q for q in PASSES if q in PAPER_PASSES) and p.bn_network
    assert p.forward == ForwardNeeds(grad=True, input_grad=True, fisher=True, relu=True, double_backward=True)
    assert p.graph_used_after("input_grad") and not _plan("jacob_cov").graph_used_after("input_grad")
    assert set(p.affected("ce_backward")) == {"grad_norm", "plain", "snip", "fisher", "grasp"}
    p = plan([get_measure(n) for n in ZSE + ALL_BATCHES])  # every pass has a measure
    assert p.passes == tuple(PASSES)
    assert p.forward == ForwardNeeds(True, True, True, True, True, blocks=True, patterns=True)
    assert _plan("swap").forward == ForwardNeeds(patterns=True) and _plan("meco").forward is None
    assert (
        p.graph_used_after("az_blocks") and p.graph_used_after("ntk") and not _plan("ntk_cond").graph_used_after("ntk")
    )


def test_every_pass_has_its_torch_step():
    for name in PASSES:
        assert callable(engine.step(name)), name
    assert set(engine._STEPS) == set(PASSES)


# ---- the contract over every registered measure on the whole toy space -----------------------
@pytest.fixture(scope="module")
def toy_suite():
    """Every measure on every toy arch: twice with seed 0, once with seed 1."""
    space = get_space("toy")
    x, y = toy_batch()
    batches = [toy_batch(), toy_batch(seed=5)]
    out = []
    for arch in toy_archs(space):
        runs = []
        for s in (0, 0, 1):
            values, _, errors = run_measures(builder(space, arch), x, y, ZSE, seed=s, extras=extras(space, arch))
            if ALL_BATCHES:
                v, _, e = run_all_batches(builder(space, arch), batches, ALL_BATCHES, seed=s)
                values, errors = {**values, **v}, {**errors, **e}
            runs.append((values, errors))
        out.append((arch, space.is_degenerate(arch), runs))
    return out


# -inf by the reference's design on non-degenerate archs: AZ-NAS scores a block that
# passes its gradient through unchanged (an identity cell) -inf
EXPECTED_NONFINITE = {"az_trainability": lambda space, arch: space.cell.canonical(arch, "computational") == "0"}


@pytest.mark.parametrize("name", ZSE + ALL_BATCHES)
def test_contract_finite_and_deterministic(toy_suite, name):
    assert len(toy_suite) == 27
    for arch, degenerate, runs in toy_suite:
        (v0, e0), (v0b, _), (v1, _) = runs
        assert name not in e0, (arch, e0.get(name))
        assert isinstance(v0[name], float)
        exempt = EXPECTED_NONFINITE.get(name, lambda *_: False)(get_space("toy"), arch)
        if not degenerate and not exempt:
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
    values, timings, errors = run_measures(builder(toy, arch), x, y, PAPER, seed=7, dtype=torch.float64)
    assert not errors
    assert set(timings) == {"build", "forward"} | PAPER_PASSES
    torch.manual_seed(7)
    net = toy.build(arch).double()
    for name in PAPER:
        expected = REFERENCE[name](net, x.double(), y)
        assert values[name] == pytest.approx(expected, rel=1e-6, abs=1e-12), name


@pytest.mark.parametrize("arch_str", ARCHS[:1])
def test_float32_suite_close_to_references(toy, arch_str):
    arch = toy.parse(arch_str)
    x, y = toy_batch()
    values, _, errors = run_measures(builder(toy, arch), x, y, PAPER, seed=7)
    assert not errors
    torch.manual_seed(7)
    net = toy.build(arch)
    for name in PAPER:
        assert values[name] == pytest.approx(REFERENCE[name](net, x, y), rel=1e-4, abs=1e-6), name


def test_each_measure_alone_equals_its_value_in_the_suite(toy):
    arch = toy.parse(ARCHS[0])
    x, y = toy_batch()
    more = extras(toy, arch)
    suite, _, _ = run_measures(builder(toy, arch), x, y, ZSE, seed=3, dtype=torch.float64, extras=more)
    for name in ZSE:
        alone, _, errors = run_measures(builder(toy, arch), x, y, [name], seed=3, dtype=torch.float64, extras=more)
        assert not errors and alone[name] == pytest.approx(suite[name], rel=1e-12), name


def test_score_model_equals_the_engine(toy):
    """score_model scores a caller's model; synflow there bypasses BN with hooks instead
    of building a BN-free network: both must agree."""
    arch = toy.parse(ARCHS[1])
    x, y = toy_batch()
    more = extras(toy, arch)
    suite, _, _ = run_measures(builder(toy, arch), x, y, ZSE, seed=5, dtype=torch.float64, extras=more)
    torch.manual_seed(5)
    net = toy.build(arch).double()
    for name in ZSE:
        values, _, errors = score_model(net, x.double(), y, [name], seed=5, extras=more)
        assert not errors and values[name] == pytest.approx(suite[name], rel=1e-12), name


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
    run_measures(counting_builder(toy, toy.parse(ARCHS[0]), counts), x, y, PAPER, seed=0)
    assert counts[("forward", BATCH)] == 1  # synflow / synflow_bn add batch-1 forwards only
    assert counts[("forward", 1)] == 2


def test_relu_logdet_alone_runs_without_autograd(toy):
    x, y = toy_batch()
    counts: dict = {}
    run_measures(counting_builder(toy, toy.parse(ARCHS[0]), counts), x, y, ["relu_logdet"], seed=0)
    assert counts == {("forward", BATCH): 1}


# ---- measures registered from outside the package ------------------------------------------
def test_a_new_measure_is_one_registration_and_shares_its_pass(toy, scratch_estimators):
    @register_measure("jac_abs", needs="input_grad", higher_is_better=True, description="sum |dS/dx|")
    def jac_abs(p) -> float:
        return float(p.jacobian.abs().sum())

    x, y = toy_batch()
    counts: dict = {}
    build = counting_builder(toy, toy.parse(ARCHS[0]), counts)
    values, timings, errors = run_measures(build, x, y, ["jacob_cov", "jac_abs"], seed=0)
    assert not errors and values["jac_abs"] > 0 and "jac_abs" in measure_names()
    assert counts == {("forward", BATCH): 1, "backward": 1}  # the input gradient, once for both
    assert set(timings) == {"build", "forward", "input_grad"}


def test_an_all_batches_measure_sees_every_batch_once(toy, scratch_estimators):
    """A made-up all-batches measure (ZiCo's shape: per-batch CE gradients of every batch
    in, one value out): here the mean over batches of grad_norm's per-batch value."""
    seen = []

    def mean_grad_norm(outputs: list[CEGradients]) -> float:
        seen.append(len(outputs))
        return sum(get_measure("grad_norm").compute(p) for p in outputs) / len(outputs)

    register_measure(
        "mean_grad_norm", mean_grad_norm, needs="ce_backward", all_batches=True, higher_is_better=True,
        description="mean over batches of grad_norm",
    )  # fmt: skip
    meta = ESTIMATORS.meta("mean_grad_norm")
    assert meta["all_batches"] is True and meta["data_free"] is False
    assert "mean_grad_norm" in measure_names(all_batches=True)
    build = builder(toy, toy.parse(ARCHS[0]))
    batches = [toy_batch(seed=s) for s in (1, 2, 3)]
    values, timings, errors = run_all_batches(build, batches, ["mean_grad_norm"], seed=4)
    assert not errors and seen == [3] and set(timings) == {"build", "forward", "ce_backward"}
    per_batch = [run_measures(build, x, y, ["grad_norm"], seed=4)[0]["grad_norm"] for x, y in batches]
    assert values["mean_grad_norm"] == sum(per_batch) / 3  # same weights, same passes: exact
    with pytest.raises(ValueError, match="run_all_batches"):
        run_measures(build, *batches[0], ["mean_grad_norm"], seed=4)
    with pytest.raises(ValueError, match="run_measures"):
        run_all_batches(build, batches, ["grad_norm"], seed=4)


def test_an_all_batches_measure_fails_when_its_pass_fails_on_a_batch(toy, scratch_estimators):
    register_measure(
        "n_batches_seen", lambda outputs: float(len(outputs)), needs="relu_forward", all_batches=True,
        higher_is_better=True, description="count",
    )  # fmt: skip
    build = builder(toy, toy.parse(ARCHS[0]))
    good = toy_batch()
    values, _, errors = run_all_batches(build, [good, good], ["n_batches_seen"], seed=0)
    assert values == {"n_batches_seen": 2.0} and not errors
    bad = (torch.randn(BATCH, 5, 8, 8), good[1])  # 5 channels: the forward fails
    values, _, errors = run_all_batches(build, [good, bad], ["n_batches_seen"], seed=0)
    assert not values and "RuntimeError" in errors["n_batches_seen"]


# ---- failures and nonfinite values -----------------------------------------------------------
def test_a_failing_measure_loses_no_other(toy, monkeypatch):
    def broken(_p):
        raise FloatingPointError("boom")

    entry = ESTIMATORS.entry("jacob_cov")
    monkeypatch.setattr(entry, "target", Measure("jacob_cov", "input_grad", broken))
    x, y = toy_batch()
    arch = toy.parse(ARCHS[0])
    values, _, errors = run_measures(builder(toy, arch), x, y, ZSE, seed=0, extras=extras(toy, arch))
    assert errors == {"jacob_cov": "FloatingPointError: boom"}
    assert set(values) == set(ZSE) - {"jacob_cov"}


def test_a_failing_pass_fails_its_measures_and_those_built_on_it(toy, monkeypatch):
    from estbench.estimators.zeroshot import passes

    def broken(*_a, **_k):
        raise RuntimeError("no backward")

    monkeypatch.setattr(passes, "ce_gradients", broken)
    x, y = toy_batch()
    arch = toy.parse(ARCHS[0])
    values, _, errors = run_measures(builder(toy, arch), x, y, ZSE, seed=0, extras=extras(toy, arch))
    assert set(errors) == {"grad_norm", "plain", "snip", "fisher", "grasp"}
    assert set(values) == set(ZSE) - set(errors)


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

    values, _, errors = run_measures(build, x, y, ZSE, seed=0, extras=extras(toy, arch))
    assert built == [True] and not errors and set(values) == set(ZSE)
    values, _, errors = run_measures(build, x, y, ["synflow"], seed=0)
    assert built == [True, False] and not values and "NotImplementedError" in errors["synflow"]

    def broken(bn):
        raise RuntimeError("cannot build")

    values, _, errors = run_measures(broken, x, y, ["snip", "synflow"], seed=0)
    assert not values and set(errors) == {"snip", "synflow"}


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
    values, _, errors = score_model(net, x, y, [name], extras=extras(toy, toy.parse(ARCHS[0])))
    assert not errors and isinstance(values[name], float)
    after = net.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert [m.training for m in net.modules()] == modes
    assert [p.requires_grad for p in net.parameters()] == flags
    assert all(p.grad is None for p in net.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in net.modules())
    assert torch.equal(x, x0) and not x.requires_grad and x.grad is None
