"""``estbench train``: train a weight-sharing supernet, checkpoints recorded in the store."""

from __future__ import annotations

import typer

from estbench.cli.common import handle_errors
from estbench.cli.options import DataOpt, InitOpt, SpaceOpt, StoreOpt, ThreadsOpt
from estbench.cli.progress import Progress


def register(app: typer.Typer) -> None:
    app.command()(train)


@handle_errors
def train(
    space: str = SpaceOpt,
    run: str = typer.Option(..., "--run", "-r", help="Name of the run (its checkpoints live in RUNS_DIR/SPACE/RUN)."),
    preset: str = typer.Option(
        "paper",
        "--preset",
        help="paper (the paper's full setting, for a GPU: 1000 epochs) or cpu-small (about 25 min on 2 CPU cores).",
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs [preset]."),
    seed: int | None = typer.Option(None, "--seed", help="Training seed (paper: 20, 2020, 202020) [20]."),
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
    forward passes, counted in the epoch's seconds (benchmarks/bench_forgetting.py)."""
    from estbench.data.lookup import DataDir
    from estbench.estimators.oneshot.train import ForgettingProbe, preset_config
    from estbench.runs.train import check_run_name, runs_dir_for, train_run
    from estbench.runs.zeroshot import check_device
    from estbench.spaces import get_space
    from estbench.store import Store, default_store_path
    from estbench.threads import set_threads

    sp = get_space(space)
    check_run_name(run)  # before the store is opened: checkpoints go to RUNS_DIR/SPACE/RUN
    check_device(device)
    overrides = dict(
        epochs=epochs, seed=seed, sampler=sampler, mc_samples=mc_samples, bn_affine=bn_affine, c=c, n=n,
        batch_size=batch_size, lr=lr, train_images=train_images, checkpoint_every=checkpoint_every, device=device,
    )  # fmt: skip
    cfg = preset_config(sp, preset, **overrides)
    probe = ForgettingProbe(probe_forgetting, probe_batch)
    store_path = store or default_store_path()
    rdir = runs_dir_for(store_path, runs_dir)
    n_threads = set_threads(threads)  # before torch does any work
    with Progress() as prog:
        if resume:
            _warn_other_threads(Store(store_path, init=init), sp.name, run, n_threads, prog.warn)
        prog.training(cfg.epochs, cfg.lr)
        out = train_run(
            Store(store_path, init=init),
            sp,
            run,
            cfg,
            DataDir(data_dir),
            rdir,
            resume,
            on_epoch=prog.on_epoch,
            on_step=prog.on_step,
            threads=n_threads,
            probe=probe,
        )
    typer.echo(
        f"run {run}: {out.epochs_done} epochs, checkpoints at {', '.join(map(str, out.checkpoints))} in {out.run_dir} "
        f"({out.seconds:.0f}s this session)",
        err=True,
    )
    if out.probes:
        typer.echo(
            f"forgetting probes: {out.probes} rows this session; see estbench variance forgetting --space {sp.name} "
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
