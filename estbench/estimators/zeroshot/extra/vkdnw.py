"""VKDNW (Tybl & Neumann, CVPR 2025; github:ondratybl/VKDNW ``NB201/ZeroShotProxy/
compute_vkdnw_score.py``): the spectrum of the Fisher information of the softmax model
w.r.t. a few parameters, for the ``vkdnw`` pass (:class:`..plan.LogitFisher`).

theta = entry 0 of each of the first ``params_grad_len`` = 128 tensors of
``net.named_parameters()`` (the paper setting params_grad_len=128, p=1); J_n = dz_n/dtheta
[C, P], the per-image Jacobian of the logits, on the network in eval mode with the
buffers *as built* (``s.buffers``: BN running mean 0 / var 1 for a fresh network; the
shared train-mode forward has moved the network's own). F = mean_n G_n^T G_n in float64
with G_n = L_n J_n, L_n the reference's lower-triangular factor of S_n = diag(pi_n) -
pi_n pi_n^T (LL^T = S_n), pi_n = softmax(z_n) (1 - alpha) + alpha / C, alpha = 0.05; the
pass hands over the singular values of F (= its eigenvalues, F is PSD), descending.

Note the reference's F: it multiplies J by L (not L^T), so its F = mean J^T (L^T L) J,
which is NOT the textbook Fisher mean J^T S J = mean J^T (L L^T) J (L is triangular, so
L^T L != L L^T). We follow the reference's code (it produced the published figures);
:func:`logit_fisher` with ``form="exact"`` gives the textbook one.

How J is computed (exact, cheaper than the reference's ``vmap(jacrev)`` over images,
which takes per-image gradients of whole weight tensors): in eval mode the images are
independent, so one batched forward (``torch.func.vjp`` of a ``functional_call``) and
one call of its pullback per logit index c (cotangent e_c for every image) give every
image's row c at once; the last logit is skipped, the last column of L being 0 (C - 1
backwards of the activations only; ``vmap`` over them is optional, slower on CPU). theta
enters as per-image probes t[n, j] = 0 that forward hooks add to the output of the module
owning tensor j: out + t[:, j] * u, u = d out / d w.flatten()[0] (closed forms for
Conv2d / Linear / BatchNorm, a ``torch.func.jvp`` of the module otherwise), so d z /
dt[n, j] = J_n[:, j]; with t = 0 the forward is unchanged. The network is evaluated with
``functional_call`` on detached parameters and the as-built buffers (nothing is written
to it), its modes are restored and the hooks removed afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp, vjp, vmap

from estbench.estimators.zeroshot.plan import LogitFisher

PARAMS_GRAD_LEN = 128  # the reference's params_grad_len (its paper runs)
ALPHA = 0.05  # the reference's smoothing of the softmax (an fp16 scalar there: 0.049988)
CLASS_CHUNK: int | None = None  # logit indices per vmapped backward (None: one backward each)
CLOSED_FORMS = True  # False: every probe by forward mode (the tests check both agree)


def vkdnw(s) -> LogitFisher:
    """The ``vkdnw`` pass: eigenvalues of the logit Fisher of the batch and the number of
    parameter tensors (aleph)."""
    names = [name for name, _ in s.net.named_parameters()]
    # the last logit's row is not needed: the reference's L has a zero last column
    jac, logits = logit_jacobian(s.net, s.x, names[:PARAMS_GRAD_LEN], s.buffers, skip_last=True)
    return LogitFisher(fisher_eigenvalues(logit_fisher(jac, logits, ALPHA)), len(names))


def fisher_eigenvalues(fisher: torch.Tensor) -> torch.Tensor:
    """Singular values of F, descending (``torch.svd(F).S``); zeros(2) when the SVD fails,
    as the reference (whose H is then 0)."""
    try:
        return torch.linalg.svdvals(fisher)
    except torch.linalg.LinAlgError:
        return torch.zeros(2, dtype=fisher.dtype, device=fisher.device)


# ---- the Fisher from the per-image Jacobians -----------------------------------------------
def smoothed_softmax(logits: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    return torch.softmax(logits, dim=-1) * (1 - alpha) + alpha / logits.shape[-1]


def cholesky_factor(pi: torch.Tensor) -> torch.Tensor:
    """The reference's lower-triangular L with L L^T = diag(pi) - pi pi^T, per row of pi
    [N, C] (its ``cholesky_covariance``): q_i = 1 - sum_{k<=i} pi_k (q_C = 0), d_i =
    sqrt(pi_i q_i / q_{i-1}) (q_0 = 1), L_ii = d_i, L_ij = -pi_i d_j / q_j for i > j."""
    q = 1 - torch.cumsum(pi, dim=-1)
    q[..., -1] = 0
    q_prev = torch.cat([torch.ones_like(q[..., :1]), q[..., :-1]], dim=-1)
    d = torch.sqrt(pi * q / q_prev)
    below = torch.tril(torch.ones(pi.shape[-1], pi.shape[-1], dtype=torch.bool, device=pi.device), diagonal=-1)
    # q_j > 0 for every j < C, the only columns used below the diagonal
    off = torch.where(below, -pi[..., :, None] * (d / torch.where(q > 0, q, 1))[..., None, :], 0)
    return off + torch.diag_embed(d)


def logit_fisher(
    jac: torch.Tensor, logits: torch.Tensor, alpha: float = ALPHA, form: str = "reference"
) -> torch.Tensor:
    """F = mean_n G_n^T G_n in float64 from J [N, C, P] and the logits [N, C].
    ``form="reference"``: G_n = L_n J_n (the reference's F = mean J^T L^T L J); the last
    column of L is 0 (q_C = 0), so J may lack the last logit's row (J [N, C - 1, P]);
    ``"exact"``: G_n = B_n J_n with B_n^T B_n = S_n (the textbook Fisher mean J^T S J):
    B_n J_n = sqrt(pi) * J_n - sqrt(pi) (pi^T J_n), PSD by construction."""
    jac = jac.to(torch.float64)
    pi = smoothed_softmax(logits.detach().to(torch.float64), alpha)
    if form == "reference":
        g = cholesky_factor(pi)[..., : jac.shape[1]] @ jac
    elif form == "exact":
        root = pi.sqrt()[..., None]
        g = root * jac - root * (pi[:, None, :] @ jac)
    else:
        raise ValueError(f"unknown Fisher form {form!r}")
    g = g.reshape(-1, g.shape[-1])
    return g.T @ g / len(jac)


# ---- the per-image Jacobian of the logits w.r.t. entry 0 of some parameter tensors ---------
def logit_jacobian(
    net: nn.Module,
    x: torch.Tensor,
    names: list[str],
    buffers: dict[str, torch.Tensor] | None = None,
    class_chunk: int | None = CLASS_CHUNK,
    skip_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(J [N, C, P], logits [N, C]) of ``net`` in eval mode on ``x`` (module-local probes,
    see the module's docstring), J[n, :, j] = d z_n / d (tensor ``names[j]``).flatten()[0].
    ``buffers``: the buffers to evaluate with (default: the network's own).
    ``class_chunk``: None, one backward (a call of the ``vjp`` pullback) per logit index;
    k, ``vmap`` over k logit indices at a time (batched backwards: on CPU 2-4x slower, as
    convolution_backward's vmap rule is, so not the default; untried on GPU).
    ``skip_last``: J without the last logit's row, [N, C - 1, P] (one backward less)."""
    params = {name: p.detach() for name, p in net.named_parameters()}
    state = {name: b.detach() for name, b in net.named_buffers()}
    state.update(buffers or {})
    owners = _owners(net, names)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is None:
            raise RuntimeError("a BatchNorm without running statistics couples the images in eval mode")
    with eval_mode(net):
        probes = torch.zeros(len(x), len(names), dtype=x.dtype, device=x.device)

        def forward(t: torch.Tensor) -> torch.Tensor:
            with _probed(owners, t):
                return functional_call(net, (params, state), (x,))

        logits, pullback = vjp(forward, probes)
        n, c = logits.shape
        rows = c - 1 if skip_last else c
        eye = torch.eye(c, dtype=logits.dtype, device=logits.device)
        cotangents = eye[:rows, None, :].expand(rows, n, c)  # row k: d z[:, k] / d t, every image at once
        if rows == 0:
            jac = probes.new_zeros((0, n, len(names)))
        elif class_chunk is None:
            jac = torch.stack([pullback(cotangents[k])[0] for k in range(rows)])  # [C, N, P]
        else:
            (jac,) = vmap(pullback, chunk_size=class_chunk)(cotangents)
    return jac.permute(1, 0, 2), logits.detach()


@contextlib.contextmanager
def eval_mode(net: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in net.modules()]
    try:
        net.eval()
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _owners(net: nn.Module, names: list[str]) -> dict[str, tuple[nn.Module, list[tuple[str, int]]]]:
    """module name -> (module, [(attribute, column of theta)]) for the tensors ``names``
    (a tensor shared under several names is selected under the first, as
    ``named_parameters`` lists it once)."""
    modules = dict(net.named_modules())
    owners: dict[str, tuple[nn.Module, list[tuple[str, int]]]] = {}
    for j, name in enumerate(names):
        prefix, _, attr = name.rpartition(".")
        owners.setdefault(prefix, (modules[prefix], []))[1].append((attr, j))
    return owners


@contextlib.contextmanager
def _probed(owners: dict[str, tuple[nn.Module, list[tuple[str, int]]]], t: torch.Tensor) -> Iterator[None]:
    """Forward hooks adding sum_j t[:, j] * d out / d w_j.flatten()[0] to each owner's
    output, over the tensors j it owns (one :class:`_Probe` per call of the module)."""
    busy = [False]  # a forward-mode probe re-runs its module: no probes meanwhile

    def hook_for(module: nn.Module, selected: list[tuple[str, int]]) -> Callable:
        columns = [j for _, j in selected]

        def hook(_m: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor | None:
            if busy[0]:
                return None
            if not isinstance(out, torch.Tensor):
                raise RuntimeError(f"{type(module).__name__} returns {type(out).__name__}, not a tensor")
            forms = [_closed_form(module, attr, inputs, out) if CLOSED_FORMS else None for attr, _ in selected]
            dims = {None if f is None else f[1] for f in forms}
            if len(dims) == 1 and None not in dims:  # nonzero only at index 0 of dimension ``dim``
                dim = dims.pop()
                us = [u.detach().expand_as(out.narrow(dim, 0, 1)) for u, _ in forms]
            else:  # the whole derivative of each, by forward mode
                dim, us = None, [_module_tangent(module, attr, inputs, busy) for attr, _ in selected]
            return _Probe.apply(out, t[:, columns], torch.stack(us), dim)

        return hook

    handles = [m.register_forward_hook(hook_for(m, selected)) for m, selected in owners.values()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class _Probe(torch.autograd.Function):
    """out + sum_j t[n, j] U_j[n] at t = 0 (t [N, k], u [k, N, ...]): the value is out's;
    the gradient passes to out as it is and to t[n, j] as <grad[n], U_j[n]>. U_j is
    ``u[j]`` (held constant: d(t U)/d out = 0 at t = 0) or, given ``dim``, ``u[j]`` at
    index 0 of dimension ``dim`` and 0 elsewhere, so only that slice of the gradient is
    read."""

    generate_vmap_rule = True

    @staticmethod
    def forward(out: torch.Tensor, t: torch.Tensor, u: torch.Tensor, dim: int | None) -> torch.Tensor:
        return out.clone()

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[2])
        ctx.dim = inputs[3]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (u,) = ctx.saved_tensors
        head = grad if ctx.dim is None else grad.narrow(ctx.dim, 0, 1)
        return grad, (head * u).flatten(2).sum(2).T, None, None


def _closed_form(module: nn.Module, attr: str, inputs: tuple, out: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """(d out / d (module.attr).flatten()[0] at output channel 0, the channel dimension)
    for the usual layers; None for any other (then forward mode)."""
    x = inputs[0] if len(inputs) == 1 else None
    if isinstance(module, nn.Conv2d) and x is not None:
        if attr == "bias":
            return torch.ones_like(out[:, :1]), 1
        if attr == "weight" and module.padding_mode == "zeros" and not isinstance(module.padding, str):
            # w[0, 0, 0, 0] joins input channel 0 (of group 0) at kernel offset (0, 0) to output channel 0
            (ph, pw), (sh, sw) = module.padding, module.stride
            u = F.pad(x[:, :1], (pw, pw, ph, ph))[:, :, ::sh, ::sw]
            return u[:, :, : out.shape[2], : out.shape[3]], 1
    if isinstance(module, nn.Linear) and x is not None and attr in ("weight", "bias"):
        return (x[..., :1] if attr == "weight" else torch.ones_like(out[..., :1])), out.dim() - 1
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and x is not None and attr in ("weight", "bias"):
        # eval mode with running statistics: out = (x - mean) / sqrt(var + eps) * weight + bias
        if attr == "bias":
            return torch.ones_like(out[:, :1]), 1
        return (x[:, :1] - module.running_mean[0]) / torch.sqrt(module.running_var[0] + module.eps), 1
    return None


def _module_tangent(module: nn.Module, attr: str, inputs: tuple, busy: list[bool]) -> torch.Tensor:
    """d module(inputs) / d (module.attr).flatten()[0], per image (forward mode)."""
    w = getattr(module, attr)
    direction = torch.zeros_like(w).flatten()
    direction[0] = 1
    busy[0] = True
    try:
        _, tangent = jvp(
            lambda v: functional_call(module, {attr: v}, inputs, strict=False), (w,), (direction.view_as(w),)
        )
    finally:
        busy[0] = False
    return tangent.detach()
