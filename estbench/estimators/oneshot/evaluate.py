"""One-shot scores: the accuracy and CE loss of architectures inside a trained supernet.

``bn='train'`` (the paper's protocol): each forward normalises with the statistics of its
own batch; running statistics are neither used nor changed. ``bn='recalibrate'`` (an
extension): for every architecture, re-estimate the BN running statistics on
``recal_batches`` of training images (a cumulative average over them, like fvcore's
``update_bn_stats``) and evaluate in eval mode. Dropout is off in both. The caller's
model comes back unchanged (modes, running statistics, momenta restored).

``average_checkpoints`` is the temporal ensemble of Sec. 6.1 (mean weights of the last K
checkpoints)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from estbench.data.cifar10 import ImageSet, fixed_batches
from estbench.errors import BadInput
from estbench.estimators.oneshot.checkpoint import load_checkpoint
from estbench.spaces.base import Arch, SearchSpace

Batch = tuple[torch.Tensor, torch.Tensor]
BN_MODES = ("train", "recalibrate")


def os_scores(
    model: nn.Module,
    archs: Sequence[Arch],
    batches: Sequence[Batch],
    bn: str = "train",
    recal_batches: Sequence[Batch] | None = None,
) -> Iterator[tuple[int, int, float, float, float]]:
    """Yield (arch index, batch index, accuracy in [0, 1], mean CE loss, seconds) for every
    architecture and batch, architecture by architecture. The model is in scoring mode
    while the iterator runs and restored when it is exhausted or closed."""
    if bn not in BN_MODES:
        raise BadInput(f"unknown BN mode {bn!r} for one-shot evaluation; choose one of: {', '.join(BN_MODES)}")
    if bn == "recalibrate" and not recal_batches:
        raise BadInput("bn='recalibrate' needs recal_batches (training images)")
    device = next(model.parameters()).device
    fmt = torch.channels_last if _is_channels_last(model) else torch.contiguous_format
    batches = [_to(b, device, fmt) for b in batches]
    recal = [_to(b, device, fmt) for b in recal_batches or ()]
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with _restored(model, bns):
        model.eval()  # dropout off; BN switched per architecture
        for a, arch in enumerate(archs):
            for row in _score_arch(model, bns, arch, batches, bn, recal):
                yield (a, *row)


@torch.no_grad()
def _score_arch(model, bns, arch: Arch, batches: list[Batch], bn: str, recal: list[Batch]) -> list[tuple]:
    """(batch index, accuracy, loss, seconds) of one architecture. A function of its own
    so that grad mode is off only while it runs, not in the caller between yields."""
    if bn == "train":
        _batch_stats(bns)
    else:
        _recalibrate(model, bns, arch, recal)
    out = []
    for b, (x, y) in enumerate(batches):
        t0 = time.perf_counter()
        logits = model(x, arch)
        loss = F.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
        out.append((b, acc, loss, time.perf_counter() - t0))
    return out


def _to(batch: Batch, device: torch.device, fmt: torch.memory_format) -> Batch:
    x, y = batch
    return x.to(device).contiguous(memory_format=fmt), y.to(device)


def _is_channels_last(model: nn.Module) -> bool:
    w = next(p for p in model.parameters() if p.dim() == 4)  # the first conv's weight
    return w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()


def _batch_stats(bns: list[nn.Module]) -> None:
    """Normalise with batch statistics without touching the running ones."""
    for m in bns:
        m.train()
        m.track_running_stats = False


def _recalibrate(model: nn.Module, bns: list[nn.Module], arch: Arch, recal: list[Batch]) -> None:
    for m in bns:
        m.reset_running_stats()
        m.track_running_stats, m.momentum = True, None  # None: cumulative average over the batches
        m.train()
    for x, _ in recal:
        model(x, arch)
    for m in bns:
        m.eval()


@contextmanager
def _restored(model: nn.Module, bns: list[nn.Module]):
    modes = {m: m.training for m in model.modules()}
    saved = [
        (m.track_running_stats, m.momentum, {k: v.clone() for k, v in m._buffers.items() if v is not None}) for m in bns
    ]
    try:
        yield
    finally:
        for m, (track, momentum, buffers) in zip(bns, saved):
            m.track_running_stats, m.momentum = track, momentum
            for k, v in buffers.items():
                m._buffers[k].copy_(v)
        for m, training in modes.items():
            m.training = training


# ---- data --------------------------------------------------------------------------
def split_batches(images: ImageSet, indices: np.ndarray, batch_size: int, n_batches: int, seed: int = 0) -> list[Batch]:
    """Fixed, unaugmented batches from one part of the split (``train.split_indices``)."""
    return fixed_batches(images, batch_size, n_batches, seed, indices=indices)


# ---- checkpoints -------------------------------------------------------------------
def average_checkpoints(paths: Sequence[Path | str]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the model weights (and BN running statistics) of the
    checkpoints; integer buffers (BN batch counters) are taken from the last one."""
    if not paths:
        raise BadInput("average_checkpoints needs at least one checkpoint")
    states = [load_checkpoint(p)["model"] for p in paths]
    keys = list(states[-1])
    for p, s in zip(paths, states):
        if list(s) != keys or any(s[k].shape != states[-1][k].shape for k in keys):
            raise BadInput(f"{p}: its supernet does not match the other checkpoints'")
    out = {}
    for k in keys:
        last = states[-1][k]
        if last.is_floating_point():
            mean = torch.stack([s[k].to(torch.float64) for s in states]).mean(0)
            out[k] = mean.to(last.dtype)
        else:
            out[k] = last.clone()
    return out


def model_from_checkpoint(
    path_or_state: Path | str | dict[str, Any], space: SearchSpace, device: str = "cpu", channels_last: bool = True
) -> nn.Module:
    """The supernet of a checkpoint file, a loaded checkpoint, or a bare model state dict
    (e.g. from ``average_checkpoints``; the space reads its shape off the weights)."""
    state = path_or_state if isinstance(path_or_state, dict) else load_checkpoint(path_or_state)
    weights = state["model"] if "model" in state else state
    config = state.get("config", {}) if "model" in state else {}
    if "model" in state and state.get("space") not in (None, space.name):
        raise BadInput(f"the checkpoint holds a {state.get('space')} supernet, not {space.name}")
    try:
        settings = space.supernet_settings(weights)
        model = space.supernet(dropout=config.get("dropout", 0.1), **settings)
        model.load_state_dict(weights)
    except (KeyError, IndexError, ValueError, RuntimeError) as e:
        reason = " ".join(str(e).split())[:160]
        raise BadInput(f"the checkpoint's weights do not fit the {space.name} supernet ({reason})") from None
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.to(device)
