"""Zero-shot scoring: for every (seed, architecture, batch) one engine call scores all
requested measures; every per-batch value is stored with its status and the wall time
of the pass it needed.

Cache key: the config hash of each measure covers only the settings that change its
value (its registry ``settings``); the batch index and the seed are key columns, so a
later run with more batches or seeds extends the cache instead of recomputing it.
Data-free measures (``data_free``: synflow) are computed for batch 0 only; a measure
that needs all batches at once (``all_batches``) is stored under batch 0."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from estbench.data.lookup import DataDir
from estbench.errors import BadInput
from estbench.estimators import ESTIMATORS
from estbench.runs.loop import Group, record_config
from estbench.spaces.base import SearchSpace
from estbench.store import ScoreKey, ScoreRow, Store

INPUTS = ("cifar10", "noise-uniform", "noise-gaussian")
DTYPES = ("float32", "float64")
# fresh: a standalone network per architecture, built from the seed (zero-cost-nas);
# supernet-init: the architecture as a candidate of ONE randomly initialised supernet per
# seed (the paper's aw_nas code: only edges on input-output paths run, cell BN without
# affine; dropout is off so that values are deterministic).
WEIGHTS = ("fresh", "supernet-init")


@dataclass(frozen=True)
class ZeroShotConfig:
    """Settings of a zero-shot run (paper defaults: batch 128, 5 batches, CIFAR-10 train)."""

    batch_size: int = 128
    n_batches: int = 5
    input: str = "cifar10"
    init: str = "fresh"
    dtype: str = "float32"
    device: str = "cpu"
    data_seed: int = 0  # which training images form the batches
    tf32: bool = False
    c: int | None = None
    n: int | None = None
    num_classes: int | None = None
    chunk_size: int = 20

    def validate(self) -> None:
        if self.input not in INPUTS:
            raise BadInput(f"unknown --input {self.input!r} (known: {', '.join(INPUTS)})")
        if self.dtype not in DTYPES:
            raise BadInput(f"unknown --dtype {self.dtype!r} (known: {', '.join(DTYPES)})")
        if self.batch_size < 2 or self.n_batches < 1:
            raise BadInput("--batch-size must be >= 2 (jacob_cov and relu_logdet compare images) and --batches >= 1")
        if self.init not in WEIGHTS:
            raise BadInput(f"unknown --weights {self.init!r} (known: {', '.join(WEIGHTS)})")
        if self.chunk_size < 1:
            raise BadInput(f"--chunk-size must be >= 1 (architectures per write), not {self.chunk_size}")
        check_shape(self.shape())

    def shape(self) -> dict:
        return {"c": self.c, "n": self.n, "num_classes": self.num_classes}


# the least value of each network-shape option that builds a meaningful network
SHAPE_MINIMUM = {"c": ("--channels", 1), "n": ("--cells", 1), "num_classes": ("--classes", 2)}


def check_shape(shape: dict) -> None:
    """Refuse a network shape (``c``, ``n``, ``num_classes``; None = space default) that
    would build a network without channels, cells or a choice between classes."""
    for key, value in shape.items():
        option, least = SHAPE_MINIMUM[key]
        if value is not None and value < least:
            raise BadInput(f"{option} must be >= {least}, not {value}")


def check_device(device: str) -> None:
    import torch

    if device == "cpu":
        return
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BadInput(f"--device {device}: no CUDA device is available (torch.cuda.is_available() is False)")
        return
    raise BadInput(f"unknown --device {device!r} (cpu, cuda, cuda:N)")


def load_batches(cfg: ZeroShotConfig, space: SearchSpace, data: DataDir):
    """(batches, input description recorded in the config hash)."""
    from estbench.data import cifar10

    shape = space.shape(**cfg.shape())
    if cfg.input == "cifar10":
        images = cifar10.load_cifar10(data, "train")
        batches = cifar10.fixed_batches(images, cfg.batch_size, cfg.n_batches, seed=cfg.data_seed)
        if shape.resolution != 32:
            import torch.nn.functional as F

            batches = [
                (F.interpolate(x, size=shape.resolution, mode="bilinear", align_corners=False), y % shape.num_classes)
                for x, y in batches
            ]
        return batches, f"cifar10-train[{images.kind}]@{cfg.data_seed}"
    res = (3, shape.resolution, shape.resolution)
    batches = cifar10.noise_batches(
        cfg.input, cfg.batch_size, cfg.n_batches, seed=cfg.data_seed, shape=res, num_classes=shape.num_classes
    )
    return batches, f"{cfg.input}@{cfg.data_seed}"


def resolved_settings(cfg: ZeroShotConfig, space: SearchSpace, input_desc: str) -> dict:
    """Every setting of the run, the space's network shape filled in."""
    return {**asdict(cfg), **vars(space.shape(**cfg.shape())), "input": input_desc}


