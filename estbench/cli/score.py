"""``estbench score``: parse the options, build the configs, run the scoring, print
one summary line per estimator and config."""

from __future__ import annotations

from typing import List

import typer

from estbench.cli.common import handle_errors, open_store
from estbench.cli.options import (
    ArchsOpt,
    CpusPerTaskOpt,
    DataOpt,
    ExecutorOpt,
    GpusPerTaskOpt,
    InitOpt,
    RayAddressOpt,
    SpaceOpt,
    StoreOpt,
    ThreadsOpt,
    epoch_option,
    estimator_option,
    seed_option,
)
from estbench.cli.progress import Progress


def register(app: typer.Typer) -> None:
    app.command()(score)


@handle_errors
def score(
    space: str = SpaceOpt,
    estimator: List[str] | None = estimator_option("Estimator to run (repeatable): params, flops, relu, synflow, ..."),
    zse: List[str] | None = typer.Option(
        None,
        "--zse",
        help="Zero-shot estimator (repeatable), 'paper' for the paper's nine measures and vote, or 'all' for the whole suite: the paper's measures, the newer proxies, vote, vote_borda and the rank aggregates (az_nas, vkdnw_agg, tenas; an aggregate also scores its experts); a measure the space or --batches cannot serve (zico needs 2 batches, linear_regions a cell space) is left out with a note.",
    ),
    ose: List[str] | None = typer.Option(
        None, "--ose", help="One-shot run (repeatable): store os_acc and os_loss of the archs inside its supernet."
    ),
    epoch: List[int] | None = epoch_option("Checkpoint epoch of --ose runs (repeatable) [default: the last]."),
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
    gradsim: int | None = typer.Option(
        None,
        "--gradsim",
        help="Gradient similarity instead of os_acc/os_loss for the --ose runs (paper A.3.1): P random pairs of the archs the run's sampler trains (drawn per --seed, default 20; the same pairs at every --epoch), per pair and layer (stem, cells S1C0.., reductions S2R/S3R, classifier) the cosine of the two archs' CE gradients on the parameters both use, on ONE fixed batch of --batch-size training images (--data-seed; --batches does not apply), BN batch statistics. Stored in table gradsim; see `estbench variance gradsim`.",
    ),
    archs: str = ArchsOpt,
    seed: List[int] | None = seed_option(
        "Init seed of zero-shot networks (repeatable; paper: 20 2020 202020) [default: 20]."
    ),
    batch_size: int = typer.Option(128, "--batch-size", help="Zero-shot batch size (paper: 128)."),
    batches: int = typer.Option(
        5, "--batches", help="Zero-shot batches per architecture (paper: 5); every batch is stored."
    ),
    weights: str = typer.Option(
        "fresh",
        "--weights",
        help="Zero-shot weights: fresh (a seeded standalone network per arch, PyTorch's default init), kaiming-fanin (fresh, re-initialised as AZ-NAS's and VKDNW's code does: conv/linear kaiming-normal fan_in, biases 0, BN 1/0), supernet-init (candidates of one random supernet per seed, the paper's code), or supernet:RUN@EPOCH (candidates of training run RUN's supernet at that checkpoint epoch; several as @0,10,50; supernet:RUN = every checkpoint epoch; @0 without a checkpoint = the run's initialisation rebuilt from its seed; rows carry epoch = EPOCH and seed = the run's training seed, so --seed does not apply; vote is not computed on them).",
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
        None,
        "--vote-experts",
        help="Comma-separated experts of vote and vote_borda [default: the paper's set for the space].",
    ),
    c: int | None = typer.Option(None, "--channels", help="Initial channels C of the network (space default)."),
    n: int | None = typer.Option(
        None,
        "--cells",
        help="Cells N (space default): per stage on nb201 / nb101 (3 stages), in all on nb301 (8; reductions at N//3 and 2N//3).",
    ),
    num_classes: int | None = typer.Option(None, "--classes", help="Number of classes (space default)."),
    chunk_size: int | None = typer.Option(
        None,
        "--chunk-size",
        help="Architectures per write transaction (a kill loses at most one chunk) [structural 5000, zero-shot 20, one-shot 100].",
    ),
    executor: str = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
    cpus_per_task: float = CpusPerTaskOpt,
    gpus_per_task: float = GpusPerTaskOpt,
    archs_per_task: int | None = typer.Option(
        None,
        "--archs-per-task",
        help="Ray: architectures per task [zero-shot 4; one-shot 100, as each task loads the checkpoint].",
    ),
    threads: int | None = ThreadsOpt,
    store: str | None = StoreOpt,
    init: bool = InitOpt,
    data_dir: str | None = DataOpt,
) -> None:
    """Score architectures with estimators and cache every score in the store.

    Structural estimators (params, flops, relu, *_live) need no data. Zero-shot
    estimators score a fresh seeded network per architecture on fixed batches; every
    batch's value and the pass's wall time are stored. vote (the paper's pairwise
    majority of experts: archs beaten) and vote_borda (their mean percent rank) are
    computed from the experts' stored scores. Resumable: keys already in the store
    are skipped, so rerunning a killed run computes only what is missing.

    --gradsim P turns --ose scoring into the gradient-similarity probe: no os_acc /
    os_loss, one row per pair and layer in table gradsim (analysis: `estbench
    variance gradsim`).

    --executor ray computes zero-shot and one-shot architectures in Ray tasks
    (--archs-per-task each) while this process alone writes the store; structural
    estimators, votes and --gradsim run here. One-shot tasks load the checkpoint from
    the run's folder, which every worker must reach (docs/scale.md)."""
    from dataclasses import replace

    from estbench.runs import OneShotEval, ScoreRequest, ZeroShotConfig, score
    from estbench.runs.gradsim import check_options as check_gradsim_options
    from estbench.runs.selection import check_archs_spec
    from estbench.runs.zeroshot import check_weights_request
    from estbench.spaces import get_space
    from estbench.threads import set_threads

    check_archs_spec(get_space(space), archs)  # bad input is refused before the store is opened (or created)
    check_gradsim_options(gradsim, list(ose or []), list(seed or [20]), archs, bn, ensemble)
    zcfg = ZeroShotConfig(
        batch_size=batch_size, n_batches=batches, input=input_kind, init=weights, dtype=dtype, device=device,
        data_seed=data_seed, tf32=tf32, c=c, n=n, num_classes=num_classes, chunk_size=_or(chunk_size, 20),
    )  # fmt: skip
    zcfg.validate()
    ev = OneShotEval(
        batch_size=batch_size, n_batches=batches, bn=bn, ensemble=ensemble, data_seed=data_seed, device=device,
        chunk_size=_or(chunk_size, 100),
    )  # fmt: skip
    request = ScoreRequest(
        space=space, estimators=tuple(
            _estimator_names(list(estimator or []), list(zse or []), bool(ose), get_space(space), batches)
        ),
        one_shot_runs=tuple(ose or ()), archs=archs, seeds=tuple(seed or (20,)), epochs=tuple(epoch or ()),
        shape={"c": c, "n": n, "num_classes": num_classes}, zero_shot=zcfg, one_shot=ev,
        structural_chunk=_or(chunk_size, 5000), data_dir=data_dir,
        vote_experts=tuple(e.strip() for e in vote_experts.split(",")) if vote_experts else None,
    )  # fmt: skip
    check_weights_request(weights, list(request.estimators), list(seed or []))  # trained weights' refusals
    request = replace(request, threads=set_threads(threads))  # before torch does any work
    request = replace(request, gradsim_pairs=gradsim)
    from estbench.runs.executors import check_ray_device, make_executor

    check_ray_device(executor, device, gpus_per_task)

    request = replace(
        request,
        executor=make_executor(
            executor, address=ray_address, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task,
            archs_per_task=archs_per_task,
        ),
    )  # fmt: skip
    with open_store(store, init=init) as st, Progress() as prog:
        summaries = score(st, request, prog, warn=prog.warn)
    _print_summaries(summaries)


