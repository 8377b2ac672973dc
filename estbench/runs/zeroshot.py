"""Zero-shot scoring: for every (seed, architecture, batch) one engine call scores all
requested measures; every per-batch value is stored with its status and the wall time
of the pass it needed.

Cache key: the config hash of each measure covers only the settings that change its
value (its registry ``settings``); the batch index and the seed are key columns, so a
later run with more batches or seeds extends the cache instead of recomputing it.
Data-free measures (``data_free``: synflow) are computed for batch 0 only; a measure
that needs all batches at once (``all_batches``) is stored under batch 0.

Trained weights (``--weights supernet:RUN@EPOCH``, paper Table A11 and Sec. 4.2): every
architecture is scored as a candidate of the supernet of the training run RUN, loaded
from its checkpoint at EPOCH (``space.candidate``, as for supernet-init: cell BN as
trained, dropout off, BN on batch statistics; an architecture goes through the one its
sampler trained for it, ``space.trained_as``, and the images keep the 32x32 resolution
the run trained on, as in one-shot scoring, whatever the space's zero-shot one). Rows carry
epoch = EPOCH and seed = the run's training seed. The config hash holds the run's
identity the way one-shot scores do: its training config without the seed and the
settings that do not change the weights (``runs.oneshot.NOT_IN_HASH``), under the
``init`` setting, and the run's network shape. It holds no epoch, so one measure's rows
at epochs 0/10/50 are one config at three epochs, and two runs that differ only in their
seed share a config and differ in the ``seed`` column (criteria averages them, as for
os_acc). ``@0`` without an epoch-0 checkpoint (training writes none) is the run's own
initialisation, rebuilt from its seed by the trainer's code (``_seed_everything`` then
``build_supernet``, what ``train_supernet`` starts from). vote and vote_borda are not
computed on trained weights (they read the experts at epoch 0 only): refused."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

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
# kaiming-fanin: fresh, then re-initialised the way AZ-NAS's and VKDNW's code does
# (conv/linear kaiming-normal fan_in, biases 0, BN 1/0: zeroshot.inits.kaiming_fanin_)
WEIGHTS = ("fresh", "supernet-init", "kaiming-fanin")
# supernet:RUN@EPOCH[,EPOCH...]: candidates of a trained run's supernet (RUN alone: every
# checkpoint epoch); the run-name pattern is runs.train's (kept here: no torch import)
TRAINED_PREFIX = "supernet:"
TRAINED_FORM = "supernet:RUN@EPOCH (several: @0,10,50; supernet:RUN = every checkpoint epoch)"
_TRAINED = re.compile(r"supernet:(?P<run>[A-Za-z0-9][A-Za-z0-9._-]{0,99})(?:@(?P<epochs>\d+(?:,\d+)*))?")
# the images a supernet run trains on: CIFAR-10 as it is (one-shot scoring feeds the same)
TRAINED_RESOLUTION = 32
TRAINED_VOTE = (
    "vote and vote_borda are not computed on trained weights (--weights supernet:RUN@EPOCH): they read their "
    "experts' scores at epoch 0 only; name the measures (--zse plain --zse synflow ...) instead of --zse all"
)


@dataclass(frozen=True)
class TrainedWeights:
    """A parsed ``--weights supernet:RUN@E,...``; ``epochs`` None: every checkpoint epoch."""

    run: str
    epochs: tuple[int, ...] | None = None


def trained_weights(value: str) -> TrainedWeights | None:
    """The trained-weights request of a ``--weights`` value; None for any value that
    does not start with ``supernet:``; BadInput (one line) for a malformed one."""
    if not value.startswith(TRAINED_PREFIX):
        return None
    m = _TRAINED.fullmatch(value)
    if m is None or ".." in m.group("run"):
        raise BadInput(f"--weights {value!r}: expected {TRAINED_FORM}; a run name is letters, digits, '.', '_', '-'")
    epochs = m.group("epochs")
    return TrainedWeights(
        m.group("run"), None if epochs is None else tuple(sorted({int(e) for e in epochs.split(",")}))
    )


def check_weights_request(weights: str, estimators: list[str], seeds: list[int] | None = None) -> None:
    """What trained weights refuse before the store is opened: vote and vote_borda, and
    ``--seed`` (the weights are the run's; its rows carry the run's training seed)."""
    from estbench.estimators import ESTIMATORS

    if trained_weights(weights) is None:
        return
    if any(ESTIMATORS.meta(n).get("derived") for n in estimators):
        raise BadInput(TRAINED_VOTE)
    if seeds:
        raise BadInput(
            f"--seed does not apply to --weights {weights}: the weights are the run's, and its rows carry the "
            "run's training seed"
        )


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
        if self.init not in WEIGHTS and trained_weights(self.init) is None:
            raise BadInput(f"unknown --weights {self.init!r} (known: {', '.join(WEIGHTS)}, supernet:RUN@EPOCH)")
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


def load_batches(cfg: ZeroShotConfig, space: SearchSpace, data: DataDir, resolution: int | None = None):
    """(batches, input description recorded in the config hash); ``resolution`` None:
    the space's."""
    from estbench.data import cifar10

    shape = net_shape(cfg, space, resolution)
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


