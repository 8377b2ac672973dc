"""The one progress reporter of the CLI, used by ``score`` and ``train``.

On a terminal: a rich bar per task on stderr (done/total, rate or loss, ETA). When
stderr is not a terminal (a run in the background, a log file): plain lines instead,
a line when a task completes, and before that at least one every ``log_every``
seconds, even while one architecture (or training step) takes longer than that: a
heartbeat thread repeats the last state. (No line when a task starts: a command that
fails while it sets up prints its error alone.) Training prints a line every
``log_every`` seconds of steps (epoch, step, loss, lr) and one per epoch."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any


class Progress:
    log_every = 30.0
    rate_every = 0.25  # seconds between rate updates of a scoring task

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock

    def __enter__(self) -> Progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        console = Console(stderr=True)
        self.plain = not console.is_terminal
        self.bar = Bar(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
            console=console, disable=self.plain,
        )  # fmt: skip
        self.tasks: dict[str, Any] = {}
        self.last_log = self.clock()
        self.state = ""  # the last plain line about work in progress, for the heartbeat
        self._last_rate: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.bar.start()
        if self.plain:
            threading.Thread(target=self._heartbeat, name="estbench-progress", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.bar.stop()

    def update(self, task: str, advance: int = 0, *, total: float | None = None, **fields: Any):
        """Advance ``task`` (created on first use) and return rich's view of it. ``fields``:
        ``description`` (the left column, default the task name), ``info``, ``completed``."""
        if task not in self.tasks:
            self.tasks[task] = self.bar.add_task(fields.pop("description", task), total=total, info="")
        tid = self.tasks[task]
        self.bar.update(tid, advance=advance or None, total=total, **fields)
        return self.bar.tasks[tid]

    def line(self, text: str) -> None:
        """A plain line on stderr, only when there is no bar."""
        if self.plain:
            with self._lock:
                self.last_log = self.clock()
                sys.stderr.write(text + "\n")
                sys.stderr.flush()

    def warn(self, text: str) -> None:
        """One line on stderr, with or without a bar (above it on a terminal)."""
        if self.plain:
            self.line(text)
        else:
            self.bar.console.print(text, markup=False, highlight=False)

    def _heartbeat(self) -> None:
        """Repeat the last state when no line came for ``log_every`` seconds (plain only)."""
        while not self._stop.wait(min(self.log_every, 5.0)):
            since = self.clock() - self.last_log
            if self.state and since >= self.log_every:
                self.line(f"{self.state} (still working, {since:.0f}s since the last line)")

    # ---- scoring: progress(name, advance, total), archs per second ----------------
    def __call__(self, name: str, advance: int, total: int) -> None:
        new = name not in self.tasks
        info = self.update(name, advance, total=total)
        now = self.clock()
        done = info.completed >= total
        # rich's speed is a sum over its samples: computed a few times a second, not per arch
        if not (new or done or now - self._last_rate.get(name, -1.0) >= self.rate_every):
            return
        self._last_rate[name] = now
        speed = info.speed
        self.update(name, info=f"{speed:,.2f} archs/s" if speed else "")
        eta = f", ETA {info.time_remaining:.0f}s" if info.time_remaining is not None else ""
        rate = f", {speed:.2f}/s" if speed else ""
        self.state = "" if done else f"{name}: {info.completed:.0f}/{total}{rate}{eta}"
        if self.plain and (done or now - self.last_log >= self.log_every):
            self.line(f"{name}: {info.completed:.0f}/{total}{rate}{eta}")

    # ---- training: epoch / step / loss / lr ---------------------------------------
    def training(self, epochs: int, lr: float) -> Progress:
        """Set up ``on_step`` / ``on_epoch`` for a run of ``epochs`` starting at ``lr``."""
        self.epochs, self.lr, self.loss = epochs, lr, float("nan")
        self.steps: int | None = None  # steps per epoch, known after the first epoch
        return self

    def _train_fields(self, epoch: int) -> dict[str, Any]:
        return {"description": f"epoch {epoch}/{self.epochs}", "info": f"loss {self.loss:.4f} lr {self.lr:.4g}"}

    def on_step(self, epoch: int, step: int, loss: float) -> None:
        self.loss = loss
        self.update("train", 1, **self._train_fields(epoch))
        of = f"/{self.steps}" if self.steps else ""
        self.state = f"epoch {epoch}/{self.epochs}, step {step + 1}{of}: loss {loss:.4f} lr {self.lr:.4g}"
        if self.plain and self.clock() - self.last_log >= self.log_every:
            self.line(self.state)

    def on_epoch(self, stats) -> None:
        self.lr, self.steps, self.state = stats.lr, stats.steps, ""
        if "train" in self.tasks:
            total = self.epochs * stats.steps
            self.update("train", total=total, completed=stats.epoch * stats.steps, **self._train_fields(stats.epoch))
        self.line(
            f"epoch {stats.epoch}/{self.epochs}: loss {stats.train_loss:.4f} lr {stats.lr:.4g} ({stats.seconds:.1f}s)"
        )

    # ---- several runs training at once (train --executor ray) --------------------
    def on_run_epoch(self, run: str, stats, epochs: int) -> None:
        """A bar per run over its epochs; a plain line per epoch."""
        info = f"loss {stats.train_loss:.4f} lr {stats.lr:.4g}"
        self.update(run, total=epochs, completed=stats.epoch, info=info)
        self.line(f"{run}: epoch {stats.epoch}/{epochs}: {info} ({stats.seconds:.1f}s)")
