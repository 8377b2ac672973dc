"""GPU throughput of the zero-shot suite: several architectures per device at once (issue 16).

For each batch size (``--batches``, default 64 and 128) and each sharing level k
(``--per-gpu``, default 1, 2, 4) it scores ``--archs`` NB201 architectures (a fixed random
sample) with the paper's nine zero-shot measures on one batch of ``--input`` (default
Gaussian noise: no data needed) into a fresh temporary store through the real
``estbench.runs.score`` API: k = 1 with the local executor (this process), k > 1 with a
local Ray runtime whose tasks ask for 1/k GPU each (``--executor ray --gpus-per-task
1/k``), so k tasks share the GPU. TF32 is off unless ``--tf32`` (the ZeroShotConfig
default); the runner turns on deterministic algorithms on CUDA.

Per run it prints wall seconds, archs/s, the speed-up over k = 1 and peak GPU memory
(k = 1: ``torch.cuda.max_memory_allocated`` of this process; Ray: the same read in the
workers a probe task reaches after the run, and for every run the whole GPU's peak
memory in use, sampled through NVML or nvidia-smi where present), the mean GPU
utilisation, and whether the stored rows equal those of k = 1 (same device, same seed:
they should be identical). Not timed: one warm-up architecture per worker (k for Ray)
scored first into a throwaway store, and Ray's start-up (``ray.init`` plus one empty
task), printed on its own line. A run the projection says would end after
``--max-seconds`` is skipped (said so), so the default run stays inside ~4 minutes.

``--device cpu`` runs the same path on the CPU, Ray tasks of one CPU and no GPU
(``--cpus-per-task 1``): the script's own check, on any machine.

    python3 benchmarks/bench_gpu.py                      # on one GPU: 64 archs, batch 64 and 128, k = 1, 2, 4
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gpu.py --device cpu --archs 4 --batches 16 --per-gpu 1,2
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts (deterministic GEMMs)

from estbench.data.lookup import DataDir  # noqa: E402
from estbench.errors import EstbenchError  # noqa: E402
from estbench.estimators.zeroshot import PAPER_MEASURES  # noqa: E402
from estbench.runs import ScoreRequest, ZeroShotConfig, score  # noqa: E402
from estbench.runs.selection import ensure_archs  # noqa: E402
from estbench.spaces import get_space  # noqa: E402
from estbench.store import Store  # noqa: E402

NINE = tuple(PAPER_MEASURES)  # the paper's nine zero-shot measures (`score --zse paper` without vote)
# Seconds per architecture for one process, for the estimate printed before anything runs.
# cpu: measured here (1 thread, 2 shared cores); cuda: a guess until a device has been lent.
ASSUMED_S_PER_ARCH = {"cpu": lambda b: 0.4 + 0.02 * b, "cuda": lambda b: 0.3}
RAY_START_S = 10.0


@dataclass
class Result:
    batch: int
    k: int
    label: str
    seconds: float
    archs: int
    memory: str
    util: str
    store: Path


class GpuSampler:
    """Peak memory in use on GPU 0 (all processes) and mean utilisation, sampled every
    ``period`` s through NVML (nvidia-ml-py), else nvidia-smi; ``read()`` None without either."""

    def __init__(self, period: float = 0.05):
        self.period, self.samples, self._stop = period, [], threading.Event()
        self._read = self._nvml() or self._smi()
        self._thread = None

    @staticmethod
    def _nvml():
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # noqa: BLE001 (no NVML: try nvidia-smi)
            return None

        def read():
            mem, util = pynvml.nvmlDeviceGetMemoryInfo(handle), pynvml.nvmlDeviceGetUtilizationRates(handle)
            return mem.used, util.gpu

        return read

    @staticmethod
    def _smi():
        if shutil.which("nvidia-smi") is None:
            return None
        cmd = ["nvidia-smi", "-i", "0", "--query-gpu=memory.used,utilization.gpu", "--format=csv,noheader,nounits"]

        def read():
            used, util = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout.split(",")[:2]
            return int(used) * 2**20, int(util)

        return read

    def __enter__(self) -> GpuSampler:
        if self._read:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self._read())
            except Exception:  # noqa: BLE001 (a failed sample is skipped)
                pass
            self._stop.wait(self.period)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def read(self) -> tuple[float, float] | None:
        if not self.samples:
            return None
        return max(m for m, _ in self.samples), sum(u for _, u in self.samples) / len(self.samples)


def _worker_peak(reset: bool) -> tuple[int, int]:
    """A Ray probe: (pid, this worker's torch peak CUDA memory; -1 where it never used CUDA)."""
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return os.getpid(), -1
    peak = torch.cuda.max_memory_allocated()
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return os.getpid(), peak


def probe_workers(ray, k: int, gpus: float, reset: bool) -> dict[int, int]:
    """{pid: peak} of the workers 4k tiny tasks of the bench's shape land on (not
    guaranteed to reach every worker that scored)."""
    task = ray.remote(_worker_peak).options(num_cpus=1, num_gpus=gpus)
    return dict(ray.get([task.remote(reset) for _ in range(4 * k)]))


def rows(path: Path) -> tuple[list[tuple], str | None]:
    """The scores, values as float.hex (NaN equals NaN), and the first error on record."""
    with Store(path, read_only=True) as st:
        got = st.query("SELECT estimator, arch_id, seed, batch, value, status FROM scores ORDER BY ALL")[1]
        error = st.query("SELECT estimator || ': ' || detail FROM scores WHERE status <> 'ok' LIMIT 1")[1]
    return [(*r[:4], r[4].hex() if isinstance(r[4], float) else r[4], r[5]) for r in got], (error or [[None]])[0][0]


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


class Bench:
    def __init__(self, args, tmp: Path):
        self.args, self.tmp, self.cuda = args, tmp, args.device.startswith("cuda")
        self.template = tmp / "template.duckdb"
        space = get_space("nb201")
        with Store(self.template) as st:  # the archs table once: every run's store starts as a copy
            ensure_archs(st, space, DataDir(args.data))
            strs = st.arch_strings("nb201")
        ids = random.Random(0).sample(range(len(strs)), args.archs + max(args.per_gpu))
        self.warm = ids[: max(args.per_gpu)]  # one warm-up arch per worker, not among the timed ones
        self.timed = tmp / "timed.txt"
        self.timed.write_text("\n".join(strs[i] for i in ids[len(self.warm) :]) + "\n")
        self.strs, self.n, self.fixed = strs, 0, {}

    def store(self) -> Path:
        self.n += 1
        path = self.tmp / f"run{self.n}.duckdb"
        shutil.copyfile(self.template, path)
        return path

    def request(self, batch: int, archs: str, executor=None) -> ScoreRequest:
        a = self.args
        cfg = ZeroShotConfig(batch_size=batch, n_batches=a.n_batches, input=a.input, device=a.device, tf32=a.tf32)
        return ScoreRequest(
            space="nb201", estimators=NINE, archs=archs, seeds=(a.seed,), zero_shot=cfg, data_dir=a.data,
            threads=a.threads, executor=executor,
        )  # fmt: skip

    def score(self, batch: int, archs: str, executor=None) -> tuple[Path, float]:
        path = self.store()
        start = time.perf_counter()
        with Store(path) as st:
            score(st, self.request(batch, archs, executor), warn=lambda _: None)
        return path, time.perf_counter() - start

    def warm_up(self, batch: int, k: int, executor=None) -> None:
        path = self.tmp / f"warm{batch}_{k}.txt"
        path.write_text("\n".join(self.strs[i] for i in self.warm[:k]) + "\n")
        self.score(batch, str(path), executor)

    def local(self, batch: int) -> Result:
        import torch

        self.warm_up(batch, 1)
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with GpuSampler() as gpu:
            path, seconds = self.score(batch, str(self.timed))
        memory = f"torch {mib(torch.cuda.max_memory_allocated())}" if self.cuda else "-"
        start = time.perf_counter()  # the fixed cost of a score() call: everything cached, nothing computed
        with Store(path) as st:
            score(st, self.request(batch, str(self.timed)), warn=lambda _: None)
        self.fixed[batch] = time.perf_counter() - start
        return Result(batch, 1, "local, 1 process", seconds, self.args.archs, *_gpu_note(gpu, memory), path)

    def ray(self, ray, batch: int, k: int) -> Result:
        from estbench.runs.executors import RayExecutor

        gpus = 1 / k if self.cuda else 0.0
        per_task = self.args.archs_per_task or max(1, min(4, self.args.archs // (2 * k)))
        ex = RayExecutor(cpus_per_task=self.args.threads, gpus_per_task=gpus, archs_per_task=per_task)
        self.warm_up(batch, k, replace(ex, archs_per_task=1))  # one arch per worker: k workers start, untimed
        if self.cuda:
            probe_workers(ray, k, gpus, reset=True)
        with GpuSampler() as gpu:
            path, seconds = self.score(batch, str(self.timed), ex)
        memory = "-"
        if self.cuda:
            peaks = [p for p in probe_workers(ray, k, gpus, reset=False).values() if p >= 0]
            memory = f"worker torch max {mib(max(peaks))} ({len(peaks)}/{k} probed)" if peaks else "workers: n/a"
        label = f"ray, {k} tasks x {gpus:.3g} GPU" if self.cuda else f"ray, {k} tasks x 1 CPU"
        return Result(batch, k, label, seconds, self.args.archs, *_gpu_note(gpu, memory), path)


def _gpu_note(gpu: GpuSampler, memory: str) -> tuple[str, str]:
    got = gpu.read()
    if got is None:
        return memory, "-"
    return f"{memory}; GPU in use {mib(got[0])}", f"{got[1]:.0f}%"


def start_ray(args, cuda: bool, k_max: int):
    """A local Ray runtime with one GPU (cuda) or k_max CPUs; its start-up seconds."""
    import ray

    start = time.perf_counter()
    cpus = max(k_max * args.threads, os.cpu_count() or 1) if cuda else k_max * args.threads
    ray.init(
        num_cpus=cpus, num_gpus=1 if cuda else 0, object_store_memory=512 * 2**20,
        include_dashboard=False, log_to_driver=False,
    )  # fmt: skip
    ray.get(ray.remote(lambda: None).remote())
    return ray, time.perf_counter() - start


def estimate(args) -> float:
    s = ASSUMED_S_PER_ARCH["cuda" if args.device.startswith("cuda") else "cpu"]
    k_ray = [k for k in args.per_gpu if k > 1]
    per_batch = [(args.archs * len(args.per_gpu) + 1 + sum(k_ray)) * s(b) for b in args.batches]
    return sum(per_batch) + RAY_START_S * bool(k_ray)


def parse_ints(text: str, least: int, option: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        values = []
    if not values or values[0] < least:
        bad_input(f"{option} {text!r}: expected comma-separated integers >= {least}")
    return values


def bad_input(text: str):
    print(f"error: {text}", file=sys.stderr)
    raise SystemExit(2)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (the self-check)")
    ap.add_argument("--archs", type=int, default=64, help="NB201 architectures per run (a fixed random sample)")
    ap.add_argument("--batches", default="64,128", help="batch sizes, comma-separated")
    ap.add_argument("--per-gpu", default="1,2,4", help="tasks sharing one GPU (k>1: Ray, --gpus-per-task 1/k)")
    ap.add_argument("--input", default="noise-gaussian", help="noise-gaussian, noise-uniform or cifar10 (--data)")
    ap.add_argument("--data", default=None, help="data directory (for --input cifar10)")
    ap.add_argument("--n-batches", type=int, default=1, help="batches per architecture")
    ap.add_argument("--archs-per-task", type=int, default=None, help="default: 4, fewer so every task has 2+ chunks")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (= CPUs per Ray task)")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 (off by default, as in estbench score)")
    ap.add_argument("--max-seconds", type=float, default=240, help="skip runs projected to end after this")
    args = ap.parse_args()
    args.batches = parse_ints(args.batches, 2, "--batches")
    args.per_gpu = parse_ints(args.per_gpu, 1, "--per-gpu")
    if args.archs < 1 or args.threads < 1 or (args.archs_per_task or 1) < 1 or args.n_batches < 1:
        bad_input("--archs, --threads, --archs-per-task and --n-batches must be >= 1")
    return args


def main() -> int:
    args = parse_args()
    import torch

    t0 = time.perf_counter()
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print(
            f"error: --device {args.device}: no CUDA device is available (torch {torch.__version__})", file=sys.stderr
        )
        return 2
    if args.device != "cpu" and not cuda:
        print(f"error: --device {args.device!r}: expected cuda, cuda:N or cpu", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    where = f"cpu, {args.threads} thread(s) per process"
    if cuda:
        props = torch.cuda.get_device_properties(args.device)
        where = f"{props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"
    print(f"bench_gpu: {where}; torch {torch.__version__}; TF32 {'on' if args.tf32 else 'off'}, deterministic")
    print(f"  measures: {', '.join(NINE)}; input {args.input}, {args.n_batches} batch(es) per arch, seed {args.seed}")
    k_ray = [k for k in args.per_gpu if k > 1]
    print(
        f"  size: {args.archs} archs x {len(args.batches)} batch sizes ({', '.join(map(str, args.batches))}) x "
        f"{len(args.per_gpu)} sharing levels (k = {', '.join(map(str, args.per_gpu))}) = "
        f"{args.archs * len(args.batches) * len(args.per_gpu)} timed arch scorings, "
        f"{1 + sum(k_ray)} warm-up archs per batch size, {'one Ray start-up' if k_ray else 'no Ray'}"
    )
    assumed = "measured on this project's 2-core machine" if not cuda else "a guess: no GPU measured yet"
    print(
        f"  estimate: ~{estimate(args):.0f} s with no gain from sharing ({assumed}); budget --max-seconds {args.max_seconds:.0f}"
    )

    tmp = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    try:
        return run_all(args, cuda, tmp, t0)
    except EstbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_all(args, cuda: bool, tmp: Path, t0: float) -> int:
    bench = Bench(args, tmp)
    results: dict[tuple[int, int], Result] = {}
    skipped = []
    ray = None
    for k in args.per_gpu:
        if k > 1 and ray is None:
            try:
                ray, startup = start_ray(args, cuda, max(args.per_gpu))
            except Exception as exc:  # noqa: BLE001 (no Ray, or it cannot start here: k = 1 still counts)
                print(f"  ray: cannot start ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
                skipped += [(b, kk) for b in args.batches for kk in args.per_gpu if kk > 1]
                break
            print(f"  ray start-up (init + one empty task): {startup:.1f} s (not in the times below)")
        for b in args.batches:
            ref = results.get((b, 1))
            rate = args.archs / ref.seconds if ref else 1 / ASSUMED_S_PER_ARCH["cuda" if cuda else "cpu"](b)
            projected = (args.archs + k) / rate
            if time.perf_counter() - t0 + projected > args.max_seconds:
                print(f"  skipped batch {b}, k={k}: projected to end after --max-seconds {args.max_seconds:.0f}")
                skipped.append((b, k))
                continue
            try:
                r = bench.local(b) if k == 1 else bench.ray(ray, b, k)
            except EstbenchError:
                raise  # bad input (e.g. no CIFAR-10 for --input cifar10): one line, exit 2
            except Exception as exc:  # noqa: BLE001 (one broken run: the others still report)
                print(f"  FAILED batch {b}, k={k}: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}")
                skipped.append((b, k))
                continue
            results[(b, k)] = r
            speed = f", {ref.seconds / r.seconds:.2f}x k=1" if ref and k > 1 else ""
            print(
                f"  done batch {b:4d}, k={k}: {r.seconds:6.1f} s, {args.archs / r.seconds:.2f} archs/s{speed}  "
                f"(elapsed {time.perf_counter() - t0:.0f} s)"
            )
    if ray is not None:
        ray.shutdown()
    return report(args, results, skipped, bench.fixed)


def report(args, results: dict, skipped: list, fixed: dict) -> int:
    bad, errors = False, []
    print()
    head = f"{'batch':>5s} {'k':>2s}  {'executor':24s} {'wall s':>7s} {'archs/s':>8s} {'vs k=1':>7s} {'GPU util':>8s}"
    print(f"{head}  rows vs k=1   peak memory")
    for (b, k), r in sorted(results.items()):
        ref = results.get((b, 1))
        got, error = rows(r.store)
        failed = sum(row[5] != "ok" for row in got)
        errors += [f"batch {b}, k={k}: {error}"] if error else []
        if ref is None or k == 1:
            same = "reference"
        else:
            same = "identical" if got == rows(ref.store)[0] else "DIFFERENT"
            bad |= same == "DIFFERENT"
        bad |= failed > 0
        speed = f"{ref.seconds / r.seconds:6.2f}x" if ref else "     -"
        note = f"{same} ({len(got)} rows{f', {failed} not ok' if failed else ''})"
        print(
            f"{b:5d} {k:2d}  {r.label:24s} {r.seconds:7.1f} {r.archs / r.seconds:8.2f} {speed:>7s} {r.util:>8s}  "
            f"{note:24s}  {r.memory}"
        )
    for b, k in skipped:
        print(f"{b:5d} {k:2d}  skipped or failed (see above)")
    for line in errors:
        print(f"first row not ok, {line}")
    compared = sum(k > 1 and (b, 1) in results for b, k in results)
    verdict = "nothing to compare" if not compared else "they do" if not bad else "see above"
    print(f"rows: the same device and seed must give identical rows for every k ({verdict})")
    if fixed:
        each = ", ".join(f"batch {b} {s:.2f} s" for b, s in sorted(fixed.items()))
        print(
            f"wall s = one score() call, warm-up and Ray start-up excluded; its fixed part (a rerun, all cached): {each}"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
