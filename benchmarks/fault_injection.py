"""Fault injection: kill `estbench score` and `estbench train` at random points and check
that nothing is lost, duplicated or misreported (issue 9, "Done means").

For each command: one straight run as a subprocess (the reference, and the window the
kills are drawn from: from 0.8 x its start-up, the time it took to create its store, to
its end; shrunk to the quickest run that ended before its kill), then --kills times: a
fresh store, the command as a subprocess, SIGKILL (every --sigterm-every-th kill:
SIGTERM) after a uniformly random delay in that window, then
a rerun to completion (in this process, as a user's rerun would: `score` again, `train
--resume`, or plain `train` when the kill came before the run was recorded). Checked
after every kill and rerun:

- a SIGTERM'd process exits 143 with its run rows `interrupted` (or -15 when the signal
  lands outside the command: start-up or interpreter teardown, no run open); after a
  SIGKILL every run row's n_written still equals the rows it left (counted in each
  chunk's transaction);
- the rerun completes; exactly one row per key; no `running` row is left (the rerun, a
  writer, marks the killed run `interrupted`); the rerun's own runs are `done`, and
  every run's n_written equals the score rows carrying its run id (a training run's:
  its epochs; an earlier vote run's rows are replaced by the rerun's vote);
- scores equal the straight run's, value for value; a resumed training run is
  bit-identical to the straight one: final checkpoint weights, and per epoch the loss,
  lr and steps (checkpoints every 1 or 2 epochs, drawn per kill, so kills also land
  after epochs that have no checkpoint).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fault_injection.py [--kills 20] [--seed 0]

Prints one line per kill and a summary; exit 1 when any check fails.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402
from tests_support import write_fake_cifar  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from estbench.cli import app  # noqa: E402
from estbench.store import Store  # noqa: E402

SCORE = ["score", "--space", "toy", "-e", "params", "-e", "flops", "--input", "noise-uniform"]
SCORE += [a for z in ("relu_logdet", "jacob_cov", "synflow", "vote") for a in ("--zse", z)]
SCORE += ["--archs", "0:14", "--batch-size", "8", "--batches", "2", "--chunk-size", "2", "--seed", "1", "--seed", "2"]
TRAIN = ["train", "--space", "toy", "--run", "f", "--preset", "cpu-small", "--epochs", "5"]
TRAIN += ["--train-images", "320", "--batch-size", "16"]
KEY = "space, arch_id, estimator, config_hash, epoch, seed, batch"
RUN_ROWS = (
    "SELECT run_id, kind, status, n_written, pid, name = 'vote', CASE WHEN kind = 'train' THEN (SELECT coalesce(max(epoch), 0) "
    "FROM train_epochs e WHERE e.space = r.space AND e.run_name = r.name) ELSE (SELECT count(*) FROM scores s "
    "WHERE s.run_id = r.run_id) END AS rows FROM runs r"
)


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, ok: bool, what: str) -> None:
        if not ok:
            self.failed.append(what)
            print(f"  FAIL {what}", flush=True)


def query(store: Path, sql: str) -> list[tuple]:
    with Store(store, read_only=True) as st:
        return st.query(sql)[1]


def straight(args: list[str], store: Path) -> tuple[float, float]:
    """Run ``args`` to completion as a subprocess: (seconds until it created ``store``,
    its start-up, mostly torch's import; its wall time)."""
    t0 = time.perf_counter()
    proc = spawn(args)
    startup = None
    while proc.poll() is None:
        if startup is None and store.exists():
            startup = time.perf_counter() - t0
        time.sleep(0.02)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the straight run {' '.join(args)} exited {proc.returncode}: {err[-2000:]}")
    wall = time.perf_counter() - t0
    return startup or 0.0, wall


def spawn(args: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "estbench", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def with_threads(args: list[str]) -> list[str]:
    """Pin one torch thread where the CLI has --threads (values differ across thread counts)."""
    import typer.main

    params = {p.name for p in typer.main.get_command(app).commands[args[0]].params}
    return [*args, "--threads", "1"] if "threads" in params else args


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


# ---- one kill ------------------------------------------------------------------------
def kill_at_random(args: list[str], window: tuple, sig: int, rng: random.Random) -> tuple[str, int, float]:
    """Start ``args``, send ``sig`` after a random delay in ``window`` (seconds from, to);
    (outcome, exit code, delay or, when it finished first, its wall time)."""
    delay = rng.uniform(*window)
    t0 = time.perf_counter()
    proc = spawn(args)
    try:
        proc.communicate(timeout=delay)
        return "finished first", proc.returncode, time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGTERM and proc.returncode not in (143, -signal.SIGTERM):
        print(err[-1500:], file=sys.stderr)
    return "killed", proc.returncode, delay


def check_runs_after_kill(store: Path, sig: int, code: int, check: Checks, tag: str) -> None:
    if not store.exists():
        return
    try:
        runs = query(store, RUN_ROWS)
    except Exception as exc:  # a store killed while it was created: the rerun recovers it
        check(sig == signal.SIGKILL, f"{tag}: store unreadable after SIGTERM ({exc})")
        return
    for run_id, kind, status, n, _, _, rows in runs:
        check(n == rows, f"{tag}: run {run_id} ({kind}, {status}) says n_written {n}, left {rows}")
        if sig == signal.SIGTERM:  # 143, or -15 outside the command (start-up, teardown)
            check(status != "running", f"{tag}: run {run_id} still running after SIGTERM")


def _left(store: Path, outcome: str) -> str:
    """Where the kill landed, told by what the killed process left."""
    if outcome != "killed":
        return "the run was complete"
    if not store.exists():
        return "before the store existed"
    try:
        runs = query(store, RUN_ROWS)
    except Exception:
        return "store unreadable until a writer opens it"
    if not runs:
        return "before any run row"
    written = sum(r[-1] for r in runs)
    return "before the first chunk / epoch" if not written else "mid-run, rows written"


def check_runs_after_rerun(store: Path, check: Checks, tag: str) -> Counter:
    statuses: Counter = Counter()
    for run_id, kind, status, n, pid, vote, rows in query(store, RUN_ROWS):
        statuses[status] += 1
        check(status in ("done", "interrupted"), f"{tag}: run {run_id} ({kind}) left {status}")
        if not vote or pid == os.getpid():  # a rerun's vote replaces the earlier vote rows
            check(n == rows, f"{tag}: run {run_id} ({kind}, {status}) says n_written {n}, left {rows}")
        if pid == os.getpid():
            check(status == "done", f"{tag}: the rerun's run {run_id} ({kind}) is {status}")
    return statuses


# ---- score ---------------------------------------------------------------------------
def scores_of(store: Path) -> dict[tuple, tuple]:
    rows = query(store, f"SELECT {KEY}, value, status FROM scores WHERE estimator <> 'vote'")
    return {r[:7]: r[7:] for r in rows}


def score_case(work: Path, kills: int, sigterm_every: int, rng: random.Random, check: Checks) -> dict:
    args = with_threads(SCORE)
    ref = work / "score_ref.duckdb"
    window = straight([*args, "--store", str(ref)], ref)
    want = scores_of(ref)
    want_vote = query(ref, f"SELECT {KEY}, value FROM scores WHERE estimator = 'vote' ORDER BY ALL")
    return run_kills("score", work, args, window, kills, sigterm_every, rng, check, _score_rerun(want, want_vote))


def _score_rerun(want: dict, want_vote: list):
    def rerun(store: Path, args: list[str], check: Checks, tag: str) -> None:
        r = invoke([*args, "--store", str(store)])
        check(r.exit_code == 0, f"{tag}: rerun exited {r.exit_code}: {r.output[-300:]}")
        total, keys = query(store, f"SELECT count(*), count(DISTINCT ({KEY})) FROM scores")[0]
        check(total == keys, f"{tag}: {total} rows for {keys} keys")
        got = scores_of(store)
        check(
            got == want, f"{tag}: {sum(got.get(k) != v for k, v in want.items())} scores differ from the straight run"
        )
        vote = query(store, f"SELECT {KEY}, value FROM scores WHERE estimator = 'vote' ORDER BY ALL")
        check(vote == want_vote, f"{tag}: vote differs from the straight run")

    return rerun


# ---- train ---------------------------------------------------------------------------
def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    last = max(run_dir.glob("epoch_*.pt"))
    return torch.load(last, map_location="cpu", weights_only=True)["model"]


def train_case(work: Path, kills: int, sigterm_every: int, rng: random.Random, check: Checks) -> dict:
    data = write_fake_cifar(work / "data", n_per_batch=80)
    args = with_threads([*TRAIN, "--data-dir", str(data)])
    ref = work / "train_ref"
    ref.mkdir()
    window = straight([*args, "--checkpoint-every", "1", "--store", str(ref / "s.duckdb")], ref / "s.duckdb")
    want_epochs = query(ref / "s.duckdb", "SELECT epoch, train_loss, lr, steps FROM train_epochs ORDER BY epoch")
    want_weights = final_weights(ref / "estbench_runs" / "toy" / "f")

    def rerun(store: Path, run_args: list[str], check: Checks, tag: str) -> None:
        r = invoke([*run_args, "--store", str(store), "--resume"])  # what a user runs after a kill
        if r.exit_code == 2 and "to resume" in r.output:  # killed before the run was recorded
            r = invoke([*run_args, "--store", str(store)])
        check(r.exit_code == 0, f"{tag}: rerun exited {r.exit_code}: {r.output[-300:]}")
        got = query(store, "SELECT epoch, train_loss, lr, steps FROM train_epochs ORDER BY epoch")
        check(got == want_epochs, f"{tag}: train_epochs differ from the straight run: {got}")
        run_dir = store.parent / "estbench_runs" / "toy" / "f"
        files = sorted(int(p.stem.split("_")[1]) for p in run_dir.glob("epoch_*.pt"))
        rows = [r[0] for r in query(store, "SELECT epoch FROM checkpoints ORDER BY epoch")]
        check(files == rows, f"{tag}: checkpoint files {files}, rows {rows}")
        weights = final_weights(run_dir)
        same = weights.keys() == want_weights.keys() and all(torch.equal(weights[k], want_weights[k]) for k in weights)
        check(same, f"{tag}: final weights differ from the straight run")

    def args_for(i: int) -> list[str]:  # every other kill: epochs without a checkpoint
        return [*args, "--checkpoint-every", str(rng.choice((1, 2)))]

    return run_kills("train", work, args_for, window, kills, sigterm_every, rng, check, rerun)


# ---- the loop ------------------------------------------------------------------------
def run_kills(name, work, args, straight_run, kills, sigterm_every, rng, check, rerun) -> dict:
    """``straight_run``: (start-up, wall time) of the straight run; kills are drawn from
    0.8 x its start-up (a few land before the store exists) to its end."""
    startup, wall = straight_run
    window = (0.8 * startup, wall)
    outcomes: Counter = Counter()
    statuses: Counter = Counter()
    n_killed, attempt, start = 0, 0, time.perf_counter()
    while n_killed < kills and attempt < 3 * kills:
        attempt += 1
        folder = work / f"{name}_{attempt:03d}"
        folder.mkdir()
        store = folder / "s.duckdb"
        run_args = args(attempt) if callable(args) else args
        sig = signal.SIGTERM if sigterm_every and (n_killed + 1) % sigterm_every == 0 else signal.SIGKILL
        outcome, code, delay = kill_at_random([*run_args, "--store", str(store)], window, sig, rng)
        at = f"at {delay:.1f}s" if outcome == "killed" else f"due; it took {delay:.1f}s"
        tag = f"{name} #{attempt} ({signal.Signals(sig).name} {at})"
        if outcome == "finished first":  # the straight run was slower (a busy machine): shrink
            window = (min(window[0], 0.8 * delay), min(window[1], delay))
        else:
            n_killed += 1
            if sig == signal.SIGTERM:
                check(code in (143, -signal.SIGTERM), f"{tag}: exit {code}, not 143")
            check_runs_after_kill(store, sig, code, check, tag)
        where = "outside the command (start-up / exit)" if code == -signal.SIGTERM else _left(store, outcome)
        outcomes[f"{signal.Signals(sig).name} {outcome} (exit {code}) {where}"] += 1
        before = len(check.failed)
        rerun(store, run_args, check, tag)
        statuses += check_runs_after_rerun(store, check, tag)
        running = query(store, "SELECT count(*) FROM runs WHERE status = 'running'")[0][0]
        check(running == 0, f"{tag}: {running} runs left running after the rerun")
        print(f"{tag}: {outcome} (exit {code}); rerun {'ok' if len(check.failed) == before else 'FAILED'}")
    return {
        "kills": n_killed, "attempts": attempt, "window_s": window, "seconds": time.perf_counter() - start,
        "outcomes": outcomes, "run statuses after reruns": statuses,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20, help="kills per command")
    ap.add_argument("--sigterm-every", type=int, default=4, help="every N-th kill is a SIGTERM (0: never)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the stores here (default: a temp dir)")
    opts = ap.parse_args(argv)
    torch.set_num_threads(1)
    rng = random.Random(opts.seed)
    check = Checks()
    with tempfile.TemporaryDirectory(prefix="estbench-faults-") as tmp:
        work = opts.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = {}
        for name, case in (("score", score_case), ("train", train_case)):
            (work / name).mkdir()
            results[name] = case(work / name, opts.kills, opts.sigterm_every, rng, check)
    print()
    for name, res in results.items():
        print(
            f"{name}: {res['kills']} kills in {res['attempts']} attempts ({res['seconds']:.0f}s; "
            f"kills drawn from {res['window_s'][0]:.1f}s to {res['window_s'][1]:.1f}s into a run)"
        )
        for outcome, n in sorted(res["outcomes"].items()):
            print(f"  {n:3d} x {outcome}")
        print(f"  run rows after the reruns: {dict(res['run statuses after reruns'])}")
    for failure in check.failed:
        print(f"FAIL {failure}")
    print(f"fault injection: {'ok' if not check.failed else f'{len(check.failed)} checks failed'}")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
