"""Run bookkeeping in the store: the ``runs`` table (every score and train run, with
its status), and a training run's ``train_epochs`` and ``checkpoints``."""

from __future__ import annotations

import json
import os
import socket
import uuid

from estbench import __version__


class RunsMixin:
    def start_run(self, kind: str, space: str, name: str, config: dict, threads: int | None = None) -> str:
        """A new ``running`` row for this process (its pid, host and torch thread count)."""
        run_id = uuid.uuid4().hex[:12]
        self._write(
            lambda con: con.execute(
                "INSERT INTO runs (run_id, kind, space, name, config, status, host, estbench_version, threads, pid) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                [
                    run_id,
                    kind,
                    space,
                    name,
                    json.dumps(config, sort_keys=True),
                    socket.gethostname(),
                    __version__,
                    threads,
                    os.getpid(),
                ],
            ),
            "recording a run",
        )
        return run_id

    def finish_run(self, run_id: str, status: str, n_written: int) -> None:
        self._write(
            lambda con: con.execute(
                "UPDATE runs SET status = ?, finished_at = current_timestamp, n_written = ? WHERE run_id = ?",
                [status, n_written, run_id],
            ),
            "finishing a run",
        )

    def reopen_run(self, run_id: str, config: dict) -> None:
        """Mark a resumed training run as running again with its (resumable) new config."""
        self._write(
            lambda con: con.execute(
                "UPDATE runs SET status = 'running', config = ?, finished_at = NULL WHERE run_id = ?",
                [json.dumps(config, sort_keys=True), run_id],
            ),
            "reopening a run",
        )

    def train_run(self, space: str, name: str) -> dict | None:
        """The latest training run called ``name``: run_id, config (dict), status."""
        rows = self._rows(
            "SELECT run_id, config, status FROM runs WHERE kind = 'train' AND space = ? AND name = ? "
            "ORDER BY started_at DESC LIMIT 1",
            [space, name],
        )
        if not rows:
            return None
        return {"run_id": rows[0][0], "config": json.loads(rows[0][1]), "status": rows[0][2]}

    def train_run_names(self, space: str) -> list[str]:
        sql = "SELECT DISTINCT name FROM runs WHERE kind = 'train' AND space = ? ORDER BY 1"
        return [r[0] for r in self._rows(sql, [space])]

    def put_train_epoch(self, space: str, run: str, stats, checkpoint: str | None) -> None:
        """One finished epoch (``EpochStats``) and, if it wrote one, its checkpoint path."""

        def work(con) -> None:
            con.execute(
                "INSERT INTO train_epochs VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [space, run, stats.epoch, stats.train_loss, stats.lr, stats.seconds, stats.steps],
            )
            if checkpoint is not None:
                con.execute(
                    "INSERT INTO checkpoints (space, run_name, epoch, path) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [space, run, stats.epoch, checkpoint],
                )

        self._write(work, "recording an epoch")