def net_shape(cfg: ZeroShotConfig, space: SearchSpace, resolution: int | None = None):
    """The network shape of the run: the space's, with ``cfg``'s shape options and
    ``resolution`` (None: the space's)."""
    shape = space.shape(**cfg.shape())
    return shape if resolution is None else replace(shape, resolution=resolution)


def resolved_settings(cfg: ZeroShotConfig, space: SearchSpace, input_desc: str, resolution: int | None = None) -> dict:
    """Every setting of the run, the network shape filled in (:func:`net_shape`)."""
    return {**asdict(cfg), **vars(net_shape(cfg, space, resolution)), "input": input_desc}


def measure_settings(name: str, cfg: ZeroShotConfig, space: SearchSpace, resolved: dict) -> dict:
    """The settings that enter ``name``'s config hash (the batch count is a key column)."""
    meta = ESTIMATORS.meta(name)
    settings = {"space": space.name, **{k: resolved[k] for k in meta["settings"] if k != "n_batches"}}
    settings.update(meta.get("constants") or {})
    if cfg.device != "cpu":
        settings["tf32"] = cfg.tf32
    return settings


def unavailable(name: str, space: SearchSpace, n_batches: int) -> str | None:
    """Why zero-shot measure ``name`` cannot be scored on ``space`` with ``n_batches``
    batches (None: it can): too few batches (``min_batches``), or the space lacks the
    method its pass ``requires`` (linear_regions: a thin network)."""
    meta = ESTIMATORS.meta(name)
    if n_batches < meta.get("min_batches", 1):
        return f"{name} needs --batches {meta['min_batches']} or more (it compares batches)"
    requires = meta.get("requires")
    if requires and not hasattr(space, requires):
        return f"{name} needs the space's {requires}(), which {space.name} does not define"
    return None


def batches_needed(name: str, cfg: ZeroShotConfig) -> int:
    meta = ESTIMATORS.meta(name)
    return 1 if meta["data_free"] or meta["all_batches"] else cfg.n_batches