def _or(value: int | None, default: int) -> int:
    """``value`` unless it is None (0 is a value, refused by validation, not a default)."""
    return default if value is None else value


def _estimator_names(
    estimator: list[str], zse: list[str], one_shot: bool = False, space=None, n_batches: int = 1
) -> list[str]:
    from estbench.errors import BadInput
    from estbench.estimators import ESTIMATORS
    from estbench.runs.aggregate import AGGREGATES
    from estbench.runs.zeroshot import unavailable

    names = list(estimator)
    for z in zse:
        if z == "paper":  # the paper's Table A9 zero-shot rows
            from estbench.estimators.zeroshot import PAPER_MEASURES

            names += [*PAPER_MEASURES, "vote"]
            continue
        if z == "all":  # every zero-shot estimator this space and batch count allow
            for n in ESTIMATORS.names(kind="zeroshot"):
                why = None if space is None or ESTIMATORS.meta(n).get("derived") else unavailable(n, space, n_batches)
                if why:
                    typer.echo(f"--zse all: leaving out {why}", err=True)
                else:
                    names.append(n)
            for n, agg in AGGREGATES.items():  # an aggregate whose expert was left out goes too
                lost = [e for e in agg.experts if ESTIMATORS.meta(e)["kind"] == "zeroshot" and e not in names]
                if n in names and lost:
                    names.remove(n)
                    typer.echo(f"--zse all: leaving out {n} (its expert {lost[0]} is left out)", err=True)
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


def _print_summaries(summaries) -> None:
    for s in summaries:
        typer.echo(
            f"{s.estimator} [{s.config_hash}]: {s.requested} requested, {s.cached} cached, {s.computed} computed "
            f"({s.failed} failed, {s.nonfinite} non-finite) in {s.seconds:.1f}s",
            err=True,
        )
