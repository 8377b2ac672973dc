"""One-shot scoring: os_acc / os_loss of architectures inside the checkpoints of a
trained supernet run (one group per checkpoint epoch).

Cache key: the run's training config without the seed (and without settings that do
not change the weights: epochs, checkpoint interval, device, memory format), plus the
evaluation settings. The checkpoint epoch and the training seed are key columns, so
supernets trained with different seeds and otherwise equal settings share a config and
``criteria`` averages them (multi-supernet averaging, Sec. 5.3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from estbench.data.lookup import DataDir
from estbench.errors import BadInput
from estbench.runs.loop import Group, record_config
from estbench.runs.zeroshot import check_device
from estbench.spaces.base import SearchSpace
from estbench.store import ScoreKey, ScoreRow, Store

OS_ESTIMATORS = ("os_acc", "os_loss")
NOT_IN_HASH = ("seed", "epochs", "checkpoint_every", "device", "channels_last")


@dataclass(frozen=True)
class OneShotEval:
    batch_size: int = 128
    n_batches: int = 1
    bn: str = "train"
    recal_batches: int = 4
    ensemble: int = 1
    data_seed: int = 0
    device: str = "cpu"
    chunk_size: int = 100


def unknown_run(store: Store, space: str, run: str) -> BadInput:
    known = ", ".join(store.train_run_names(space)) or "none"
    return BadInput(
        f"no one-shot run {run!r} for {space} in the store (known: {known}); train one with `estbench train`"
    )


class OneShotJob:
    """Scores of ``arch_ids`` at each requested checkpoint epoch of the run ``run``.
    With ``--executor ray`` each task's ``prepare`` loads the checkpoint from the run's
    folder (a path every worker must reach), so tasks take 100 archs by default."""

    archs_per_task = 100

    def __init__(
        self, store: Store, space: SearchSpace, run: str, epochs: list[int] | None, ev: OneShotEval, data: DataDir
    ):
        from estbench.data.cifar10 import load_cifar10
        from estbench.estimators.oneshot.checkpoint import list_checkpoints
        from estbench.estimators.oneshot.evaluate import BN_MODES, split_batches
        from estbench.estimators.oneshot.train import TrainConfig, split_indices

        info = store.train_run(space.name, run)
        if info is None:
            raise unknown_run(store, space.name, run)
        if ev.bn not in BN_MODES:
            raise BadInput(f"unknown --bn {ev.bn!r} (known: {', '.join(BN_MODES)})")
        if ev.ensemble < 1 or ev.n_batches < 1 or ev.batch_size < 1 or ev.chunk_size < 1:
            raise BadInput("--ensemble, --batches, --batch-size and --chunk-size must be >= 1")
        check_device(ev.device)
        saved = dict(info["config"])
        self.run_dir = Path(saved.pop("run_dir"))
        self.train_cfg = cfg = TrainConfig.from_dict(saved)
        self.ckpts = list_checkpoints(self.run_dir)
        if not self.ckpts:
            raise BadInput(f"run {run!r} has no checkpoints in {self.run_dir} yet")
        self.epochs = list(epochs) if epochs else [max(self.ckpts)]
        missing = [e for e in self.epochs if e not in self.ckpts]
        if missing:
            saved_epochs = ", ".join(map(str, self.ckpts))
            raise BadInput(
                f"run {run!r} has no checkpoint at epoch {', '.join(map(str, missing))}; saved epochs: {saved_epochs}"
            )
        self.space, self.run, self.ev, self.chunk_size = space, run, ev, ev.chunk_size
        self.trained_as = space.trained_as(cfg.sampler)
        images = load_cifar10(data, "train")
        train_idx, valid_idx = split_indices(cfg, len(images))
        self.batches = split_batches(images, valid_idx, ev.batch_size, ev.n_batches, seed=ev.data_seed)
        self.recal = (
            split_batches(images, train_idx, ev.batch_size, ev.recal_batches, seed=ev.data_seed)
            if ev.bn == "recalibrate"
            else None
        )
        settings = {
            "space": space.name, "train": {k: v for k, v in cfg.as_dict().items() if k not in NOT_IN_HASH},
            "batch_size": ev.batch_size, "bn": ev.bn, "recal_batches": ev.recal_batches if ev.bn == "recalibrate" else 0,
            "ensemble": ev.ensemble, "data": f"cifar10-valid[{images.kind}]@{ev.data_seed}",
        }  # fmt: skip
        label = (
            run + (f" ens{ev.ensemble}" if ev.ensemble > 1 else "") + (" bn-recal" if ev.bn == "recalibrate" else "")
        )
        self.hashes = {n: record_config(store, n, settings, label) for n in OS_ESTIMATORS}
        self.strs = store.arch_strings(space.name)
        self.name, self.config = f"{run}:os", {**settings, "epochs": self.epochs, "run": run}

    def groups(self) -> list[Group]:
        seed, n = self.train_cfg.seed, self.ev.n_batches
        return [
            Group(
                f"one-shot {self.run} epoch {e}",
                [ScoreKey(self.space.name, m, self.hashes[m], e, seed, n) for m in OS_ESTIMATORS],
                {"epoch": e},
            )
            for e in self.epochs
        ]

    def prepare(self, group: Group) -> None:
        from estbench.estimators.oneshot.evaluate import average_checkpoints, model_from_checkpoint

        epoch, k = group.context["epoch"], self.ev.ensemble
        members = [e for e in self.ckpts if e <= epoch][-k:]
        if len(members) < k:
            raise BadInput(
                f"--ensemble {k} at epoch {epoch} needs {k} checkpoints up to it; run {self.run!r} has {len(members)}"
            )
        source = average_checkpoints([self.ckpts[e] for e in members]) if k > 1 else self.ckpts[epoch]
        group.context["model"] = model_from_checkpoint(
            source, self.space, device=self.ev.device, channels_last=self.train_cfg.channels_last
        )

    def compute(self, group: Group, arch_id: int, keys: list[ScoreKey], run_id: str) -> list[ScoreRow]:
        from estbench.estimators.oneshot.evaluate import os_scores

        acc_key, loss_key = (next(k for k in group.keys if k.estimator == m) for m in OS_ESTIMATORS)
        arch = self.trained_as(self.space.parse(self.strs[arch_id]))
        rows = []
        for _, b, acc, loss, secs in os_scores(group.context["model"], [arch], self.batches, self.ev.bn, self.recal):
            rows += [
                ScoreRow.of(acc_key, arch_id, b, acc, secs, run_id),
                ScoreRow.of(loss_key, arch_id, b, loss, secs, run_id),
            ]
        return rows
