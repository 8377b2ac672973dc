"""The torch passes behind the zero-shot measures.

Every pass leaves the network as it found it: hooks are removed, gradients are taken
with ``torch.autograd.grad`` (no ``.grad`` is written), and synflow evaluates the
network functionally on absolute float64 copies of its tensors. What a pass cannot
avoid touching (train mode, BN running statistics, ``requires_grad`` of the weights)
is saved and restored by :func:`preserved` for callers that pass their own model.

One forward serves every BN pass (the reference runs one per measure on a deep copy;
in train mode the batch statistics make those forwards identical, so sharing changes
no value): it accumulates the ReLU kernel (relu_logdet) and taps the conv/linear
outputs (fisher) through hooks, then up to three backward passes reuse its graph. What
each pass hands its measures is declared in :mod:`.plan`; :mod:`.engine` runs them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from estbench.estimators.zeroshot.hessian import input_gradient_only, lean_double_backward
from estbench.estimators.zeroshot.plan import ForwardNeeds, SynflowGradients
from estbench.estimators.zeroshot.relu_kernel import ReluKernel, is_relu

SCORED = (nn.Conv2d, nn.Linear)


def scored_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear modules whose weights are scored, in ``modules()`` order."""
    return [(name, m) for name, m in net.named_modules() if isinstance(m, SCORED)]


@contextlib.contextmanager
def preserved(net: nn.Module) -> Iterator[None]:
    """Run in train mode with every parameter requiring grad (the scored conv/linear
    weights, and BN weights for ntk_cond); restore the modes, the flags and the buffers
    (BN running statistics) afterwards."""
    modes = [(m, m.training) for m in net.modules()]
    flags = [(p, p.requires_grad) for p in net.parameters()]
    buffers = [(b, b.detach().clone()) for b in net.buffers()]
    try:
        net.train()
        for w, _ in flags:
            w.requires_grad_(True)
        yield
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for w, flag in flags:
            w.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


