"""Supernet training (paper Sec. 2.1, Appendix D / Table A13) with exact resume.

Each step draws S x ``sampler.step()`` architectures, averages their CE gradients on one
augmented batch, clips the gradient norm and takes an SGD step; the learning rate halves
when the epoch's average training loss has not decreased for ``lr_patience`` epochs
(``ReduceLROnPlateau``). Checkpoints hold everything the next epoch depends on (weights,
optimizer, scheduler, every RNG), so ``resume=True`` continues bit-identically on the
same device.

The forgetting probe (paper Sec. 5.3, Fig. A14; ``ForgettingProbe``, off by default)
measures, at N steps of every epoch, the accuracy of the architecture trained at that
step on one fixed validation batch right after the step, and again after the epoch. It
only reads the model (``os_scores``: no gradient, BN with batch statistics, running
statistics, modes and buffers restored), consumes neither the data nor the sampler
stream, and is not part of the config or the checkpoint: weights, losses and resume are
bit-identical with and without it, and it may be switched on, off or changed at a resume.

Training presets belong to the space (``space.presets``; the cell spaces' are in
``spaces/cell/presets.py``); ``preset_config`` applies one. The trainer only calls the
search-space protocol: ``space.supernet``, ``space.make_sampler``, ``space.checkpoint_info``.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from estbench.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD, ImageSet, fixed_batches, train_valid_split
from estbench.errors import BadInput, EstbenchError, UnknownName
from estbench.estimators.oneshot.checkpoint import checkpoint_path, list_checkpoints, load_checkpoint, save_checkpoint
from estbench.estimators.oneshot.evaluate import os_scores
from estbench.spaces.base import SearchSpace

__all__ = [
    "TrainConfig", "EpochStats", "ForgettingProbe", "ProbeRow", "train_supernet", "resume_state", "probe_steps",
    "list_checkpoints", "load_checkpoint",
]  # fmt: skip

PAD = 4  # random-crop padding of the standard CIFAR augmentation
# fields a resumed run may change; any other difference from the checkpoint is an error
RESUMABLE_CHANGES = ("epochs", "checkpoint_every", "device")
MAX_SEED = 2**31 - 1
PROBE_STREAM = 3  # seed stream of the probe's validation batch (1: data, 2: sampler)


@dataclass(frozen=True)
class TrainConfig:
    """Supernet training settings; defaults are the paper's NB201 ones (Table A13)."""

    epochs: int = 1000
    seed: int = 20  # the paper's seeds: 20, 2020, 202020
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 512
    grad_clip: float = 5.0
    dropout: float = 0.1
    lr_patience: int = 30
    lr_factor: float = 0.5
    sampler: str = "uniform"
    mc_samples: int = 1
    c: int = 16
    n: int = 5
    num_classes: int = 10
    bn_affine: bool = False
    checkpoint_every: int = 50
    train_images: int | None = None  # None: the whole training split; N: a fixed seeded subset
    valid_fraction: float = 0.2
    split_seed: int = 0
    augment: bool = True
    channels_last: bool = True  # memory format only: ~1.7x faster on CPU, same function
    device: str = "cpu"

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "mc_samples", "c", "n", "num_classes", "checkpoint_every", "lr_patience")
        bad = [f"{k}={getattr(self, k)}" for k in positive if getattr(self, k) < 1]
        if self.train_images is not None and self.train_images < 1:
            bad.append(f"train_images={self.train_images}")
        if not 0 <= self.seed <= MAX_SEED:  # numpy seeds are non-negative; scores.seed is a 32-bit column
            bad.append(f"seed={self.seed} (0 to {MAX_SEED})")
        if not self.lr > 0 or not 0 < self.lr_factor < 1 or not 0 <= self.dropout < 1 or not self.grad_clip > 0:
            bad.append("lr > 0, 0 < lr_factor < 1, 0 <= dropout < 1 and grad_clip > 0 are required")
        if bad:
            raise BadInput(f"bad training config: {', '.join(bad)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BadInput(f"unknown training settings: {', '.join(unknown)}")
        return cls(**d)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def preset_config(space: SearchSpace, name: str, **overrides: Any) -> TrainConfig:
    """The space's preset ``name`` with ``overrides`` (None values are ignored); an
    unknown sampler is refused here, before a run is recorded."""
    if name not in space.presets:
        raise UnknownName(f"unknown training preset {name!r} for {space.name}. Known: {', '.join(space.presets)}.")
    cfg = TrainConfig.from_dict({**space.presets[name], **{k: v for k, v in overrides.items() if v is not None}})
    check_sampler(space, cfg)
    return cfg


def check_sampler(space: SearchSpace, cfg: TrainConfig) -> None:
    """UnknownName, with suggestions, unless the space has the sampler ``cfg.sampler``."""
    if cfg.sampler not in space.sampler_names():
        raise UnknownName(space.samplers.unknown_message(cfg.sampler))


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based: the number of epochs done
    train_loss: float  # mean CE over the epoch's images and sampled architectures
    lr: float  # the learning rate used during the epoch
    seconds: float
    steps: int


@dataclass(frozen=True)
class ForgettingProbe:
    """The forgetting probe (paper Sec. 5.3, Fig. A14): ``probes`` steps per epoch
    (``probe_steps``; 0 = off), each architecture evaluated on one fixed batch of
    ``batch_size`` validation images (``probe_batch``). Not a training setting."""

    probes: int = 0
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.probes < 0:
            raise BadInput(f"--probe-forgetting {self.probes}: must be 0 (off) or a number of probes per epoch")
        if self.batch_size < 1:
            raise BadInput(f"--probe-batch {self.batch_size}: must be at least 1")

    @property
    def on(self) -> bool:
        return self.probes > 0


@dataclass(frozen=True)
class ProbeRow:
    """One probe: the architecture trained at ``step`` (0-based within the epoch), its
    accuracy on the probe batch right after that step and after the epoch's last step."""

    step: int
    arch: Any
    acc_after_step: float
    acc_after_epoch: float


def probe_steps(probes: int, steps: int) -> list[int]:
    """The probed steps of an epoch of ``steps`` steps: the middle steps of ``probes``
    equal slices, floor((2i + 1) * steps / (2 * probes)) for i < probes (distinct; every
    step when probes >= steps). They depend on nothing but the two counts."""
    n = min(probes, steps)
    return [((2 * i + 1) * steps) // (2 * n) for i in range(n)] if n > 0 else []


# ---- data --------------------------------------------------------------------------
def split_indices(cfg: TrainConfig, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) image indices: the seeded 80/20 split, the training part cut to a
    fixed subset of ``train_images`` when set (the same for every training seed)."""
    train, valid = train_valid_split(n_images, cfg.valid_fraction, cfg.split_seed)
    if cfg.train_images is not None:
        if cfg.train_images > len(train):
            raise BadInput(f"train_images={cfg.train_images} exceeds the {len(train)} images of the training split")
        pick = np.random.default_rng([cfg.split_seed, 1]).choice(len(train), cfg.train_images, replace=False)
        train = np.sort(train[pick])
    return train, valid


def probe_batch(cfg: TrainConfig, probe: ForgettingProbe, images: ImageSet) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe's fixed batch: ``probe.batch_size`` unaugmented validation images (the
    held-out part of ``split_indices``, never trained on), drawn with a seed derived from
    the run's seed only, so every epoch and every resumed session of a run uses the same
    images. BadInput when the validation part is smaller than the batch."""
    _, valid = split_indices(cfg, len(images))
    if probe.batch_size > len(valid):
        raise BadInput(f"--probe-batch {probe.batch_size}: the validation split holds only {len(valid)} images")
    return fixed_batches(images, probe.batch_size, 1, _derived_seed(cfg.seed, PROBE_STREAM), indices=valid)[0]


class TrainBatches:
    """Shuffled, optionally augmented (random crop with 4-pixel zero padding, horizontal
    flip) and normalized batches, drawn from one torch generator."""

    def __init__(self, images: ImageSet, indices: np.ndarray, cfg: TrainConfig, generator: torch.Generator):
        self.images = torch.from_numpy(np.ascontiguousarray(images.images[indices]))  # uint8 NHWC
        self.labels = torch.from_numpy(images.labels[indices].copy())
        self.cfg, self.gen = cfg, generator
        self.mean = torch.tensor(CIFAR10_MEAN, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(CIFAR10_STD, dtype=torch.float32).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.cfg.batch_size)

    def epoch(self):
        order = torch.randperm(len(self.labels), generator=self.gen)
        for b in range(len(self)):
            idx = order[b * self.cfg.batch_size : (b + 1) * self.cfg.batch_size]
            x = self.images[idx]
            if self.cfg.augment:
                x = self._crop_flip(x)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)  # NCHW view of NHWC: channels-last
            x = (x - self.mean) / self.std
            yield (x if self.cfg.channels_last else x.contiguous()), self.labels[idx]

    def _crop_flip(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        padded = F.pad(x, (0, 0, PAD, PAD, PAD, PAD))
        dy = torch.randint(0, 2 * PAD + 1, (b,), generator=self.gen)
        dx = torch.randint(0, 2 * PAD + 1, (b,), generator=self.gen)
        flip = torch.randint(0, 2, (b,), generator=self.gen).bool()
        cols = torch.where(flip[:, None], torch.arange(w - 1, -1, -1), torch.arange(w))
        rows = dy[:, None] + torch.arange(h)
        return padded[torch.arange(b)[:, None, None], rows[:, :, None], (dx[:, None] + cols)[:, None, :]]


# ---- training ----------------------------------------------------------------------
def build_supernet(cfg: TrainConfig, space: SearchSpace) -> nn.Module:
    model = space.supernet(c=cfg.c, n=cfg.n, num_classes=cfg.num_classes, bn_affine=cfg.bn_affine, dropout=cfg.dropout)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.to(cfg.device)


def train_supernet(
    cfg: TrainConfig,
    space: SearchSpace,
    images: ImageSet,
    run_dir: Path,
    resume: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    state: dict[str, Any] | None = None,
    probe: ForgettingProbe | None = None,
    on_probes: Callable[[int, list[ProbeRow]], None] | None = None,
) -> list[EpochStats]:
    """Train the supernet of ``space`` on the training part of ``images`` up to
    ``cfg.epochs``; returns the stats of every epoch (resumed ones included).
    ``on_step(epoch, step, loss)`` is called after every step (epoch 1-based).
    ``resume``: continue from ``state`` (a checkpoint from ``resume_state``), by default
    the last checkpoint in ``run_dir``; from scratch when there is none.
    ``probe`` (on): ``on_probes(epoch, rows)`` gets each epoch's ``ProbeRow``s after its
    last step and before its checkpoint is written (a kill after the checkpoint cannot
    lose them; one before it retrains the epoch, and the probe with it)."""
    run_dir = Path(run_dir)
    existing = list_checkpoints(run_dir)
    if existing and not resume:
        raise BadInput(
            f"{run_dir} already holds checkpoints up to epoch {max(existing)}; resume it or use a new folder"
        )
    check_sampler(space, cfg)
    device = torch.device(cfg.device)
    _seed_everything(cfg.seed)
    model = build_supernet(cfg, space)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience)
    data_gen = torch.Generator().manual_seed(_derived_seed(cfg.seed, 1))
    sampler_rng = np.random.default_rng([cfg.seed, 2])
    stats: list[EpochStats] = []
    start = 0
    if resume and state is None:
        state = resume_state(cfg, space, run_dir)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_states(state["rng"], data_gen, sampler_rng, device)
        stats = [EpochStats(**s) for s in state["stats"]]
        start = state["epoch"]
    train_idx, _ = split_indices(cfg, len(images))
    batches = TrainBatches(images, train_idx, cfg, data_gen)
    sampler = space.make_sampler(cfg.sampler, sampler_rng)
    probing = probe is not None and probe.on
    if probing:
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        px, py = probe_batch(cfg, probe, images)
        pbatch = (px.to(device).contiguous(memory_format=fmt), py.to(device))
        at = set(probe_steps(probe.probes, len(batches)))
    for epoch in range(start + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        loss_sum, seen = 0.0, 0
        probed: list[tuple[int, Any, float]] = []
        model.train()
        for step, (x, y) in enumerate(batches.epoch()):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            archs = [a for _ in range(cfg.mc_samples) for a in sampler.step()]
            loss = _train_step(model, opt, x, y, archs, cfg.grad_clip)
            if not math.isfinite(loss):
                raise EstbenchError(f"supernet training diverged: loss {loss} at epoch {epoch}, step {step}")
            if probing and step in at:  # the first architecture of the step (of its MC samples)
                probed.append((step, archs[0], _probe_accuracy(model, [archs[0]], pbatch)[0]))
            loss_sum += loss * len(y)
            seen += len(y)
            if on_step:
                on_step(epoch, step, loss)
        if probing:
            after = _probe_accuracy(model, [a for _, a, _ in probed], pbatch)
            rows = [ProbeRow(s, a, acc, acc2) for (s, a, acc), acc2 in zip(probed, after)]
            if on_probes:
                on_probes(epoch, rows)
        sched.step(loss_sum / seen)
        stats.append(EpochStats(epoch, loss_sum / seen, lr, time.perf_counter() - t0, len(batches)))
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
            state = {
                "epoch": epoch, "config": cfg.as_dict(), "space": space.name, **space.checkpoint_info(),
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "rng": _rng_states(data_gen, sampler_rng, device), "stats": [asdict(s) for s in stats],
            }  # fmt: skip
            save_checkpoint(state, checkpoint_path(run_dir, epoch))
        if on_epoch:
            on_epoch(stats[-1])
    return stats


def _train_step(model: nn.Module, opt, x: torch.Tensor, y: torch.Tensor, archs: list, clip: float) -> float:
    """Average the gradients of ``archs`` on one batch, clip, step; the mean loss."""
    opt.zero_grad(set_to_none=True)  # ops off every sampled path get no update at all
    total = torch.zeros((), device=x.device)
    for arch in archs:
        loss = F.cross_entropy(model(x, arch), y)
        (loss / len(archs)).backward()
        total += loss.detach()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return total.item() / len(archs)


def _probe_accuracy(model: nn.Module, archs: list, batch: tuple[torch.Tensor, torch.Tensor]) -> list[float]:
    """The accuracy of each of ``archs`` on ``batch`` as one-shot scoring computes it by
    default (``os_scores`` with bn='train': batch statistics, no gradient, dropout off;
    the model's modes, BN flags and buffers are restored afterwards)."""
    return [acc for _, _, acc, _, _ in os_scores(model, archs, [batch], bn="train")] if archs else []


# ---- seeds and RNG states ------------------------------------------------------------
def _derived_seed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _rng_states(data_gen: torch.Generator, sampler_rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "python": random.getstate(),
        "data": data_gen.get_state(),
        "sampler": sampler_rng.bit_generator.state,
    }


def _set_rng_states(s: dict[str, Any], data_gen, sampler_rng: np.random.Generator, device: torch.device) -> None:
    torch.set_rng_state(s["torch"])
    if device.type == "cuda" and s["cuda"] is not None:
        torch.cuda.set_rng_state(s["cuda"], device)
    kind, keys, pos, has_gauss, cached = s["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(s["python"])
    data_gen.set_state(s["data"])
    sampler_rng.bit_generator.state = s["sampler"]


def resume_state(cfg: TrainConfig, space: SearchSpace, run_dir: Path) -> dict[str, Any] | None:
    """The last checkpoint of ``run_dir``, checked against ``cfg`` (BadInput, one line,
    if it is unreadable or of another config); None when there is none."""
    existing = list_checkpoints(run_dir)
    if not existing:
        return None
    epoch, path = max(existing), existing[max(existing)]
    try:
        state = load_checkpoint(path)
    except BadInput as exc:
        earlier = [e for e in existing if e < epoch]
        hint = f"; move it away to resume from epoch {max(earlier)}" if earlier else ""
        raise BadInput(f"cannot resume: {exc}{hint}") from None
    _check_resumable(state, cfg, space, path)
    if state["epoch"] != epoch:
        raise BadInput(f"{path} holds epoch {state['epoch']}, not {epoch}; it was renamed or copied")
    if epoch > cfg.epochs:
        raise BadInput(f"cannot resume {path} with --epochs {cfg.epochs}: it is {epoch} epochs in already")
    return state


def _check_resumable(state: dict[str, Any], cfg: TrainConfig, space: SearchSpace, path: Path) -> None:
    if state.get("space") != space.name:
        raise BadInput(f"{path} is a {state.get('space')} supernet, not {space.name}")
    saved, now = state["config"], cfg.as_dict()
    diff = [
        f"{k}={saved.get(k)!r} (asked {v!r})"
        for k, v in now.items()
        if k not in RESUMABLE_CHANGES and saved.get(k) != v
    ]
    if diff:
        raise BadInput(f"cannot resume {path}: it was trained with {', '.join(diff)}")
