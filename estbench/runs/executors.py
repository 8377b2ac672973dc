"""Where the loop's architectures are computed: in this process (``local``), or fanned
out over a Ray cluster (``ray``, issue 16) while the driver alone writes the store.

An executor gets a job, one group and the group's missing work [(arch_id, keys)] and
yields (arch_id, keys, rows) as results arrive; the loop (:func:`.loop.run_job`) writes
them in chunks, so with either executor a killed driver loses at most the work in flight
and a rerun computes only what is missing.

Ray: the job (its config, batches, space) is put in the object store once per group; each
task takes ``archs_per_task`` architectures, sets torch's threads to its CPUs, calls
``job.prepare(group)`` and ``job.compute`` for each, exactly what the local loop does, so
values are the same (bit-identical on CPU for the same thread count). A task that raises
is retried by Ray (``max_retries`` for a dead worker, ``retry_exceptions`` off: a Python
error is deterministic) and then becomes ``failed`` rows for every batch of its keys,
with the error in ``detail``; the run finishes. Ray is an optional extra
(``pip install 'estbench[ray]'``) and is imported only by :class:`RayExecutor`.

Training (``train --executor ray``, :meth:`RayExecutor.train`): one task per run (per
seed); the task trains from the run's last checkpoint and reports each epoch (and its
forgetting probes) through a Ray queue to the driver, which writes them
(``runs.train.train_fanout``)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from estbench.errors import BadInput
from estbench.store import ScoreKey, ScoreRow

Work = list[tuple[int, list[ScoreKey]]]
EXECUTORS = ("local", "ray")
RAY_INSTALL = "--executor ray needs Ray, an optional extra: pip install 'estbench[ray]'"


class LocalExecutor:
    """The architectures one after another in this process."""

    def run(self, job, group, todo: Work, run_id: str) -> Iterator[tuple[int, list[ScoreKey], list[ScoreRow]]]:
        job.prepare(group)
        for arch_id, keys in todo:
            yield arch_id, keys, list(job.compute(group, arch_id, keys, run_id))


def failed_rows(keys: Sequence[ScoreKey], arch_id: int, run_id: str, error: str) -> list[ScoreRow]:
    """``failed`` rows for every batch of ``keys``: the architecture is complete (not
    retried by a rerun) and its error is on record, as for a failing measure."""
    return [ScoreRow.of(k, arch_id, b, None, 0.0, run_id, error) for k in keys for b in range(k.n_batches)]


def _compute_chunk(job, group, chunk: Work, run_id: str, threads: int | None) -> list:
    """A Ray task: the local executor on ``chunk`` (a failing architecture fails its own
    rows, not the task's other architectures)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    job.prepare(group)
    out = []
    for arch_id, keys in chunk:
        try:
            out.append((arch_id, keys, list(job.compute(group, arch_id, keys, run_id))))
        except Exception as exc:  # noqa: BLE001 (recorded as failed rows, the run goes on)
            out.append((arch_id, keys, failed_rows(keys, arch_id, run_id, f"{type(exc).__name__}: {exc}")))
    return out


def _train_task(name: str, cfg, space, run_dir, data, probe, queue, threads: int | None) -> int:
    """A Ray task: train run ``name`` from its last checkpoint in ``run_dir`` (from
    scratch when there is none: the first attempt, or a retry of a worker that died
    before it wrote one), putting ("epoch", name, stats, checkpoint path) and
    ("probes", name, epoch, rows) on ``queue`` as they happen; returns the epochs done."""
    import torch

    from estbench.data.cifar10 import load_cifar10
    from estbench.estimators.oneshot.checkpoint import list_checkpoints
    from estbench.estimators.oneshot.train import train_supernet

    if threads:
        torch.set_num_threads(threads)

    def on_epoch(stats) -> None:
        ckpt = list_checkpoints(run_dir).get(stats.epoch)
        queue.put(("epoch", name, stats, None if ckpt is None else str(ckpt)))

    stats = train_supernet(
        cfg, space, load_cifar10(data, "train"), run_dir, resume=True, on_epoch=on_epoch, probe=probe,
        on_probes=lambda epoch, rows: queue.put(("probes", name, epoch, rows)),
    )  # fmt: skip
    return len(stats)


def _error_line(exc: BaseException) -> str:
    """The first line of the error a task raised (Ray wraps it with its traceback)."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"


@dataclass
class RayExecutor:
    """Tasks of ``archs_per_task`` architectures on a Ray cluster (``address`` None: a
    local Ray runtime with ``num_cpus``; "auto": the running cluster). ``archs_per_task``
    None: the job's ``archs_per_task`` (one-shot: 100, as each task loads the
    checkpoint), else 4."""

    address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    archs_per_task: int | None = None
    num_cpus: int | None = None
    max_retries: int = 2

    def __post_init__(self) -> None:
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise BadInput(RAY_INSTALL) from exc
        if self.cpus_per_task <= 0 or self.gpus_per_task < 0 or (self.archs_per_task or 1) < 1:
            raise BadInput("--cpus-per-task must be > 0, --gpus-per-task >= 0 and --archs-per-task >= 1")

    def _init(self):
        import ray

        if not ray.is_initialized():
            import logging

            kw = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True,
                  "logging_level": logging.WARNING}  # fmt: skip
            if self.address:
                ray.init(address=self.address, **kw)
            else:
                ray.init(num_cpus=self.num_cpus or os.cpu_count(), **kw)
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.gpus_per_task > gpus:  # else the tasks wait for a GPU forever
            raise BadInput(f"--gpus-per-task {self.gpus_per_task:g}: the Ray cluster has {gpus:g} GPUs")
        return ray

    def train(self, specs: dict) -> Iterator[tuple]:
        """One task per run ``{name: (cfg, space, run_dir, data, probe)}``; yields the
        tasks' ("epoch", name, stats, ckpt) and ("probes", name, epoch, rows) reports as
        they arrive, then ("done", name, epochs) or ("failed", name, error line) once a
        task has ended (after every report it made). A task whose worker dies is retried
        (``max_retries``) from the run's last checkpoint."""
        ray = self._init()
        from ray.util.queue import Queue

        queue = Queue()
        task = ray.remote(_train_task).options(
            num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task, max_retries=self.max_retries
        )
        threads = max(1, int(self.cpus_per_task))
        pending = {task.remote(name, *spec, queue, threads): name for name, spec in specs.items()}

        def reports():
            n = queue.qsize()
            return queue.get_nowait_batch(n) if n else []

        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                yield from reports()
                for ref in ready:
                    name = pending.pop(ref)
                    yield from reports()  # a task's queue.put returns once the queue holds the report
                    try:
                        yield ("done", name, ray.get(ref))
                    except Exception as exc:  # noqa: BLE001 (the run fails, the others go on)
                        yield ("failed", name, _error_line(exc))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            queue.shutdown()

    def run(self, job, group, todo: Work, run_id: str) -> Iterator[tuple[int, list[ScoreKey], list[ScoreRow]]]:
        ray = self._init()
        task = ray.remote(_compute_chunk).options(
            num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task, max_retries=self.max_retries
        )
        threads = max(1, int(self.cpus_per_task))
        job_ref, group_ref = ray.put(job), ray.put(group)
        per = self.archs_per_task or getattr(job, "archs_per_task", 4)
        chunks = [todo[i : i + per] for i in range(0, len(todo), per)]
        pending = {task.remote(job_ref, group_ref, c, run_id, threads): c for c in chunks}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    chunk = pending.pop(ref)
                    try:
                        results = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 (a worker that died beyond its retries)
                        error = f"ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                        results = [(a, ks, failed_rows(ks, a, run_id, error)) for a, ks in chunk]
                    yield from results
        finally:
            for ref in pending:  # the driver stops (Ctrl-C, an error): nothing more is written
                ray.cancel(ref, force=True)


def check_ray_device(executor: str, device: str, gpus_per_task: float) -> None:
    """Ray gives a task no GPU unless it asks for one (CUDA_VISIBLE_DEVICES is empty),
    and a task sees only the GPU it was given, as ``cuda`` (``cuda:1`` is no device there)."""
    if executor != "ray" or not device.startswith("cuda"):
        return
    if gpus_per_task <= 0:
        raise BadInput(
            f"--device {device} with --executor ray needs --gpus-per-task (1 for a GPU per task, 0.25 to share one "
            "GPU among four tasks): Ray hides the GPUs from a task that asks for none"
        )
    if device != "cuda":
        raise BadInput(
            f"--device {device} with --executor ray: pass --device cuda; Ray assigns each task its GPU and the task "
            "sees only that one"
        )


def make_executor(
    name: str = "local",
    *,
    address: str | None = None,
    cpus_per_task: float = 1.0,
    gpus_per_task: float = 0.0,
    archs_per_task: int | None = None,
    num_cpus: int | None = None,
):
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, cpus_per_task, gpus_per_task, archs_per_task, num_cpus)
    raise BadInput(f"unknown --executor {name!r} (known: {', '.join(EXECUTORS)})")