# ---- the shared BN forward --------------------------------------------------------------
def fisher_channel_products(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """g_nk = sum over spatial positions of act * dL/dact, [batch, channels] (``fisher.py``
    hook), without materialising the product."""
    return torch.linalg.vecdot(act.flatten(2), grad.flatten(2)) if act.dim() > 2 else act * grad


class FisherTap:
    """Forward hook on each conv/linear layer that puts a gradient hook on the layer's
    output. While ``armed`` (during the CE backward only: the input-gradient and
    Hessian passes also reach these outputs), the gradient hook reduces (act, dL/dact)
    to g_nk = sum_spatial(act * grad) [batch, channels] on the spot, so no activation
    gradient is kept alive (collecting them as ``autograd.grad`` outputs cost ~10% of a
    backward on CPU)."""

    def __init__(self) -> None:
        self.armed = False
        self.g_nk: dict[int, list[torch.Tensor]] = {}

    def hook_for(self, index: int):
        def on_output(_module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
            if out.requires_grad:
                act = out.detach()
                out.register_hook(lambda grad: self._reduce(index, act, grad))

        return on_output

    def _reduce(self, index: int, act: torch.Tensor, grad: torch.Tensor) -> None:
        if self.armed:
            self.g_nk.setdefault(index, []).append(fisher_channel_products(act, grad.detach()))

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        self.armed = True
        try:
            yield
        finally:
            self.armed = False


def feature_blocks(net: nn.Module) -> list[nn.Module]:
    """The blocks whose outputs are a network's feature maps F_0..F_L (AZ-NAS): the
    model's own ``zs_blocks()`` if it has one, else its ``stem`` and every module of its
    ``cells`` (a supernet candidate: its supernet's). NB201 gives stem + 17 cells
    (reductions included), exactly the reference's ``extract_cell_features``."""
    if hasattr(net, "zs_blocks"):
        return list(net.zs_blocks())
    inner = getattr(net, "supernet", net)
    if hasattr(inner, "zs_blocks"):
        return list(inner.zs_blocks())
    stem, cells = getattr(inner, "stem", None), getattr(inner, "cells", None)
    if stem is None or cells is None:
        raise RuntimeError(f"{type(inner).__name__} has no stem and cells (or zs_blocks()) to take feature blocks from")
    return [stem, *cells]


class BlockTap:
    """Forward hooks keeping each block's output (with its graph), in block order; a
    block called more than once is an error (its feature would be ambiguous)."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        self.blocks = blocks
        self.outputs: list[torch.Tensor | None] = [None] * len(blocks)

    def hook_for(self, index: int):
        def on_output(module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
            if self.outputs[index] is not None:
                raise RuntimeError(f"block {index} ({type(module).__name__}) ran twice in one forward")
            self.outputs[index] = out

        return on_output

    def features(self) -> list[torch.Tensor]:
        missing = [i for i, o in enumerate(self.outputs) if o is None]
        if missing:
            raise RuntimeError(f"blocks {missing} did not run in the forward")
        return list(self.outputs)


class PatternTap:
    """SWAP's sample-wise activation patterns, reduced during the forward: for every
    ``nn.ReLU`` call with a 4-D input, each output position (channel, h, w) is one
    neuron, its pattern the bits (output > 0) over the batch's images, packed into
    uint64 words on the spot. :meth:`distinct` counts the distinct patterns over all
    neurons (``torch.unique(dim=0)`` of the reference's [neurons, batch] sign matrix)."""

    def __init__(self) -> None:
        self.words: list[np.ndarray] = []

    def __call__(self, _module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        if inputs[0].dim() == 4:
            bits = (out.detach().flatten(1) > 0).T.contiguous().cpu().numpy()  # [neurons, batch]
            packed = np.packbits(bits, axis=1, bitorder="little")
            width = -(-packed.shape[1] // 8) * 8
            padded = np.zeros((packed.shape[0], width), np.uint8)
            padded[:, : packed.shape[1]] = packed
            self.words.append(padded.view(np.uint64))

    def distinct(self) -> int | None:
        if not self.words:
            return None
        words = np.concatenate(self.words)
        return int(np.unique(words[:, 0]).size if words.shape[1] == 1 else np.unique(words, axis=0).shape[0])


@dataclass
class Forward:
    """What the shared forward leaves for the backward passes."""

    logits: torch.Tensor
    x: torch.Tensor  # the input leaf (requires grad when an input gradient is wanted)
    fisher: FisherTap | None = None
    relu_kernel: torch.Tensor | None = None
    blocks: BlockTap | None = None
    patterns: PatternTap | None = None


def forward(net: nn.Module, x: torch.Tensor, needs: ForwardNeeds) -> Forward:
    """One forward of the (train-mode) network with only the hooks ``needs`` asks for.
    ``needs.double_backward``: the gradients will be differentiated again (grasp), so CPU
    batch norms and convs record the lean double backward of :mod:`.hessian`
    (first-order values unchanged)."""
    tap = FisherTap() if needs.fisher else None
    kernel = ReluKernel() if needs.relu else None
    blocks = BlockTap(feature_blocks(net)) if needs.blocks else None
    patterns = PatternTap() if needs.patterns else None
    handles = []
    try:
        if tap is not None:
            handles += [m.register_forward_hook(tap.hook_for(i)) for i, (_, m) in enumerate(scored_layers(net))]
        if kernel is not None:
            handles += [m.register_forward_hook(kernel) for m in net.modules() if is_relu(m)]
        if blocks is not None:
            handles += [m.register_forward_hook(blocks.hook_for(i)) for i, m in enumerate(blocks.blocks)]
        if patterns is not None:
            handles += [m.register_forward_hook(patterns) for m in net.modules() if isinstance(m, nn.ReLU)]
        leaf = x.detach().requires_grad_(needs.input_grad)  # a new leaf: the caller's x is untouched
        with torch.set_grad_enabled(needs.grad), lean_double_backward(enabled=needs.double_backward and needs.grad):
            logits = net(leaf)
    finally:
        for h in handles:
            h.remove()
    return Forward(logits, leaf, tap, kernel.kernel if kernel is not None else None, blocks, patterns)


# ---- backward passes over the shared graph --------------------------------------------
def input_gradient(fwd: Forward, *, retain_graph: bool) -> torch.Tensor:
    """d(sum of logits)/dx for the batch (``jacob_cov.py``: ``y.backward(ones_like(y))``).
    An output that does not depend on the input (a supernet candidate without an
    input-output path) has a zero Jacobian, so jacob_cov comes out non-finite, as for
    the standalone network whose dead path multiplies by zero."""
    with input_gradient_only():
        (jac,) = torch.autograd.grad(
            fwd.logits, fwd.x, grad_outputs=torch.ones_like(fwd.logits), retain_graph=retain_graph, allow_unused=True
        )
    return torch.zeros_like(fwd.x) if jac is None else jac.detach()


def ce_gradients(
    fwd: Forward, y: torch.Tensor, weights: list[torch.Tensor], *, create_graph: bool
) -> list[torch.Tensor | None]:
    """Gradients of the mean cross-entropy w.r.t. the scored weights in ONE backward, which
    also feeds the fisher tap. With ``create_graph`` (grasp) the gradients keep their
    graph for the Hessian-gradient product."""
    loss = F.cross_entropy(fwd.logits, y)
    collecting = fwd.fisher.collecting() if fwd.fisher is not None else contextlib.nullcontext()
    with collecting:
        return list(torch.autograd.grad(loss, weights, allow_unused=True, create_graph=create_graph))


def hessian_gradient(weights: list[torch.Tensor], grads: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """H g for g = dL/dw: the gradient of z = sum(stop_grad(g) * g) (``grasp.py`` with its
    defaults T=1, num_iters=1: pass 1 without graph gives g, pass 2 with create_graph
    gives the differentiable g, z.backward() leaves H g in ``weight.grad``). The two
    reference forwards are identical in train mode, so we take both from one."""
    terms = [(g.detach() * g).sum() for g in grads if g is not None and g.requires_grad]
    if not terms:
        return [None] * len(weights)
    return list(torch.autograd.grad(torch.stack(terms).sum(), weights, allow_unused=True))


def fisher_inputs(net: nn.Module, fwd: Forward) -> list[tuple[int, list[torch.Tensor]]]:
    """(fan_in, g_nk per call) for every scored layer, in ``scored_layers`` order."""
    g_nk = fwd.fisher.g_nk if fwd.fisher is not None else {}
    return [(m.weight.shape[1:].numel(), g_nk.get(i, [])) for i, (_, m) in enumerate(scored_layers(net))]


# ---- synflow -----------------------------------------------------------------------------
@contextlib.contextmanager
def bypassed_batchnorm(net: nn.Module) -> Iterator[None]:
    """Make every BatchNorm return its input (the reference's ``copynet(bn=False)`` replaces
    BN forwards by a no-op) without touching the module: a forward hook replaces the
    output, and BN runs in eval mode meanwhile so a batch of one never fails."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = [m.training for m in bns]
    handles = [m.register_forward_hook(lambda _m, inputs, _out: inputs[0]) for m in bns]
    try:
        for m in bns:
            m.train(False)
        yield
    finally:
        for h in handles:
            h.remove()
        for m, mode in zip(bns, modes):
            m.train(mode)


def synflow_gradients(net: nn.Module, image_shape: tuple[int, ...], *, bypass_bn: bool = False) -> SynflowGradients:
    """synflow's pass on ``net`` as it is (with its BNs, if any, in train mode): every
    parameter and buffer made absolute and float64 (``synflow.py``: ``abs_`` on the whole
    state dict, then ``net.double()``), input ones of shape [1, *image_shape], R = sum of
    the output; the scored |w| and dR/dw. The network is evaluated functionally on
    copies, so nothing needs restoring (the reference flips the signs back).
    ``bypass_bn`` removes BN without a rebuild."""
    layers = scored_layers(net)
    scored = {f"{name}.weight" for name, _ in layers}
    tensors: dict[str, torch.Tensor] = {}
    for name, p in net.named_parameters():
        t = p.detach().abs().to(torch.float64)
        tensors[name] = t.requires_grad_(True) if name in scored else t
    for name, b in net.named_buffers():
        tensors[name] = b.detach().abs().to(torch.float64) if b.is_floating_point() else b.detach().clone()
    device = next(iter(tensors.values())).device
    ones = torch.ones((1, *image_shape), dtype=torch.float64, device=device)
    bypass = bypassed_batchnorm(net) if bypass_bn else contextlib.nullcontext()
    with bypass, torch.enable_grad():
        out = functional_call(net, tensors, (ones,))
    weights = [tensors[f"{name}.weight"] for name, _ in layers]
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    return SynflowGradients([w.detach() for w in weights], list(grads))