def measure_settings(name: str, cfg: ZeroShotConfig, space: SearchSpace, resolved: dict) -> dict:
    """The settings that enter ``name``'s config hash (the batch count is a key column)."""
    meta = ESTIMATORS.meta(name)
    settings = {"space": space.name, **{k: resolved[k] for k in meta["settings"] if k != "n_batches"}}
    if cfg.device != "cpu":
        settings["tf32"] = cfg.tf32
    return settings


def batches_needed(name: str, cfg: ZeroShotConfig) -> int:
    meta = ESTIMATORS.meta(name)
    return 1 if meta["data_free"] or meta["all_batches"] else cfg.n_batches


class ZeroShotJob:
    """One group per seed; one engine call per (architecture, batch)."""

    def __init__(
        self, store: Store, space: SearchSpace, names: list[str], seeds: list[int], cfg: ZeroShotConfig, data: DataDir
    ):
        cfg.validate()
        check_device(cfg.device)
        self.space, self.names, self.seeds, self.cfg = space, names, seeds, cfg
        self.batches, input_desc = load_batches(cfg, space, data)
        resolved = resolved_settings(cfg, space, input_desc)
        self.hashes = {n: record_config(store, n, measure_settings(n, cfg, space, resolved)) for n in names}
        self.n_needed = {n: batches_needed(n, cfg) for n in names}
        self.strs = store.arch_strings(space.name)
        self.chunk_size = cfg.chunk_size
        self.name = ",".join(names)
        self.config = {**resolved, "seeds": seeds, "estimators": self.hashes}
        self._supernets: dict = {}
        self._label = "zero-shot " + (names[0] if len(names) == 1 else f"({len(names)} measures)")

    def groups(self) -> list[Group]:
        return [
            Group(
                f"{self._label} seed {s}",
                [ScoreKey(self.space.name, n, self.hashes[n], 0, s, self.n_needed[n]) for n in self.names],
                {"seed": s},
            )
            for s in self.seeds
        ]

    def prepare(self, group: Group) -> None:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = self.cfg.tf32
        torch.backends.cudnn.allow_tf32 = self.cfg.tf32
        if self.cfg.device.startswith("cuda"):  # same seed, same device -> same values (see engine)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
            torch.use_deterministic_algorithms(True, warn_only=True)
        group.context["dtype"] = getattr(torch, self.cfg.dtype)

    def compute(self, group: Group, arch_id: int, keys: list[ScoreKey], run_id: str) -> list[ScoreRow]:
        from estbench.estimators.zeroshot import engine

        seed, by_name = group.context["seed"], {k.estimator: k for k in keys}
        build = self._builder(self.space.parse(self.strs[arch_id]))
        run = dict(seed=seed, device=self.cfg.device, dtype=group.context["dtype"])
        per_batch = [m for m in by_name if not ESTIMATORS.meta(m).get("all_batches")]
        whole = [m for m in by_name if m not in per_batch]
        rows = []
        for b, (x, y) in enumerate(self.batches):
            ms = [m for m in per_batch if b < self.n_needed[m]]
            if ms:
                rows += self._rows(by_name, ms, arch_id, b, engine.run_measures(build, x, y, ms, **run), run_id)
        if whole:  # measures of all batches at once are stored under batch 0
            rows += self._rows(
                by_name, whole, arch_id, 0, engine.run_all_batches(build, self.batches, whole, **run), run_id
            )
        return rows

    @staticmethod
    def _rows(by_name: dict, names: list[str], arch_id: int, batch: int, result: tuple, run_id: str) -> list[ScoreRow]:
        values, timings, errors = result
        rows = []
        for m in names:
            needs = ESTIMATORS.meta(m)["needs"]
            # elapsed = build + shared forward + the measure's own pass
            shared = 0.0 if needs == "synflow" else timings.get("build", 0.0) + timings.get("forward", 0.0)
            seconds = shared + timings.get(needs, 0.0)
            rows.append(ScoreRow.of(by_name[m], arch_id, batch, values.get(m), seconds, run_id, errors.get(m)))
        return rows

    def _builder(self, arch):
        """``build(bn)`` for the engine. For supernet-init the supernet of a seed is built
        once (the engine seeds torch before each build; the first build per seed creates
        it) and each build returns a candidate view of it."""
        shape = self.cfg.shape()
        if self.cfg.init == "fresh":
            return lambda bn: self.space.build(arch, bn=bn, **shape)

        def build(bn: bool):
            import torch

            key = torch.initial_seed()
            if key not in self._supernets:
                self._supernets.clear()  # one seed at a time: keep memory flat
                self._supernets[key] = self.space.supernet(**shape, bn_affine=False, dropout=0.0)
            return self.space.candidate(self._supernets[key], arch, bn)

        return build
