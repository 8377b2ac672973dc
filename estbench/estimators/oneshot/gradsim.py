"""Gradient similarity between architectures inside a supernet (paper A.3.1, Fig. A15).

For a pair of architectures (a, b) and one batch (x, y), each architecture's gradient of
the mean CE loss with respect to the supernet's parameters is taken with autograd; per
layer, the cosine of the two gradient vectors restricted to the layer's parameters that
BOTH architectures use (a parameter off an architecture's path gets no gradient from it
and is left out of that layer's vectors; zero gradients of used parameters stay in):

    cos_L(a, b) = <g_a|S, g_b|S> / (||g_a|S|| ||g_b|S||),  S = used_L(a) & used_L(b)

computed in float64 from the float32 gradients and clipped to [-1, 1]. None (NULL in the
store) where S is empty, where either restricted gradient is all zero, or where a value
is not finite.

BN as in one-shot evaluation's default (``evaluate.os_scores`` with ``bn='train'``):
every BN normalises with the batch's statistics and leaves its running statistics alone;
dropout is off. The model comes back as it was (modes, running statistics; autograd.grad
never touches ``.grad``).

Layers are the space's (``SearchSpace.supernet_layers``; cell spaces: ``stem``, the
normal cells ``S{stage}C{cell}``, the reduction blocks ``S{stage}R``, ``classifier``)."""

from __future__ import annotations

import math
import time
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from estbench.estimators.oneshot.evaluate import _batch_stats, _is_channels_last, _restored
from estbench.spaces.base import Arch

Batch = tuple[torch.Tensor, torch.Tensor]


def arch_gradients(model: nn.Module, arch: Arch, batch: Batch, params: Sequence[nn.Parameter]) -> list:
    """d CE(model(x, arch), y) / d p for every p of ``params``; None for a parameter the
    architecture does not use. The caller sets the modes (see ``gradient_similarity``)."""
    x, y = batch
    with torch.enable_grad():
        loss = F.cross_entropy(model(x, arch), y)
        return list(torch.autograd.grad(loss, list(params), allow_unused=True))


def layer_cosines(ga: Sequence, gb: Sequence, groups: dict[str, list[int]]) -> dict[str, float | None]:
    """Per layer, the cosine of two gradient lists over the parameters both use (see the
    module docstring); ``groups``: layer -> indices into the lists."""
    out: dict[str, float | None] = {}
    for layer, idx in groups.items():
        shared = [i for i in idx if ga[i] is not None and gb[i] is not None]
        if not shared:
            out[layer] = None
            continue
        a = torch.cat([ga[i].reshape(-1) for i in shared]).double()
        b = torch.cat([gb[i].reshape(-1) for i in shared]).double()
        dot, na, nb = float(a @ b), float(a @ a), float(b @ b)
        if not (math.isfinite(dot) and math.isfinite(na) and math.isfinite(nb)) or na == 0.0 or nb == 0.0:
            out[layer] = None
            continue
        out[layer] = max(-1.0, min(1.0, dot / math.sqrt(na * nb)))
    return out


def gradient_similarity(
    model: nn.Module, pairs: Sequence[tuple[Arch, Arch]], batch: Batch, layers: dict[str, list[str]]
) -> Iterator[tuple[int, dict[str, float | None], float]]:
    """Yield (pair index, layer -> cosine or None, seconds) for every pair, on one batch.
    ``layers``: layer name -> its parameter names, in network order (the space's
    ``supernet_layers``); the model is restored when the iterator
    is exhausted or closed."""
    device = next(model.parameters()).device
    fmt = torch.channels_last if _is_channels_last(model) else torch.contiguous_format
    x, y = batch
    batch = (x.to(device).contiguous(memory_format=fmt), y.to(device))
    named = dict(model.named_parameters())
    params = list(named.values())
    index = {name: i for i, name in enumerate(named)}
    groups = {layer: [index[n] for n in names] for layer, names in layers.items()}
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with _restored(model, bns):
        model.eval()  # dropout off
        _batch_stats(bns)  # batch statistics, running ones untouched
        for p, (a, b) in enumerate(pairs):
            t0 = time.perf_counter()
            ga = arch_gradients(model, a, batch, params)
            gb = arch_gradients(model, b, batch, params)
            yield p, layer_cosines(ga, gb, groups), time.perf_counter() - t0
