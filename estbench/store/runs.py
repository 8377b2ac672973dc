"""Run bookkeeping in the store: the ``runs`` table (every score and train run, with
its status), and a training run's ``train_epochs`` and ``checkpoints``.

A run row tells the truth while its run goes on and after it died: ``n_written`` is
updated in the same transaction as every chunk (or epoch) the run writes, and a
``running`` row of this host whose process is gone (kill -9, power loss) is marked
``interrupted`` by the next writer that opens the store (``mark_stale_runs``). A
``running`` row with a live process is also the lock of a training run: a second
``train`` of the same name is refused while it lives."""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Sequence

from estbench import __version__

# rows a finished or stale run has written: score rows it inserted, epochs a training run has
_N_WRITTEN = (
    "CASE WHEN kind = 'train' THEN (SELECT coalesce(max(e.epoch), 0) FROM train_epochs e "
    "WHERE e.space = runs.space AND e.run_name = runs.name) "
    "ELSE (SELECT count(*) FROM scores s WHERE s.run_id = runs.run_id) END"
)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie counts as gone)."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    try:  # Linux: a killed child its parent has not reaped yet is a zombie, not a run
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class RunsMixin:
    def start_run(
        self, kind: str, space: str, name: str, config: dict, threads: int | None = None, run_id: str | None = None
    ) -> str:
        """A new ``running`` row for this process (its pid, host and torch thread count);
        ``run_id`` (default: a new one, see ``new_run_id``) is returned."""
        run_id = run_id or new_run_id()
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

    def finish_run(self, run_id: str, status: str) -> None:
        """Close a run with ``status`` and what it left in the store (score rows carrying
        its run id; a training run's epochs). Only a row this process runs is touched, so
        a caller interrupted before (or while) it recorded the run can call it safely."""
        self._write(
            lambda con: con.execute(
                f"UPDATE runs SET status = ?, finished_at = current_timestamp, n_written = {_N_WRITTEN} "
                "WHERE run_id = ? AND status = 'running' AND host = ? AND pid = ?",
                [status, run_id, socket.gethostname(), os.getpid()],
            ),
            "finishing a run",
        )

    def upsert_run_scores(self, run_id: str, rows: Sequence) -> int:
        """Insert score rows (existing keys left untouched) and add what was inserted to
        the run's ``n_written``, in one transaction; returns the rows inserted."""
        from estbench.store import means
        from estbench.store.store import score_columns

        if not rows:
            return 0
        data = score_columns(rows)

        def work(con) -> int:
            inserted = means.write_scores(con, data, self._keeps_means) or 0
            con.execute("UPDATE runs SET n_written = n_written + ? WHERE run_id = ?", [inserted, run_id])
            return inserted

        return self._write(work, "writing scores")

    def mark_stale_runs(self) -> list[str]:
        """Mark every ``running`` row of this host whose process is gone as ``interrupted``
        (with the rows it left); returns their run ids. Rows of other hosts, and rows
        without a pid (from an estbench that did not record it), are left alone."""
        host = socket.gethostname()

        def work(con) -> list[str]:
            rows = con.execute(
                "SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ? AND pid IS NOT NULL", [host]
            ).fetchall()
            stale = [run_id for run_id, pid in rows if not pid_alive(pid)]
            for run_id in stale:
                con.execute(
                    f"UPDATE runs SET status = 'interrupted', n_written = {_N_WRITTEN} WHERE run_id = ?", [run_id]
                )
            return stale

        if self.read_only or not self._rows("SELECT 1 FROM runs WHERE status = 'running' LIMIT 1"):
            return []
        return self._write(work, "marking stale runs")

    def reopen_run(
        self,
        run_id: str,
        config: dict,
        space: str,
        name: str,
        stats: Sequence[dict],
        checkpoints: dict[int, str],
        threads: int | None = None,
    ) -> None:
        """Mark a resumed training run as running again in this process, with its
        (resumable) new config, and make its epochs those of the checkpoint it resumes
        from, in one transaction: rows of epochs after that checkpoint (a killed
        attempt's, trained again now) go; epochs and checkpoints the checkpoint holds
        but the store missed (a kill between the two writes) are added."""
        last = max((s["epoch"] for s in stats), default=0)

        def work(con) -> None:
            con.execute(
                "UPDATE runs SET status = 'running', config = ?, finished_at = NULL, host = ?, pid = ?, "
                "threads = coalesce(?, threads), n_written = ? WHERE run_id = ?",
                [json.dumps(config, sort_keys=True), socket.gethostname(), os.getpid(), threads, last, run_id],
            )
            for table, col in (("train_epochs", "run_name"), ("checkpoints", "run_name")):
                con.execute(f"DELETE FROM {table} WHERE space = ? AND {col} = ? AND epoch > ?", [space, name, last])
            for s in stats:
                con.execute(
                    "INSERT INTO train_epochs VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [space, name, s["epoch"], s["train_loss"], s["lr"], s["seconds"], s["steps"]],
                )
            for epoch, path in checkpoints.items():
                if epoch <= last:
                    con.execute(
                        "INSERT INTO checkpoints (space, run_name, epoch, path) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT DO NOTHING",
                        [space, name, epoch, path],
                    )

        self._write(work, "reopening a run")

    def forget_train_run(self, run_id: str, space: str, name: str) -> None:
        """Delete a training run that left nothing (no epoch, no checkpoint), so that its
        name can start afresh with any config."""

        def work(con) -> None:
            con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
            for table in ("train_epochs", "checkpoints"):
                con.execute(f"DELETE FROM {table} WHERE space = ? AND run_name = ?", [space, name])

        self._write(work, "replacing an empty run")

    def train_run(self, space: str, name: str) -> dict | None:
        """The latest training run called ``name``: run_id, config (dict), status, host,
        pid, epochs (the number of its recorded epochs) and threads."""
        rows = self._rows(
            "SELECT run_id, config, status, host, pid, (SELECT count(*) FROM train_epochs e "
            "WHERE e.space = runs.space AND e.run_name = runs.name), threads FROM runs "
            "WHERE kind = 'train' AND space = ? AND name = ? ORDER BY started_at DESC LIMIT 1",
            [space, name],
        )
        if not rows:
            return None
        run_id, config, status, host, pid, epochs, threads = rows[0]
        return {
            "run_id": run_id, "config": json.loads(config), "status": status, "host": host, "pid": pid,
            "epochs": epochs, "threads": threads,
        }  # fmt: skip

    def train_run_names(self, space: str) -> list[str]:
        sql = "SELECT DISTINCT name FROM runs WHERE kind = 'train' AND space = ? ORDER BY 1"
        return [r[0] for r in self._rows(sql, [space])]

    def score_threads(
        self, space: str, estimators: Sequence[str] | None = None, config_hashes: Sequence[str] | None = None
    ) -> dict[tuple[str, str, int], set[int | None]]:
        """(estimator, config_hash, epoch) -> the thread counts of the runs that wrote its
        score rows (None: a run that did not record it); filtered by estimators / configs."""
        rows = self._rows(
            "SELECT DISTINCT s.estimator, s.config_hash, s.epoch, r.threads FROM (SELECT DISTINCT estimator, "
            "config_hash, epoch, run_id FROM scores WHERE space = $space AND (len($est) = 0 OR "
            "list_contains($est, estimator)) AND (len($hashes) = 0 OR list_contains($hashes, config_hash))) s "
            "LEFT JOIN runs r USING (run_id)",
            {"space": space, "est": list(estimators or []), "hashes": list(config_hashes or [])},
            "thread counts of scores",
        )
        out: dict[tuple[str, str, int], set[int | None]] = {}
        for est, chash, epoch, threads in rows:
            out.setdefault((est, chash, epoch), set()).add(threads)
        return out

    def put_train_epoch(self, space: str, run: str, stats, checkpoint: str | None, run_id: str | None = None) -> None:
        """One finished epoch (``EpochStats``) and, if it wrote one, its checkpoint path;
        the run row ``run_id`` counts it in the same transaction."""

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
            if run_id is not None:
                con.execute("UPDATE runs SET n_written = ? WHERE run_id = ?", [stats.epoch, run_id])

        self._write(work, "recording an epoch")
