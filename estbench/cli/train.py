"""``estbench train``: train a weight-sharing supernet, checkpoints recorded in the store."""

from __future__ import annotations

from typing import List

import typer

from estbench.cli.common import handle_errors
from estbench.cli.options import (
    CpusPerTaskOpt,
    DataOpt,
    ExecutorOpt,
    GpusPerTaskOpt,
    InitOpt,
    RayAddressOpt,
    SpaceOpt,
    StoreOpt,
    ThreadsOpt,
)
from estbench.cli.progress import Progress


def register(app: typer.Typer) -> None:
    app.command()(train)


@handle_errors
def train(
    space: str = SpaceOpt,
    run: str = typer.Option(
        ...,
        "--run",
        "-r",
        help="Name of the run (its checkpoints live in RUNS_DIR/SPACE/RUN); with several --seed it must hold "
        "{seed}, e.g. 'uniform-s{seed}': one run per seed.",
    ),
    preset: str = typer.Option(
        "paper",
        "--preset",
        help="paper (the paper's full setting, for a GPU: 1000 epochs) or cpu-small (about 25 min on 2 CPU cores).",
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs [preset]."),
    seed: List[int] | None = typer.Option(
        None,
        "--seed",
        help="Training seed (paper: 20, 2020, 202020) [20]; repeatable: one run per seed, one after another "
        "locally, in parallel with --executor ray.",
    ),
    sampler: str | None = typer.Option(
        None, "--sampler", help="uniform (all archs), deiso (uniform over isomorphism classes) or fairnas [uniform]."
    ),
    mc_samples: int | None = typer.Option(
        None, "--mc-samples", help="Architectures whose gradients are averaged per step (paper Sec. 6.1) [1]."
    ),
    bn_affine: bool | None = typer.Option(
        None, "--bn-affine/--no-bn-affine", help="Affine BN in cells (the paper advises against) [off]."
    ),
    c: int | None = typer.Option(None, "--channels", help="Initial channels C [preset]."),
    n: int | None = typer.Option(
        None,
        "--cells",
        help="Cells N [preset]: per stage on nb201 / nb101, in all on nb301 (reductions at N//3 and 2N//3).",
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Training batch size [preset]."),
    lr: float | None = typer.Option(None, "--lr", help="Initial learning rate [0.05]."),
    train_images: int | None = typer.Option(
        None, "--train-images", help="Train on a fixed subset of N images of the 80% split [preset]."
    ),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", help="Checkpoint every K epochs (and at the end) [preset]."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda[:N]."),
    probe_forgetting: int = typer.Option(
        0,
        "--probe-forgetting",
        help="Forgetting probe (paper Sec. 5.3, Fig. A14): N probed steps per epoch, the middle steps of N equal "
        "slices (every step if N >= steps); 0 = off. Read with `estbench variance forgetting`. Changes no "
        "weight; may be changed at --resume.",
    ),
    probe_batch: int = typer.Option(
        32,
        "--probe-batch",
        help="Validation images of the probe's one fixed batch (seeded by the run's seed). 32 keeps the probe "
        "within 10% of a cpu-small epoch at N=50 (64: 1.15x, 32: 1.04x measured); 64 = cpu-small's training "
        "batch, BN statistics over as many images as in training, at twice the cost.",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run from its last checkpoint (same result as an uninterrupted run)."
    ),
    runs_dir: str | None = typer.Option(
        None, "--runs-dir", envvar="ESTBENCH_RUNS", help="Folder of run folders [estbench_runs beside the store]."
    ),
    executor: str = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
    cpus_per_task: float = CpusPerTaskOpt,
    gpus_per_task: float = GpusPerTaskOpt,
    threads: int | None = ThreadsOpt,
    store: str | None = StoreOpt,
    init: bool = InitOpt,
    data_dir: str | None = DataOpt,
) -> None:
    """Train a weight-sharing supernet (the paper's one-shot estimator, App. D settings).

    SGD momentum 0.9, weight decay 5e-4, lr 0.05 halved when the epoch's training loss
    stops improving for the patience, gradient clip 5, dropout 0.1, CIFAR-10 train split
    80/20, crop+flip augmentation. Checkpoints are written atomically and recorded in
    the store with per-epoch loss, lr and time. Then score archs with
    `estbench score --ose RUN`.

    --probe-forgetting N: at N steps of each epoch, right after the optimiser step, the
    architecture just trained (the step's first: of its MC samples, of FairNAS's set)
    is evaluated on one fixed batch of --probe-batch validation images (held out from
    training; BN with batch statistics, no gradient, as `score --ose` does by default):
    acc_after_step; after the epoch's last step the same architecture on the same batch
    again: acc_after_epoch. Rows go to the `forgetting` table; the probe touches no
    weight, BN statistic or random stream, so the run trains bit-identically with or
    without it, and --resume may switch it on, off or change it. Its cost is the 2N
    forward passes, counted in the epoch's seconds (benchmarks/bench_forgetting.py).

    Several seeds: `--run 'uniform-s{seed}' --seed 20 --seed 2020 --seed 202020` trains
    three runs. --executor ray trains them in parallel, one Ray task per seed
    (--cpus-per-task, also its torch threads; --gpus-per-task, e.g. 1 with --device
    cuda); this process alone writes the store. RUNS_DIR and --data-dir must be at the
    same path on every Ray worker (a shared file system on a cluster): each task trains
    from its run's last checkpoint there. After a killed driver or worker, the same
    command with --resume continues every run from its last checkpoint."""
    from estbench.data.lookup import DataDir
    from estbench.estimators.oneshot.train import ForgettingProbe, preset_config
    from estbench.runs.executors import check_ray_device, make_executor
    from estbench.runs.train import run_names, runs_dir_for, train_fanout, train_run
    from estbench.runs.zeroshot import check_device
    from estbench.spaces import get_space
    from estbench.store import Store, default_store_path
    from estbench.threads import set_threads

    sp = get_space(space)
    check_device(device)
    check_ray_device(executor, device, gpus_per_task)
    ex = make_executor(executor, address=ray_address, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task)
    overrides = dict(
        epochs=epochs, sampler=sampler, mc_samples=mc_samples, bn_affine=bn_affine, c=c, n=n,
        batch_size=batch_size, lr=lr, train_images=train_images, checkpoint_every=checkpoint_every, device=device,
    )  # fmt: skip
    default = preset_config(sp, preset, **overrides)
    # before the store is opened: checkpoints go to RUNS_DIR/SPACE/RUN
    names = run_names(run, list(seed or []), default.seed)
    runs = [(name, preset_config(sp, preset, **overrides, seed=s)) for name, s in names]
    probe = ForgettingProbe(probe_forgetting, probe_batch)
    store_path = store or default_store_path()
    rdir = runs_dir_for(store_path, runs_dir)
    if executor == "ray":
        n_threads = max(1, int(cpus_per_task))  # each task's torch threads
        with Progress() as prog:
            if resume:
                for name, _ in runs:
                    _warn_other_threads(Store(store_path, init=init), sp.name, name, n_threads, prog.warn)
            outs = train_fanout(
                Store(store_path, init=init), sp, runs, DataDir(data_dir), rdir, resume, ex,
                on_epoch=lambda name, stats: prog.on_run_epoch(name, stats, default.epochs),
                threads=n_threads, probe=probe,
            )  # fmt: skip
        for name, out in outs.items():
            if isinstance(out, str):
                typer.echo(f"run {name}: failed: {out} (fix it, then rerun with --resume)", err=True)
            else:
                _done(sp.name, name, out)
        if any(isinstance(o, str) for o in outs.values()):
            raise typer.Exit(1)
        return
    n_threads = set_threads(threads)  # before torch does any work
    for name, cfg in runs:
        with Progress() as prog:
            if resume:
                _warn_other_threads(Store(store_path, init=init), sp.name, name, n_threads, prog.warn)
            prog.training(cfg.epochs, cfg.lr)
            out = train_run(
                Store(store_path, init=init),
                sp,
                name,
                cfg,
                DataDir(data_dir),
                rdir,
                resume,
                on_epoch=prog.on_epoch,
                on_step=prog.on_step,
                threads=n_threads,
                probe=probe,
            )
        _done(sp.name, name, out)


def _done(space: str, run: str, out) -> None:
    typer.echo(
        f"run {run}: {out.epochs_done} epochs, checkpoints at {', '.join(map(str, out.checkpoints))} in {out.run_dir} "
        f"({out.seconds:.0f}s this session)",
        err=True,
    )
    if out.probes:
        typer.echo(
            f"forgetting probes: {out.probes} rows this session; see estbench variance forgetting --space {space} "
            f"--run {run}",
            err=True,
        )


def _warn_other_threads(store, space: str, run: str, threads: int, warn) -> None:
    """A resume is bit-identical to an uninterrupted run only with the same thread count."""
    old = store.train_run(space, run)
    if old is not None and old.get("threads") not in (None, threads):
        warn(
            f"warning: run {run!r} was trained with {old['threads']} threads, this session uses {threads}: "
            f"the result will not be bit-identical to an uninterrupted run (--threads {old['threads']} keeps it)"
        )
