"""VKDNW (github:ondratybl/VKDNW ``NB201/ZeroShotProxy/compute_vkdnw_score.py``): the
``vkdnw`` pass and its measures against a textbook re-implementation of the reference
(a loop over images and logits with ``torch.autograd.grad`` on an eval-mode deep copy
holding the as-built buffers, the reference's Cholesky factor L, F = mean (LJ)^T (LJ),
``torch.svd``, deciles, entropy), the reference's own ``vmap(jacrev)`` route, the
network left as found, and aleph on NB201 (21 + 45 k)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap
from zeroshot_refs import toy_batch

from estbench.estimators.zeroshot import engine
from estbench.estimators.zeroshot.engine import run_measures
from estbench.estimators.zeroshot.extra import vkdnw as V
from estbench.estimators.zeroshot.inits import kaiming_fanin_
from estbench.estimators.zeroshot.measures.vkdnw import decile_entropy
from estbench.estimators.zeroshot.plan import LogitFisher, plan
from estbench.spaces import get_space

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|"
SEED = 3


def toy_net(arch: str = ARCH, seed: int = SEED) -> nn.Module:
    """The engine's build: torch seeded, then the network (re-initialised as the paper)."""
    space = get_space("toy")
    torch.manual_seed(seed)
    return kaiming_fanin_(space.build(space.parse(arch)))


# ---- the textbook reference -----------------------------------------------------------------
def ref_jacobian(net: nn.Module, x: torch.Tensor, buffers: dict, p_len: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """J [N, C, P] one image and one logit at a time, entry 0 of each selected gradient."""
    ref = copy.deepcopy(net)
    with torch.no_grad():
        for name, b in ref.named_buffers():
            b.copy_(buffers[name])
    ref.eval()
    selected = [p for _, p in list(ref.named_parameters())[:p_len]]
    rows, logits = [], []
    for n in range(len(x)):
        z = ref(x[n : n + 1])[0]
        logits.append(z.detach())
        per_class = []
        for c in range(len(z)):
            grads = torch.autograd.grad(z[c], selected, retain_graph=True, allow_unused=True)
            per_class.append(torch.stack([torch.zeros(()) if g is None else g.flatten()[0] for g in grads]))
        rows.append(torch.stack(per_class))
    return torch.stack(rows), torch.stack(logits)


def ref_cholesky(prob: torch.Tensor) -> torch.Tensor:
    """The reference's ``cholesky_covariance`` construction, [N, C, C]."""
    q = torch.ones_like(prob) - torch.cumsum(prob, dim=1)
    q[:, -1] = 0
    q_shift = torch.roll(q, shifts=1, dims=1)
    q_shift[:, 0] = 1
    d = torch.sqrt(prob * q / q_shift)
    L = torch.nan_to_num(-prob[:, :, None] / q[:, None, :], neginf=0.0)
    eye = torch.eye(prob.shape[1], dtype=prob.dtype)
    L = L * (1 - eye) + eye
    L = L * (1 - torch.triu(torch.ones_like(eye), diagonal=1))
    return L @ torch.diag_embed(d)


def ref_fisher(jac: torch.Tensor, logits: torch.Tensor, alpha: float = 0.05) -> torch.Tensor:
    logits = logits.double()
    prob = torch.softmax(logits, dim=1) * (1 - alpha) + alpha / logits.shape[1]
    g = ref_cholesky(prob) @ jac.double()
    return torch.mean(g.transpose(1, 2) @ g, dim=0)


def ref_entropy(fisher: torch.Tensor) -> float:
    lam = torch.svd(fisher).S
    q = torch.quantile(lam, torch.arange(0.1, 1.0, 0.1, dtype=lam.dtype))
    t = q / (torch.linalg.norm(q, ord=1).item() + 1e-10)
    return float(-(t * torch.log(t + 1e-10)).sum())


def jacrev_jacobian(net: nn.Module, x: torch.Tensor, buffers: dict, p_len: int = 128) -> torch.Tensor:
    """The reference's route: vmap over images of jacrev over the selected entries, each
    written into its (detached) tensor for a ``functional_call`` (out of place here)."""
    params = {k: v.detach() for k, v in net.named_parameters()}
    names = list(params)[:p_len]

    def one(image):
        def predict(entries):
            p = dict(params)
            for k, v in entries.items():
                p[k] = torch.cat([v[None], params[k].flatten()[1:]]).view_as(params[k])
            return functional_call(net, (p, buffers), (image[None],))[0]

        return jacrev(predict)({k: params[k].flatten()[0] for k in names})

    with V.eval_mode(net):
        d = vmap(one)(x)
    return torch.stack([d[k] for k in names], dim=-1)


def moved_buffers(net: nn.Module) -> dict:
    """Train-mode forwards move the BN statistics (as the engine's shared forward does)."""
    as_built = {k: b.clone() for k, b in net.named_buffers()}
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(9)) * 3 + 1)
    assert any(not torch.equal(b, as_built[k]) for k, b in net.named_buffers() if k.endswith("running_mean"))
    return as_built


