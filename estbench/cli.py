"""The estbench command line. Commands are thin: parse, build a config, call one
library function, render. Heavy imports (torch, duckdb) happen inside commands."""

from __future__ import annotations

import functools
import sys
from typing import Callable, List

import typer

from estbench.errors import EstbenchError

app = typer.Typer(
    help="Evaluate efficient architecture-performance estimators (zero-shot proxies, one-shot "
    "supernets) on NAS benchmarks: score every architecture, cache scores in a DuckDB store, "
    "and compute ranking criteria and reports (Ning et al., NeurIPS 2021).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
truth_app = typer.Typer(help="Load and list ground truth (benchmark accuracies).", no_args_is_help=True)
app.add_typer(truth_app, name="truth")

StoreOpt = typer.Option(None, "--store", envvar="ESTBENCH_STORE", help="DuckDB store file [default: estbench.duckdb].")
DataOpt = typer.Option(
    None,
    "--data-dir",
    envvar="ESTBENCH_DATA",
    help="Data directory (datasets, benchmark files); then ./data, ../shared/data.",
)
FormatOpt = typer.Option("table", "--format", "-f", help="Output: table, csv, json, markdown or latex.")
SpaceOpt = typer.Option(..., "--space", "-s", help="Search space (see `estbench list spaces`).")
TruthOpt = typer.Option(
    "cifar10-test", "--truth", "-t", help="Truth metric, e.g. cifar10-test (see `estbench truth list`)."
)
ProtocolOpt = typer.Option(
    "deiso",
    "--protocol",
    help="iso (every arch), deiso (one point per isomorphism class, the paper's NB201 protocol) or deiso-computational.",
)
EstOpt = typer.Option(None, "--estimator", "-e", help="Estimator (repeatable); default: every scored estimator.")
EpochOpt = typer.Option(None, "--epoch", help="Epoch (repeatable; 0 = untrained); default: all.")
SeedOpt = typer.Option(None, "--seed", help="Seed (repeatable); default: mean over all seeds.")


def _fail(exc: EstbenchError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def handle_errors(fn: Callable) -> Callable:
    """Turn every EstbenchError into one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EstbenchError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            typer.echo("interrupted; finished chunks are saved, rerun to continue", err=True)
            raise typer.Exit(130) from None

    return wrapper


def _echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _store(path: str | None, read_only: bool = False):
    from estbench.store.store import open_store

    return open_store(path, read_only=read_only)


# ---- list -------------------------------------------------------------------------
@app.command("list")
@handle_errors
def list_cmd(
    what: str = typer.Argument("estimators", help="spaces or estimators"),
    fmt: str = FormatOpt,
) -> None:
    """List registered spaces or estimators."""
    from estbench.estimators import ESTIMATORS
    from estbench.report.render import render
    from estbench.spaces import SPACES

    tables = {
        "spaces": (["space", "description"], [[n, SPACES.meta(n).get("description", "")] for n in SPACES.names()]),
        "estimators": (
            ["estimator", "kind", "higher_is_better", "description"],
            [
                [n, m["kind"], m["higher_is_better"], m.get("description", "")]
                for n in ESTIMATORS.names()
                for m in [ESTIMATORS.meta(n)]
            ],
        ),
    }
    if what not in tables:
        from estbench.errors import BadInput

        raise BadInput(f"cannot list {what!r} (spaces, estimators)")
    _echo(render(*tables[what], fmt=fmt))


# ---- truth ------------------------------------------------------------------------
@truth_app.command("load")
@handle_errors
def truth_load(
    space: str = SpaceOpt,
    file: str | None = typer.Option(
        None, "--file", help="Truth file or directory; default: looked up in the data directory."
    ),
    source: str = typer.Option(
        "auto",
        "--source",
        help="auto, table (estbench CSV), nats-simple (NATS-tss-v1_0-3ffb9-simple dir) or nb201-pth.",
    ),
    metric: List[str] | None = typer.Option(None, "--metric", "-m", help="Load only these metrics (repeatable)."),
    store: str | None = StoreOpt,
    data_dir: str | None = DataOpt,
) -> None:
    """Load ground truth for a space into the store (replaces the metrics it loads)."""
    from estbench.data.lookup import DataDir
    from estbench.spaces import get_space
    from estbench.truth.load import load_truth

    sp = get_space(space)
    data = DataDir(data_dir)
    with _store(store) as st:
        infos, n = load_truth(st, sp, data, file, source, list(metric or []))
    typer.echo(f"loaded {n} values of {len(infos)} metrics for {space}: {', '.join(sorted(infos))}", err=True)


@truth_app.command("list")
@handle_errors
def truth_list(
    space: str | None = typer.Option(None, "--space", "-s"), store: str | None = StoreOpt, fmt: str = FormatOpt
) -> None:
    """List the truth metrics in the store."""
    from estbench.report.render import render

    with _store(store, read_only=True) as st:
        cols, rows = st.query(
            "SELECT m.space, m.metric, m.epoch, m.seed_mean, count(t.value) AS archs, m.source "
            "FROM metrics m LEFT JOIN truth t USING (space, metric) WHERE ? IS NULL OR m.space = ? "
            "GROUP BY ALL ORDER BY 1, 2",
            [space, space],
        )
    _echo(render(cols, rows, fmt))


# ---- score ------------------------------------------------------------------------
def _estimator_names(estimator: list[str], zse: list[str], one_shot: bool = False) -> list[str]:
    from estbench.errors import BadInput
    from estbench.estimators import ESTIMATORS

    names = list(estimator)
    for z in zse:
        if z == "all":
            names += ESTIMATORS.names(kind="zeroshot")
            continue
        if ESTIMATORS.entry(z).meta["kind"] != "zeroshot":
            raise BadInput(f"{z} is not a zero-shot estimator; pass it with --estimator")
        names.append(z)
    if not names and not one_shot:
        raise BadInput(
            "nothing to score: pass --estimator NAME, --zse NAME or --ose RUN (see `estbench list estimators`)"
        )
    for name in names:
        ESTIMATORS.entry(name)
    return list(dict.fromkeys(names))


@app.command()
@handle_errors
def score(
    space: str = SpaceOpt,
    estimator: List[str] | None = typer.Option(
        None, "--estimator", "-e", help="Estimator to run (repeatable): params, flops, relu, synflow, ..."
    ),
    zse: List[str] | None = typer.Option(
        None, "--zse", help="Zero-shot estimator (repeatable), or 'all' for the whole suite (+ vote)."
    ),
    ose: List[str] | None = typer.Option(
        None, "--ose", help="One-shot run (repeatable): store os_acc and os_loss of the archs inside its supernet."
    ),
    epoch: List[int] | None = typer.Option(
        None, "--epoch", help="Checkpoint epoch of --ose runs (repeatable) [default: the last]."
    ),
    bn: str = typer.Option(
        "train",
        "--bn",
        help="One-shot BN mode: train (batch statistics, the paper's) or recalibrate (re-estimate per arch).",
    ),
    ensemble: int = typer.Option(
        1,
        "--ensemble",
        help="One-shot temporal ensemble: average the weights of the last K checkpoints (paper Sec. 6.1).",
    ),
    archs: str = typer.Option(
        "all",
        "--archs",
        "-a",
        help="all, A:B (id range), sample:N[@SEED], with-truth, deiso, or a file of arch strings.",
    ),
    seed: List[int] | None = typer.Option(
        None, "--seed", help="Init seed of zero-shot networks (repeatable; paper: 20 2020 202020) [default: 20]."
    ),
    batch_size: int = typer.Option(128, "--batch-size", help="Zero-shot batch size (paper: 128)."),
    batches: int = typer.Option(
        5, "--batches", help="Zero-shot batches per architecture (paper: 5); every batch is stored."
    ),
    weights: str = typer.Option(
        "fresh",
        "--weights",
        help="Zero-shot weights: fresh (a seeded standalone network per arch) or supernet-init (candidates of one random supernet per seed, the paper's code).",
    ),
    input_kind: str = typer.Option(
        "cifar10", "--input", help="cifar10 (fixed unaugmented training batches), noise-uniform or noise-gaussian."
    ),
    data_seed: int = typer.Option(0, "--data-seed", help="Which training images form the fixed batches."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda[:N]."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or float64 (synflow always runs in float64)."),
    tf32: bool = typer.Option(
        False, "--tf32/--no-tf32", help="Allow TF32 matmuls on GPUs (off by default; part of the config)."
    ),
    vote_experts: str | None = typer.Option(
        None, "--vote-experts", help="Comma-separated experts of vote [default: the paper's set for the space]."
    ),
    c: int | None = typer.Option(None, "--channels", help="Initial channels C of the network (space default)."),
    n: int | None = typer.Option(None, "--cells", help="Cells per stage N (space default)."),
    num_classes: int | None = typer.Option(None, "--classes", help="Number of classes (space default)."),
    chunk_size: int | None = typer.Option(
        None,
        "--chunk-size",
        help="Architectures per write transaction (a kill loses at most one chunk) [structural 500, zero-shot 20].",
    ),
    store: str | None = StoreOpt,
    data_dir: str | None = DataOpt,
) -> None:
    """Score architectures with estimators and cache every score in the store.

    Structural estimators (params, flops, relu, *_live) need no data. Zero-shot
    estimators score a fresh seeded network per architecture on fixed batches; every
    batch's value and the pass's wall time are stored. vote is computed from its
    experts' stored scores. Resumable: keys already in the store are skipped, so
    rerunning a killed run computes only what is missing."""
    from estbench.config import ScoreConfig
    from estbench.data.lookup import DataDir
    from estbench.estimators import ESTIMATORS
    from estbench.oneshot_runs import OneShotEval, score_one_shot
    from estbench.scoring import score as run_structural
    from estbench.scoring_zeroshot import ZeroShotConfig, score_vote, score_zero_shot
    from estbench.selection import ensure_archs, select_archs
    from estbench.spaces import get_space

    sp = get_space(space)
    names = _estimator_names(list(estimator or []), list(zse or []), bool(ose))
    by_need = {n: ESTIMATORS.meta(n) for n in names}
    structural = [n for n in names if by_need[n]["kind"] == "structural"]
    derived = [n for n in names if by_need[n]["needs"] == "analysis"]
    zero_shot = [n for n in names if n not in structural and n not in derived]
    zcfg = ZeroShotConfig(
        batch_size=batch_size, n_batches=batches, input=input_kind, init=weights, dtype=dtype, device=device, data_seed=data_seed,
        tf32=tf32, c=c, n=n, num_classes=num_classes, chunk_size=chunk_size or 20,
    )  # fmt: skip
    zcfg.validate()
    ev = OneShotEval(
        batch_size=batch_size, n_batches=batches, bn=bn, ensemble=ensemble, data_seed=data_seed, device=device,
        chunk_size=chunk_size or 100,
    )  # fmt: skip
    data = DataDir(data_dir)
    summaries = []
    with _store(store) as st:
        ensure_archs(st, sp, data)
        ids = select_archs(st, sp, archs)
        with _progress() as prog:
            if structural:
                cfg = ScoreConfig(space=space, c=c, n=n, num_classes=num_classes, chunk_size=chunk_size or 500)
                summaries += run_structural(st, sp, structural, ids, cfg, prog)
            if zero_shot:
                summaries += score_zero_shot(st, sp, zero_shot, ids, list(seed or [20]), zcfg, data, prog)
            for run in ose or []:
                summaries += score_one_shot(st, sp, run, ids, list(epoch or []), ev, data, prog)
        if derived:
            from estbench.analysis.vote import EXPERTS

            experts = [e.strip() for e in vote_experts.split(",")] if vote_experts else list(EXPERTS.get(space, ()))
            for e in experts:
                ESTIMATORS.entry(e)
            summaries.append(score_vote(st, sp, experts, zcfg, data))
    _print_summaries(summaries)


def _print_summaries(summaries) -> None:
    for s in summaries:
        typer.echo(
            f"{s.estimator} [{s.config_hash}]: {s.requested} requested, {s.cached} cached, {s.computed} computed "
            f"({s.failed} failed, {s.nonfinite} non-finite) in {s.seconds:.1f}s",
            err=True,
        )


# ---- train ------------------------------------------------------------------------
@app.command()
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
    n: int | None = typer.Option(None, "--cells", help="Cells per stage N [preset]."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Training batch size [preset]."),
    lr: float | None = typer.Option(None, "--lr", help="Initial learning rate [0.05]."),
    train_images: int | None = typer.Option(
        None, "--train-images", help="Train on a fixed subset of N images of the 80% split [preset]."
    ),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", help="Checkpoint every K epochs (and at the end) [preset]."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda[:N]."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run from its last checkpoint (same result as an uninterrupted run)."
    ),
    runs_dir: str | None = typer.Option(
        None, "--runs-dir", envvar="ESTBENCH_RUNS", help="Folder of run folders [estbench_runs beside the store]."
    ),
    store: str | None = StoreOpt,
    data_dir: str | None = DataOpt,
) -> None:
    """Train a weight-sharing supernet (the paper's one-shot estimator, App. D settings).

    SGD momentum 0.9, weight decay 5e-4, lr 0.05 halved when the epoch's training loss
    stops improving for the patience, gradient clip 5, dropout 0.1, CIFAR-10 train split
    80/20, crop+flip augmentation. Checkpoints are written atomically and recorded in
    the store with per-epoch loss, lr and time. Then score archs with
    `estbench score --ose RUN`."""
    from estbench.data.lookup import DataDir
    from estbench.estimators.oneshot.train import preset_config
    from estbench.oneshot_runs import runs_dir_for, train_run
    from estbench.scoring_zeroshot import check_device
    from estbench.spaces import get_space
    from estbench.store.store import default_store_path

    sp = get_space(space)
    check_device(device)
    overrides = dict(
        epochs=epochs, seed=seed, sampler=sampler, mc_samples=mc_samples, bn_affine=bn_affine, c=c, n=n,
        batch_size=batch_size, lr=lr, train_images=train_images, checkpoint_every=checkpoint_every, device=device,
    )  # fmt: skip
    cfg = preset_config(preset, **overrides)
    store_path = store or default_store_path()
    rdir = runs_dir_for(store_path, runs_dir)
    with _train_progress(cfg) as prog:
        out = train_run(
            store_path, sp, run, cfg, DataDir(data_dir), rdir, resume, on_epoch=prog.epoch, on_step=prog.step
        )
    typer.echo(
        f"run {run}: {out.epochs_done} epochs, checkpoints at {', '.join(map(str, out.checkpoints))} in {out.run_dir} "
        f"({out.seconds:.0f}s this session)",
        err=True,
    )


class _train_progress:
    """Epoch / step / loss / lr / ETA on stderr; one line per epoch when not a terminal."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self.plain = not console.is_terminal
        self.bar = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f} lr {task.fields[lr]:.4g}"), TimeRemainingColumn(),
            console=console, disable=self.plain,
        )  # fmt: skip
        self.task = None
        self.bar.start()
        return self

    def step(self, epoch: int, step: int, loss: float) -> None:
        if self.task is None:
            self.task = self.bar.add_task(
                "train", total=None, epoch=epoch, epochs=self.cfg.epochs, loss=loss, lr=self.cfg.lr
            )
        self.bar.update(self.task, advance=1, epoch=epoch, loss=loss)

    def epoch(self, stats) -> None:
        if self.task is not None:
            done_epochs = stats.epoch
            self.bar.update(
                self.task, total=self.cfg.epochs * stats.steps, completed=done_epochs * stats.steps, lr=stats.lr
            )
        if self.plain:
            sys.stderr.write(
                f"epoch {stats.epoch}/{self.cfg.epochs}: loss {stats.train_loss:.4f} lr {stats.lr:.4g} ({stats.seconds:.1f}s)\n"
            )
            sys.stderr.flush()

    def __exit__(self, *exc):
        self.bar.stop()


class _progress:
    """A rich progress bar per task (archs/s, ETA) on stderr. When stderr is not a
    terminal (a run in the background, a log file), one plain line every
    ``log_every`` seconds instead."""

    log_every = 30.0

    def __enter__(self):
        import time

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self.plain = not console.is_terminal
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
            console=console, disable=self.plain,
        )  # fmt: skip
        self.tasks: dict[str, int] = {}
        self.clock = time.monotonic
        self.last_log = self.clock()
        self.bar.start()
        return self

    def __call__(self, name: str, advance: int, total: int) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.bar.add_task(name, total=total, rate="")
        task = self.tasks[name]
        self.bar.advance(task, advance)
        info = self.bar.tasks[task]
        speed = info.speed
        self.bar.update(task, rate=f"{speed:,.2f} archs/s" if speed else "")
        now = self.clock()
        if self.plain and (now - self.last_log >= self.log_every or info.completed >= total):
            self.last_log = now
            eta = f", ETA {info.time_remaining:.0f}s" if info.time_remaining is not None else ""
            rate = f", {speed:.2f}/s" if speed else ""
            sys.stderr.write(f"{name}: {info.completed:.0f}/{total}{rate}{eta}\n")
            sys.stderr.flush()

    def __exit__(self, *exc):
        self.bar.stop()