class TrainedSupernet:
    """The training run behind ``--weights supernet:RUN@E``: its config, checkpoints and
    the requested epochs, checked against the store (one-line BadInput: an unknown run,
    an epoch without a checkpoint, a run without checkpoints); the supernet of an epoch
    is loaded on demand (:meth:`supernet`)."""

    def __init__(self, store: Store, space: SearchSpace, spec: TrainedWeights):
        from estbench.estimators.oneshot.checkpoint import list_checkpoints
        from estbench.estimators.oneshot.train import TrainConfig
        from estbench.runs.oneshot import NOT_IN_HASH

        info = store.train_run(space.name, spec.run)
        if info is None:
            known = ", ".join(store.train_run_names(space.name)) or "none"
            raise BadInput(
                f"--weights {TRAINED_PREFIX}{spec.run}: no training run {spec.run!r} for {space.name} in the store "
                f"(known: {known}); train one with `estbench train`"
            )
        saved = dict(info["config"])
        self.run, self.space, self.run_dir = spec.run, space, Path(saved.pop("run_dir"))
        self.train_cfg = TrainConfig.from_dict(saved)
        self.ckpts = list_checkpoints(self.run_dir)
        init_note = f"epoch 0 = its initialisation, rebuilt from seed {self.train_cfg.seed}"
        if spec.epochs is None and not self.ckpts:
            raise BadInput(f"run {spec.run!r} has no checkpoints in {self.run_dir} yet ({init_note}: @0)")
        self.epochs = list(spec.epochs) if spec.epochs is not None else list(self.ckpts)
        missing = [e for e in self.epochs if e != 0 and e not in self.ckpts]
        if missing:
            saved_epochs = ", ".join(map(str, self.ckpts)) or "none"
            raise BadInput(
                f"run {spec.run!r} has no checkpoint at epoch {', '.join(map(str, missing))}; saved epochs: "
                f"{saved_epochs} ({init_note})"
            )
        self.identity = {k: v for k, v in self.train_cfg.as_dict().items() if k not in NOT_IN_HASH}
        self.seed = self.train_cfg.seed
        self.trained_as = space.trained_as(self.train_cfg.sampler)

    def setting(self) -> dict:
        """The ``init`` setting of its configs: the run's identity, no epoch, no seed."""
        return {"supernet": self.identity}

    def shaped(self, cfg: ZeroShotConfig) -> ZeroShotConfig:
        """``cfg`` with the run's network shape; a different shape asked for is refused."""
        run_shape = {"c": self.train_cfg.c, "n": self.train_cfg.n, "num_classes": self.train_cfg.num_classes}
        other = [
            f"{SHAPE_MINIMUM[k][0]} {v} (the run's is {run_shape[k]})"
            for k, v in cfg.shape().items()
            if v is not None and v != run_shape[k]
        ]
        if other:
            raise BadInput(f"--weights {cfg.init} scores the supernet of run {self.run!r}: {', '.join(other)}")
        return replace(cfg, **run_shape)

    def weights(self, epoch: int) -> dict:
        """The supernet weights at ``epoch``: its checkpoint's (checked: this space, this
        epoch, this run's config), or at 0 without one the run's initialisation."""
        from estbench.estimators.oneshot.checkpoint import load_checkpoint

        if epoch not in self.ckpts:
            return initial_weights(self.train_cfg, self.space)
        path = self.ckpts[epoch]
        state = load_checkpoint(path)
        if state.get("space") != self.space.name:
            raise BadInput(
                f"{path}: a checkpoint of a {state.get('space')} supernet, not {self.space.name} "
                f"(run {self.run!r}, epoch {epoch})"
            )
        if state["epoch"] != epoch:
            raise BadInput(f"{path} holds epoch {state['epoch']}, not {epoch}; it was renamed or copied")
        trained = {k: v for k, v in dict(state["config"]).items() if k in self.identity}
        diff = sorted(k for k in self.identity if trained.get(k) != self.identity[k])
        if diff:
            raise BadInput(f"{path} was trained with other settings than run {self.run!r} ({', '.join(diff)})")
        return state["model"]

    def supernet(self, epoch: int, device: str):
        """The scoring supernet of ``epoch``: its weights in a dropout-free supernet."""
        from estbench.estimators.oneshot.evaluate import model_from_checkpoint

        state = {"model": self.weights(epoch), "config": {"dropout": 0.0}, "space": self.space.name}
        return model_from_checkpoint(state, self.space, device=device, channels_last=False)


def initial_weights(cfg, space: SearchSpace) -> dict:
    """The weights a run of training config ``cfg`` starts from: the trainer's own seeding
    and build (``train._seed_everything`` then ``train.build_supernet``, the first two
    steps of ``train_supernet``), on the CPU (the trainer builds there, then moves), with
    the caller's torch, numpy and Python RNG states left as they were."""
    import random

    import numpy as np
    import torch

    from estbench.estimators.oneshot.train import _seed_everything, build_supernet

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            _seed_everything(cfg.seed)
            model = build_supernet(replace(cfg, device="cpu"), space)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