# ---- the pass against the reference ---------------------------------------------------------
def test_jacobian_matches_the_per_image_loop_and_the_reference_jacrev_route():
    net = toy_net()
    as_built = moved_buffers(net)
    x, _ = toy_batch()
    names = [n for n, _ in net.named_parameters()]
    jac, logits = V.logit_jacobian(net, x, names[:128], as_built)
    ref_jac, ref_logits = ref_jacobian(net, x, as_built)
    scale = ref_jac.abs().max()
    assert jac.shape == (len(x), 10, len(names)) and scale > 0
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(jac, ref_jac, rtol=1e-5, atol=1e-6 * scale)
    torch.testing.assert_close(jacrev_jacobian(net, x, as_built), ref_jac, rtol=1e-5, atol=1e-6 * scale)
    # the pass skips the last logit's backward: the reference's L has a zero last column
    short, _ = V.logit_jacobian(net, x, names[:128], as_built, skip_last=True)
    assert torch.equal(short, jac[:, :-1])
    expected = ref_fisher(ref_jac, ref_logits)
    torch.testing.assert_close(V.logit_fisher(short, logits), expected, rtol=1e-4, atol=1e-6 * expected.abs().max())


def test_engine_value_matches_the_reference_with_the_as_built_buffers():
    """With a shared train forward planned (grad_norm), the network's buffers have moved
    when the vkdnw pass runs; it must still use the ones as built."""
    x, y = toy_batch()
    space = get_space("toy")
    arch = space.parse(ARCH)

    def build(bn):
        return kaiming_fanin_(space.build(arch, bn=bn))

    values, _, errors = run_measures(build, x, y, ["vkdnw", "vkdnw_single", "grad_norm"], seed=SEED)
    alone, _, _ = run_measures(build, x, y, ["vkdnw"], seed=SEED)
    assert not errors and values["vkdnw"] == alone["vkdnw"]
    net = toy_net()
    as_built = {k: b.clone() for k, b in net.named_buffers()}
    expected = ref_entropy(ref_fisher(*ref_jacobian(net, x, as_built)))
    assert 0.05 < expected < math.log(9)
    assert values["vkdnw"] == pytest.approx(expected, abs=1e-5)
    aleph = len(list(net.named_parameters()))
    assert values["vkdnw_single"] == pytest.approx(3 * aleph + expected, abs=1e-5)
    moved_buffers(net)
    moved = {k: b.clone() for k, b in net.named_buffers()}
    assert abs(ref_entropy(ref_fisher(*ref_jacobian(net, x, moved))) - expected) > 1e-3


def test_forward_mode_probes_and_batched_backwards_agree_on_other_layers():
    """Layers without a closed form (LayerNorm, a reflect-padded conv, a bare parameter)
    use forward mode; strided / grouped / biased convs, BatchNorm1d and a linear with bias
    the closed forms; both, and the vmapped backwards, equal the per-image loop."""

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.tensor([1.5, -0.5]))

        def forward(self, x):
            return x * self.gain[0] + self.gain[1]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=True)
            self.bn = nn.BatchNorm2d(4)
            self.b = nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2, bias=False)
            self.c = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
            self.norm = nn.LayerNorm([4, 4, 4])
            self.scale = Scale()
            self.fc1 = nn.Linear(64, 6)
            self.bn1 = nn.BatchNorm1d(6)
            self.fc2 = nn.Linear(6, 5)

        def forward(self, x):
            x = torch.tanh(self.bn(self.a(x)))
            x = self.scale(self.norm(torch.relu(self.c(self.b(x)))))
            return self.fc2(torch.tanh(self.bn1(self.fc1(x.flatten(1)))))

    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():  # non-trivial "as built" statistics and affine parameters
        for m in (net.bn, net.bn1):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    buffers = {k: b.clone() for k, b in net.named_buffers()}
    names = [n for n, _ in net.named_parameters()]
    ref_jac, _ = ref_jacobian(net, x, buffers)
    atol = 1e-6 * ref_jac.abs().max()
    assert (ref_jac.abs().amax((0, 1)) > 0).all()
    for closed, chunk in ((True, None), (False, None), (True, 2)):
        V.CLOSED_FORMS = closed
        try:
            jac, _ = V.logit_jacobian(net, x, names, buffers, class_chunk=chunk)
        finally:
            V.CLOSED_FORMS = True
        torch.testing.assert_close(jac, ref_jac, rtol=1e-5, atol=atol)


