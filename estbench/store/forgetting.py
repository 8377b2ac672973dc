"""Store access of the ``forgetting`` probe table (schema migration 6): one row per probe
of ``estbench train --probe-forgetting N`` (space, run_name, epoch, arch_id, step,
acc_after_step, acc_after_epoch; epoch 1-based, step 0-based within the epoch)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

_COLUMNS = ("space", "run_name", "epoch", "arch_id", "step", "acc_after_step", "acc_after_epoch")


class ForgettingMixin:
    def put_forgetting(self, space: str, run: str, epoch: int, rows: Sequence[tuple[int, int, float, float]]) -> None:
        """Make ``rows`` (arch_id, step, acc_after_step, acc_after_epoch) the probes of
        ``epoch`` of run ``run``, in one transaction: rows an earlier attempt at the same
        epoch left (a killed run trains it again) are replaced, not mixed in."""
        from estbench.store.store import _insert_columns

        data = {
            "space": [space] * len(rows), "run_name": [run] * len(rows), "epoch": [int(epoch)] * len(rows),
            "arch_id": [int(r[0]) for r in rows], "step": [int(r[1]) for r in rows],
            "acc_after_step": [float(r[2]) for r in rows], "acc_after_epoch": [float(r[3]) for r in rows],
        }  # fmt: skip

        def work(con) -> None:
            con.execute(
                "DELETE FROM forgetting WHERE space = ? AND run_name = ? AND epoch = ?", [space, run, int(epoch)]
            )
            _insert_columns(con, "forgetting", _COLUMNS, data)

        self._write(work, "recording forgetting probes")

    def drop_forgetting_after(self, space: str, run: str, epoch: int) -> None:
        """Delete the probes of run ``run`` after ``epoch`` (a resumed run trains those
        epochs again; 0 = all of them, for a run that starts afresh)."""
        self._write(
            lambda con: con.execute(
                "DELETE FROM forgetting WHERE space = ? AND run_name = ? AND epoch > ?", [space, run, int(epoch)]
            ),
            "dropping forgetting probes",
        )

    def forgetting_epochs(self, space: str, run: str) -> list[int]:
        """The epochs of run ``run`` that have probe rows, ascending."""
        sql = "SELECT DISTINCT epoch FROM forgetting WHERE space = ? AND run_name = ? ORDER BY 1"
        return [r[0] for r in self._rows(sql, [space, run], "reading forgetting epochs")]

    def forgetting_rows(self, space: str, run: str, epochs: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Columns epoch, step, arch_id, arch_str (None where the archs table lacks it),
        acc_after_step, acc_after_epoch of the probes of ``run`` (all epochs, or
        ``epochs``), ordered by epoch and step."""
        sql = (
            "SELECT f.epoch, f.step, f.arch_id, a.arch_str, f.acc_after_step, f.acc_after_epoch "
            "FROM forgetting f LEFT JOIN archs a ON a.space = f.space AND a.arch_id = f.arch_id "
            "WHERE f.space = $space AND f.run_name = $run AND (len($epochs) = 0 OR list_contains($epochs, f.epoch)) "
            "ORDER BY f.epoch, f.step, f.arch_id"
        )
        params = {"space": space, "run": run, "epochs": [int(e) for e in epochs or []]}
        return self._numpy(sql, params, "reading forgetting probes")
