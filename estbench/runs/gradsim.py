"""Gradient similarity of architecture pairs at the checkpoints of a one-shot run
(`estbench score --ose RUN --gradsim P`; paper A.3.1, Fig. A15). The computation is
``estimators.oneshot.gradsim``; this module draws the pairs, picks the batch, skips what
the store holds, writes the rows and records the run.

- Pairs: P ordered pairs of two distinct architectures, drawn uniformly (with
  replacement across pairs) from the architectures the run's sampler trains, i.e. those
  that ``space.trained_as(sampler)`` maps onto themselves: every architecture for
  ``uniform`` and ``fairnas``, the class representatives for ``deiso``. Degenerate
  architectures (no input-output path) are drawn too; they use only the classifier, so
  their other layers are NULL. One draw per ``--seed`` (numpy ``default_rng(seed)``),
  the same pairs at every checkpoint, so epochs are compared on the same pairs.
- Batch: ONE fixed, unaugmented batch of ``batch_size`` images of the run's own training
  split (``train.split_indices``; ``fixed_batches`` with ``data_seed``), the same for
  every pair and checkpoint.
- Cache key: (space, run, epoch, config hash, pair); the hash covers P, the batch size,
  the pair seed, the batch choice (data source, data seed, the run's split) and the BN
  mode, so a rerun with the same settings computes only the missing pairs and other
  settings are kept apart. Rows are written in chunks (every ``WRITE_EVERY_S`` seconds
  of work and at each checkpoint's end), so a kill loses at most one chunk."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from estbench.config import config_hash
from estbench.data.lookup import DataDir
from estbench.errors import BadInput, EstbenchError
from estbench.runs.loop import Progress, ScoreSummary, recorded_run
from estbench.spaces.base import SearchSpace
from estbench.store import Store
from estbench.store.gradsim import GradsimRow

ESTIMATOR = "gradsim"  # the configs-table name of its settings (not a registered estimator)
WRITE_EVERY_S = 10.0


@dataclass(frozen=True)
class GradsimConfig:
    pairs: int
    batch_size: int = 128
    seed: int = 20  # draws the pairs
    data_seed: int = 0  # picks the batch's images
    device: str = "cpu"


def check_options(
    pairs: int | None, runs: Sequence[str], seeds: Sequence[int] = (), archs: str = "all", bn: str = "train",
    ensemble: int = 1,
) -> None:  # fmt: skip
    """One line for settings --gradsim cannot take (no store or torch needed)."""
    if pairs is None:
        return
    if pairs < 1:
        raise BadInput(f"--gradsim {pairs}: the number of architecture pairs must be at least 1")
    if not runs:
        raise BadInput("--gradsim needs --ose RUN: the one-shot run whose checkpoints it probes")
    if archs != "all":
        raise BadInput(
            "--archs does not apply to --gradsim: its pairs are drawn from the architectures the run's sampler trains"
        )
    if bn != "train":
        raise BadInput("--gradsim takes gradients with BN batch statistics (--bn train) only")
    if ensemble != 1:
        raise BadInput("--gradsim probes one checkpoint at a time; --ensemble does not apply")
    bad = [s for s in seeds if s < 0]
    if bad:
        raise BadInput(f"--seed {bad[0]}: pair-draw seeds must be non-negative")


def trained_pool(store: Store, space: SearchSpace, sampler: str) -> np.ndarray:
    """The arch ids the run's sampler trains (``space.trained_as`` maps them onto themselves)."""
    as_trained = space.trained_as(sampler)
    archs = [space.parse(s) for s in store.arch_strings(space.name)]
    return np.array([i for i, a in enumerate(archs) if as_trained(a) == a], dtype=np.int64)