class ZeroShotJob:
    """One group per seed (per epoch with trained weights); one engine call per
    (architecture, batch)."""

    def __init__(
        self, store: Store, space: SearchSpace, names: list[str], seeds: list[int], cfg: ZeroShotConfig, data: DataDir
    ):
        cfg.validate()
        check_device(cfg.device)
        refused = [why for n in names if (why := unavailable(n, space, cfg.n_batches))]
        if refused:
            raise BadInput("; ".join(refused))
        spec = trained_weights(cfg.init)
        self.trained = TrainedSupernet(store, space, spec) if spec is not None else None
        if self.trained is not None:  # the run's shape and seed (see the module docstring)
            cfg, seeds = self.trained.shaped(cfg), [self.trained.seed]
        self.space, self.names, self.seeds, self.cfg = space, names, seeds, cfg
        resolution = TRAINED_RESOLUTION if self.trained is not None else None
        self.batches, input_desc = load_batches(cfg, space, data, resolution)
        resolved = resolved_settings(cfg, space, input_desc, resolution)
        label = None
        if self.trained is not None:
            resolved["init"], label = self.trained.setting(), f"{TRAINED_PREFIX}{self.trained.run}"
        self.hashes = {n: record_config(store, n, measure_settings(n, cfg, space, resolved), label) for n in names}
        self.n_needed = {n: batches_needed(n, cfg) for n in names}
        self.strs = store.arch_strings(space.name)
        self.chunk_size = cfg.chunk_size
        self.name = ",".join(names)
        self.config = {**resolved, "seeds": seeds, "estimators": self.hashes}
        if self.trained is not None:
            self.config["weights"] = {"run": self.trained.run, "epochs": self.trained.epochs}
        self._supernets: dict = {}
        self._label = "zero-shot " + (names[0] if len(names) == 1 else f"({len(names)} measures)")

    def groups(self) -> list[Group]:
        if self.trained is not None:
            s, run = self.trained.seed, self.trained.run
            return [
                Group(
                    f"{self._label} {run} epoch {e}",
                    [ScoreKey(self.space.name, n, self.hashes[n], e, s, self.n_needed[n]) for n in self.names],
                    {"seed": s, "epoch": e},
                )
                for e in self.trained.epochs
            ]
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
        if self.trained is not None:  # one epoch's supernet at a time: keep memory flat
            self._supernets.clear()
            self._supernets[group.context["epoch"]] = self.trained.supernet(group.context["epoch"], self.cfg.device)

    def compute(self, group: Group, arch_id: int, keys: list[ScoreKey], run_id: str) -> list[ScoreRow]:
        from estbench.estimators.zeroshot import engine

        seed, by_name = group.context["seed"], {k.estimator: k for k in keys}
        arch = self.space.parse(self.strs[arch_id])
        build = self._builder(arch, group)
        run = dict(seed=seed, device=self.cfg.device, dtype=group.context["dtype"])
        needed = {m: self.n_needed[m] for m in by_name}
        whole = [m for m in by_name if ESTIMATORS.meta(m).get("all_batches")]
        thin = getattr(self.space, "thin_network", None)  # TE-NAS's thin network (linear_regions)
        extras = {"thin_build": None if thin is None else (lambda: thin(arch))}
        per_batch, all_batches = engine.run_architecture(build, self.batches, needed, extras=extras, **run)
        rows = []
        for b, result in enumerate(per_batch):
            ms = [m for m in by_name if m not in whole and b < needed[m]]
            rows += self._rows(by_name, ms, arch_id, b, result, run_id)
        if whole:  # measures of all batches at once are stored under batch 0
            rows += self._rows(by_name, whole, arch_id, 0, all_batches, run_id)
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

    def _builder(self, arch, group: Group):
        """``build(bn)`` for the engine. For supernet-init the supernet of a seed is built
        once (the engine seeds torch before each build; the first build per seed creates
        it) and each build returns a candidate view of it. For trained weights the
        candidate is the one the run's sampler trained for ``arch``, in the supernet of
        the group's epoch (loaded by ``prepare``)."""
        shape = self.cfg.shape()
        if self.trained is not None:
            net, trained = self._supernets[group.context["epoch"]], self.trained.trained_as(arch)
            return lambda bn: self.space.candidate(net, trained, bn)
        if self.cfg.init == "fresh":
            return lambda bn: self.space.build(arch, bn=bn, **shape)
        if self.cfg.init == "kaiming-fanin":
            from estbench.estimators.zeroshot.inits import kaiming_fanin_

            return lambda bn: kaiming_fanin_(self.space.build(arch, bn=bn, **shape))

        def build(bn: bool):
            import torch

            key = torch.initial_seed()
            if key not in self._supernets:
                self._supernets.clear()  # one seed at a time: keep memory flat
                self._supernets[key] = self.space.supernet(**shape, bn_affine=False, dropout=0.0)
            return self.space.candidate(self._supernets[key], arch, bn)

        return build