# ---- criteria / report ------------------------------------------------------------
def _parse_ks(ks: List[str] | None) -> tuple[float, ...]:
    from estbench.analysis.criteria import DEFAULT_KS
    from estbench.errors import BadInput

    if not ks:
        return DEFAULT_KS
    out = []
    for k in ks:
        try:
            v = float(k[:-1]) / 100 if k.endswith("%") else float(k)
        except ValueError:
            raise BadInput(f"--k {k!r}: expected a proportion like 0.05 or 5%") from None
        if not 0 < v <= 1:
            raise BadInput(f"--k {k!r}: must lie in (0, 1]")
        out.append(v)
    return tuple(out)


@app.command()
@handle_errors
def criteria(
    space: str = SpaceOpt,
    truth: str = TruthOpt,
    protocol: str = ProtocolOpt,
    estimator: List[str] | None = EstOpt,
    epoch: List[int] | None = EpochOpt,
    seed: List[int] | None = SeedOpt,
    k: List[str] | None = typer.Option(
        None, "--k", help="Proportions K for P@top/bottomK, BR@K, WR@K (repeatable; default 0.1%..50%)."
    ),
    store: str | None = StoreOpt,
    fmt: str = FormatOpt,
) -> None:
    """Ranking criteria (paper Sec. 3) of every scored estimator against a truth metric.

    One row per estimator (and config / epoch): LC, KD (Kendall tau-b), SpearmanR,
    mean estimate, and P@topK, P@bottomK, BR@K, WR@K for every K."""
    from estbench.analysis.evaluate import evaluate
    from estbench.report.render import render
    from estbench.report.tables import criteria_rows

    ks = _parse_ks(k)
    with _store(store, read_only=True) as st:
        groups = evaluate(st, space, truth, protocol, list(estimator or []), epoch, seed, ks)
    cols, rows = criteria_rows(groups, ks)
    _echo(render(cols, rows, fmt, title=f"{space} vs {truth} ({protocol})"))