def draw_pairs(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """(n, 2) arch ids: each row two distinct members of ``pool``, uniform over ordered
    pairs; row i depends only on the seed and i (rows are drawn in order)."""
    m = len(pool)
    if m < 2:
        raise BadInput(f"gradient similarity needs two trained architectures to pair; the run trains {m}")
    u = np.random.default_rng(seed).integers(0, [m, m - 1], size=(n, 2))
    u[:, 1] += u[:, 1] >= u[:, 0]  # second index among the other m - 1
    return pool[u]


class GradsimJob:
    """P pairs of one run, at each requested checkpoint epoch, for one config."""

    def __init__(
        self, store: Store, space: SearchSpace, run: str, epochs: Sequence[int], cfg: GradsimConfig, data: DataDir
    ):
        from estbench.data.cifar10 import fixed_batches, load_cifar10
        from estbench.estimators.oneshot.checkpoint import list_checkpoints
        from estbench.estimators.oneshot.train import TrainConfig, split_indices
        from estbench.runs.oneshot import unknown_run
        from estbench.runs.zeroshot import check_device

        check_options(cfg.pairs, [run], [cfg.seed])
        if cfg.batch_size < 1:
            raise BadInput("--batch-size must be >= 1")
        check_device(cfg.device)
        info = store.train_run(space.name, run)
        if info is None:
            raise unknown_run(store, space.name, run)
        saved = dict(info["config"])
        self.run_dir = Path(saved.pop("run_dir"))
        self.train_cfg = tcfg = TrainConfig.from_dict(saved)
        self.ckpts = list_checkpoints(self.run_dir)
        if not self.ckpts:
            raise BadInput(f"run {run!r} has no checkpoints in {self.run_dir} yet")
        self.epochs = list(dict.fromkeys(epochs)) if epochs else [max(self.ckpts)]
        missing = [e for e in self.epochs if e not in self.ckpts]
        if missing:
            raise BadInput(
                f"run {run!r} has no checkpoint at epoch {', '.join(map(str, missing))}; "
                f"saved epochs: {', '.join(map(str, self.ckpts))}"
            )
        self.store, self.space, self.run, self.cfg = store, space, run, cfg
        self.pairs = draw_pairs(trained_pool(store, space, tcfg.sampler), cfg.pairs, cfg.seed)
        images = load_cifar10(data, "train")
        train_idx, _ = split_indices(tcfg, len(images))
        self.batch = fixed_batches(images, cfg.batch_size, 1, seed=cfg.data_seed, indices=train_idx)[0]
        split = {
            "split_seed": tcfg.split_seed,
            "valid_fraction": tcfg.valid_fraction,
            "train_images": tcfg.train_images,
        }
        self.settings = {
            "probe": ESTIMATOR, "space": space.name, "pairs": cfg.pairs, "batch_size": cfg.batch_size,
            "pair_seed": cfg.seed, "pool": "trained", "bn": "train", "layers": "cells",
            "batch": {"data": f"cifar10-train[{images.kind}]@{cfg.data_seed}", "split": split},
        }  # fmt: skip
        self.config_hash = config_hash(self.settings)
        self.label = f"{run} P={cfg.pairs} bs={cfg.batch_size} seed={cfg.seed} data@{cfg.data_seed}"

    def run_all(self, progress: Progress | None = None, threads: int | None = None) -> ScoreSummary:
        """Compute the missing pairs at every epoch; one summary (pairs, not archs)."""
        st, space, chash = self.store, self.space.name, self.config_hash
        st.put_config(chash, ESTIMATOR, self.settings, self.label)
        summary = ScoreSummary(ESTIMATOR, chash)
        config = {**self.settings, "epochs": self.epochs, "run": self.run}
        start, run, written = time.perf_counter(), None, 0
        try:
            with contextlib.ExitStack() as stack:
                for epoch in self.epochs:
                    done = st.gradsim_done_pairs(space, self.run, epoch, chash)
                    todo = [p for p in range(self.cfg.pairs) if p not in done]
                    summary.requested += self.cfg.pairs
                    summary.cached += self.cfg.pairs - len(todo)
                    label = f"gradsim {self.run} epoch {epoch}"
                    if progress:
                        progress(label, self.cfg.pairs - len(todo), self.cfg.pairs)
                    if not todo:
                        continue
                    if run is None:
                        run = stack.enter_context(
                            recorded_run(st, "score", space, f"{self.run}:gradsim", config, threads)
                        )
                    for pairs, inserted in self._epoch(epoch, todo, run.run_id, label, progress):
                        summary.computed += pairs
                        written += inserted
        except BaseException:
            if run is not None:
                with contextlib.suppress(EstbenchError):
                    st.set_run_written(run.run_id, written)
            raise
        if run is not None:
            st.set_run_written(run.run_id, written)
        summary.seconds = time.perf_counter() - start
        return summary

    def _epoch(self, epoch: int, todo: list[int], run_id: str, label: str, progress: Progress | None):
        """Compute the ``todo`` pairs at ``epoch``; yields (pairs, rows inserted) per chunk written."""
        from estbench.estimators.oneshot.evaluate import model_from_checkpoint
        from estbench.estimators.oneshot.gradsim import gradient_similarity

        model = model_from_checkpoint(
            self.ckpts[epoch], self.space, device=self.cfg.device, channels_last=self.train_cfg.channels_last
        )
        strs = self.store.arch_strings(self.space.name)
        archs = [(self.space.parse(strs[a]), self.space.parse(strs[b])) for a, b in self.pairs[todo]]
        rows: list[GradsimRow] = []
        pairs, last = 0, time.perf_counter()
        layers = self.space.supernet_layers(model)
        for i, cosines, _ in gradient_similarity(model, archs, self.batch, layers):
            pair = todo[i]
            a, b = (int(v) for v in self.pairs[pair])
            key = (self.space.name, self.run, epoch, self.config_hash, pair, a, b)
            rows += [GradsimRow(*key, layer, cos) for layer, cos in cosines.items()]
            pairs += 1
            if i == len(todo) - 1 or time.perf_counter() - last >= WRITE_EVERY_S:
                yield pairs, self.store.put_gradsim(run_id, rows)
                rows, pairs, last = [], 0, time.perf_counter()
            if progress:
                progress(label, 1, self.cfg.pairs)


def score_gradsim(
    store: Store,
    space: SearchSpace,
    run: str,
    epochs: Sequence[int],
    cfgs: Sequence[GradsimConfig],
    data: DataDir,
    progress: Progress | None = None,
    threads: int | None = None,
) -> list[ScoreSummary]:
    """Gradient similarity of ``run`` at ``epochs`` for each config (one per pair seed).
    Every config is checked before any is computed."""
    jobs = [GradsimJob(store, space, run, epochs, cfg, data) for cfg in cfgs]
    return [job.run_all(progress, threads) for job in jobs]