def test_the_network_is_left_as_found():
    net = toy_net()
    moved_buffers(net)
    net.train()
    net.cells[0].eval()  # a mix of modes
    net.stem[0].weight.requires_grad_(False)
    modes = [m.training for m in net.modules()]
    flags = [p.requires_grad for p in net.parameters()]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = toy_batch()
    s = engine._State(net, x, y, plan([]), buffers={k: b.clone() for k, b in net.named_buffers()})
    out = V.vkdnw(s)
    assert isinstance(out, LogitFisher) and out.n_tensors == len(list(net.named_parameters()))
    assert [m.training for m in net.modules()] == modes
    assert [p.requires_grad for p in net.parameters()] == flags
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in net.modules())


# ---- the measures ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arch_str, k",
    [
        ("|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|skip_connect~1|avg_pool_3x3~2|", 0),
        ("|nor_conv_1x1~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|avg_pool_3x3~2|", 1),
        ("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|", 2),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", 6),
    ],
)
def test_aleph_and_the_selected_entries_on_nb201(arch_str, k):
    """aleph = 21 + 45 k tensors (stem 3, reductions 7 each, lastact 2, classifier 2, 3
    per conv edge in 15 cells); P = min(128, aleph) entries, so as many eigenvalues."""
    space = get_space("nb201")
    torch.manual_seed(0)
    net = space.build(space.parse(arch_str), c=2, n=5)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = V.vkdnw(engine._State(net, x, torch.zeros(2, dtype=torch.long), plan([]), buffers=engine._buffers(net)))
    assert out.n_tensors == 21 + 45 * k
    assert out.eigenvalues.shape == (min(128, 21 + 45 * k),) and out.eigenvalues.dtype == torch.float64


def test_entropy_edge_cases_and_the_single_ordering():
    from estbench.estimators.zeroshot.measures.vkdnw import vkdnw_single

    assert decile_entropy(LogitFisher(torch.zeros(2, dtype=torch.float64), 7)) == 0.0
    flat = decile_entropy(LogitFisher(torch.ones(50, dtype=torch.float64), 7))
    assert flat == pytest.approx(math.log(9), abs=1e-8)
    # aleph dominates, the entropy breaks ties: the paper's dense rank of (aleph, H)
    pairs = [(111, 2.1), (111, 0.3), (66, 2.19), (156, 0.0), (66, 0.0)]
    values = [3 * a + h for a, h in pairs]
    assert sorted(range(5), key=values.__getitem__) == sorted(range(5), key=pairs.__getitem__)
    spectrum = torch.logspace(0, -6, 40, dtype=torch.float64)
    assert vkdnw_single(LogitFisher(spectrum, 111)) == pytest.approx(333 + decile_entropy(LogitFisher(spectrum, 1)))


def test_a_failed_svd_gives_zero_entropy(monkeypatch):
    """As the reference's ``except LinAlgError: lambdas = zeros(2)``; a non-finite F (a
    network whose logits overflow) fails the SVD on CPU, so it scores 0 there too."""
    nan = V.fisher_eigenvalues(torch.full((3, 3), math.nan, dtype=torch.float64))
    assert torch.equal(nan, torch.zeros(2, dtype=torch.float64))

    def fail(_):
        raise torch.linalg.LinAlgError("no convergence")

    monkeypatch.setattr(torch.linalg, "svdvals", fail)
    lam = V.fisher_eigenvalues(torch.eye(3, dtype=torch.float64))
    assert torch.equal(lam, torch.zeros(2, dtype=torch.float64))
    assert decile_entropy(LogitFisher(lam, 3)) == 0.0


def test_the_reference_fisher_is_not_the_textbook_one():
    """The reference multiplies J by its factor L (L L^T = S), so its F is mean J^T L^T L
    J; ``form="exact"`` gives mean J^T S J. Both checked against direct formulas."""
    g = torch.Generator().manual_seed(0)
    jac, logits = torch.randn(4, 6, 5, generator=g, dtype=torch.float64), 2 * torch.randn(4, 6, generator=g)
    pi = V.smoothed_softmax(logits.double())
    S = torch.diag_embed(pi) - pi[:, :, None] * pi[:, None, :]
    L = V.cholesky_factor(pi)
    torch.testing.assert_close(L @ L.transpose(1, 2), S)
    torch.testing.assert_close(L, ref_cholesky(pi))
    exact = (jac.transpose(1, 2) @ S @ jac).mean(0)
    torch.testing.assert_close(V.logit_fisher(jac, logits, form="exact"), exact)
    torch.testing.assert_close(V.logit_fisher(jac, logits), ref_fisher(jac, logits))
    assert (V.logit_fisher(jac, logits) - exact).abs().max() > 1e-3 * exact.abs().max()
