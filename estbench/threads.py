"""How many CPU threads torch may use in ``score`` and ``train``, and setting them.

torch starts one intra-op thread per core. On a machine where another CPU-bound job
already holds a core, that oversubscribes it, and torch's OpenMP threads wait for each
other at every op: one cpu-small training step took 12x longer with 2 threads than
with 1 next to one busy core of 2 (1.38 s vs 0.11 s); a whole epoch 880 s instead of
33 s. So the default is the number of cores that are free now:

    threads = clamp(int(cores_allowed - cores_busy + 0.3), 1, cpu_quota)

- ``cores_allowed``: the CPUs this process may run on (``os.sched_getaffinity``);
- ``cores_busy``: the busy time of those CPUs over a 0.2 s sample of ``/proc/stat``
  (a job started a second ago counts in full; the 1-minute load average would still
  call it idle, and a finished one busy), the load average where there is no /proc;
- a core must be at least 70% idle to count as free (``+ 0.3``): one thread too few
  costs at most the share of that core (2 threads are ~1.5x faster than 1 on an idle
  2-core machine), one too many costs 10x and more;
- ``cpu_quota``: a cgroup CPU limit (``cpu.max``), if lower.

``OMP_NUM_THREADS``, when set, is the default instead (torch honours it too); an
explicit ``--threads N`` (or ``ESTBENCH_THREADS``) wins over both. The count is
recorded in every run row (``runs.threads``): values of the same config computed with
different thread counts can differ in the last digits (reductions split differently).
"""

from __future__ import annotations

import math
import os
import time

from estbench.errors import BadInput

FREE_MARGIN = 0.3  # a core at least 70% idle counts as free
SAMPLE_SECONDS = 0.2


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def cpu_quota() -> int | None:
    """The cgroup v2 CPU limit in whole cores (rounded up), None when unlimited."""
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def _cpu_times(cpus: list[int]) -> tuple[float, float] | None:
    """(busy, total) jiffies of ``cpus`` from /proc/stat, None where there is none."""
    want = {f"cpu{c}" for c in cpus}
    busy = total = 0.0
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                name, *fields = line.split()
                if name in want:
                    t = [float(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
                    total += sum(t)
                    busy += sum(t) - t[3] - t[4]
    except (OSError, ValueError, IndexError):
        return None
    return (busy, total) if total else None


def busy_cores(cpus: list[int], seconds: float = SAMPLE_SECONDS) -> float:
    """How many of ``cpus`` other processes keep busy right now, in cores."""
    first = _cpu_times(cpus)
    if first is not None:
        time.sleep(seconds)
        second = _cpu_times(cpus)
        if second is not None and second[1] > first[1]:
            return len(cpus) * (second[0] - first[0]) / (second[1] - first[1])
    try:  # no /proc: the load average, scaled to the CPUs we may use
        return os.getloadavg()[0] * len(cpus) / (os.cpu_count() or len(cpus))
    except (AttributeError, OSError):
        return 0.0


def free_cores(cores: int, busy: float, quota: int | None = None) -> int:
    """The thread count for ``cores`` allowed CPUs of which ``busy`` are in use."""
    limit = min(cores, quota) if quota else cores
    return max(1, min(limit, int(cores - busy + FREE_MARGIN)))


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set, else the cores that are free now (see the module doc)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    cpus = allowed_cpus()
    return free_cores(len(cpus), busy_cores(cpus), cpu_quota())


def set_threads(requested: int | None) -> int:
    """Set torch's CPU threads to ``requested`` (None: :func:`default_threads`) before
    torch does any work; returns the count, as recorded in the run rows."""
    if requested is not None and requested < 1:
        raise BadInput(f"--threads {requested}: must be at least 1")
    n = requested if requested is not None else default_threads()
    import torch

    torch.set_num_threads(n)
    try:  # the inter-op pool (torch.jit fork) can be sized once, before first use
        torch.set_num_interop_threads(n)
    except RuntimeError:
        pass
    return n


def torch_threads() -> int:
    """The intra-op thread count torch uses now (what a run row records)."""
    import torch

    return torch.get_num_threads()
