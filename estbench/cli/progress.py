"""The one progress reporter of the CLI, used by ``score`` and ``train``.

On a terminal: a rich bar per task on stderr (done/total, rate or loss, ETA). When
stderr is not a terminal (a run in the background, a log file): plain lines instead,
one every ``log_every`` seconds and one when a task completes for scoring, one per
epoch for training."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    log_every = 30.0
    rate_every = 0.25  # seconds between rate updates of a scoring task

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
        self.clock = time.monotonic
        self.last_log = self.clock()
        self._last_rate: dict[str, float] = {}
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
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
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    # ---- scoring: progress(name, advance, total), archs per second ----------------
    def __call__(self, name: str, advance: int, total: int) -> None:
        info = self.update(name, advance, total=total)
        now = self.clock()
        done = info.completed >= total
        # rich's speed is a sum over its samples: computed a few times a second, not per arch
        if not (done or now - self._last_rate.get(name, -1.0) >= self.rate_every):
            return
        self._last_rate[name] = now
        speed = info.speed
        self.update(name, info=f"{speed:,.2f} archs/s" if speed else "")
        if self.plain and (now - self.last_log >= self.log_every or done):
            self.last_log = now
            eta = f", ETA {info.time_remaining:.0f}s" if info.time_remaining is not None else ""
            rate = f", {speed:.2f}/s" if speed else ""
            self.line(f"{name}: {info.completed:.0f}/{total}{rate}{eta}")

    # ---- training: epoch / step / loss / lr ---------------------------------------
    def training(self, epochs: int, lr: float) -> Progress:
        """Set up ``on_step`` / ``on_epoch`` for a run of ``epochs`` starting at ``lr``."""
        self.epochs, self.lr, self.loss = epochs, lr, float("nan")
        return self

    def _train_fields(self, epoch: int) -> dict[str, Any]:
        return {"description": f"epoch {epoch}/{self.epochs}", "info": f"loss {self.loss:.4f} lr {self.lr:.4g}"}

    def on_step(self, epoch: int, step: int, loss: float) -> None:
        self.loss = loss
        self.update("train", 1, **self._train_fields(epoch))

    def on_epoch(self, stats) -> None:
        self.lr = stats.lr
        if "train" in self.tasks:
            total = self.epochs * stats.steps
            self.update("train", total=total, completed=stats.epoch * stats.steps, **self._train_fields(stats.epoch))
        self.line(
            f"epoch {stats.epoch}/{self.epochs}: loss {stats.train_loss:.4f} lr {stats.lr:.4g} ({stats.seconds:.1f}s)"
        )