@app.command()
@handle_errors
def report(
    space: str = SpaceOpt,
    truth: str = TruthOpt,
    protocol: str = ProtocolOpt,
    estimator: List[str] | None = EstOpt,
    epoch: List[int] | None = EpochOpt,
    seed: List[int] | None = SeedOpt,
    store: str | None = StoreOpt,
    fmt: str = FormatOpt,
) -> None:
    """The paper's Table A9 layout: KD / SpearmanR / P@top5% / P@bottom5% / BR@5% per estimator."""
    from estbench.analysis.evaluate import evaluate
    from estbench.report.render import render
    from estbench.report.tables import a9_rows

    with _store(store, read_only=True) as st:
        groups = evaluate(st, space, truth, protocol, list(estimator or []), epoch, seed, (0.05,))
    cols, rows = a9_rows(groups)
    _echo(render(cols, rows, fmt, title=f"Table A9 layout: {space}, truth {truth}, protocol {protocol}"))


# ---- sql / export -----------------------------------------------------------------
@app.command()
@handle_errors
def sql(
    query: str = typer.Argument(
        ...,
        help="SQL to run on the store (tables: archs, truth, metrics, scores, estimators, configs, runs; view score_mean).",
    ),
    store: str | None = StoreOpt,
    fmt: str = FormatOpt,
    write: bool = typer.Option(False, "--write", help="Open the store writable (default: read-only)."),
) -> None:
    """Run SQL on the store and print the rows."""
    from estbench.report.render import render

    with _store(store, read_only=not write) as st:
        cols, rows = st.query(query)
    _echo(render(cols, rows, fmt, digits=6))


@app.command()
@handle_errors
def export(
    directory: str = typer.Argument(..., help="Directory to write <table>.parquet files into."),
    table: List[str] | None = typer.Option(None, "--table", help="Table or view to export (repeatable); default: all."),
    store: str | None = StoreOpt,
) -> None:
    """Export the store's tables as Parquet files."""
    with _store(store, read_only=True) as st:
        paths = st.export_parquet(directory, table)
    for p in paths:
        typer.echo(str(p))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
