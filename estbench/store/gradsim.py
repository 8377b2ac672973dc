"""Store access of the ``gradsim`` probe table (schema migration 6): the per-layer
gradient cosine of architecture pairs at a supernet checkpoint (``score --gradsim``).

Rows of one pair are written in one transaction with the rest of their chunk, so a pair
is in the store with all its layers or not at all: the pairs present are the pairs done."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from estbench.store.sql import load_sql

GRADSIM_COLUMNS = ("space", "run_name", "epoch", "config_hash", "pair", "arch_a", "arch_b", "layer", "cosine")
_TYPES = ("VARCHAR", "VARCHAR", "INTEGER", "VARCHAR", "INTEGER", "INTEGER", "INTEGER", "VARCHAR", "DOUBLE")


class GradsimRow(NamedTuple):
    space: str
    run_name: str
    epoch: int
    config_hash: str
    pair: int
    arch_a: int
    arch_b: int
    layer: str
    cosine: float | None  # None: no parameter both use, or a zero / non-finite gradient


class GradsimMixin:
    def gradsim_done_pairs(self, space: str, run: str, epoch: int, config_hash: str) -> set[int]:
        """The pair indices of one (run, checkpoint, config) already in the store."""
        sql = "SELECT DISTINCT pair FROM gradsim WHERE space = ? AND run_name = ? AND epoch = ? AND config_hash = ?"
        return {r[0] for r in self._rows(sql, [space, run, int(epoch), config_hash])}

    def put_gradsim(self, run_id: str, rows: Sequence[GradsimRow]) -> int:
        """Insert rows (existing keys left untouched) and add what was inserted to the run's
        ``n_written``, in one transaction; returns the rows inserted."""
        if not rows:
            return 0
        columns = [list(col) for col in zip(*rows)]
        unnest = ", ".join(f"unnest(${i + 1}::{t}[]) AS {c}" for i, (c, t) in enumerate(zip(GRADSIM_COLUMNS, _TYPES)))
        sql = (
            f"INSERT INTO gradsim ({', '.join(GRADSIM_COLUMNS)}) SELECT * FROM (SELECT {unnest}) ON CONFLICT DO NOTHING"
        )

        def work(con) -> int:
            inserted = con.execute(sql, columns).fetchone()[0] or 0
            con.execute("UPDATE runs SET n_written = n_written + ? WHERE run_id = ?", [inserted, run_id])
            return inserted

        return self._write(work, "writing gradient similarities")

    def set_run_written(self, run_id: str, n_written: int) -> None:
        """Set a finished run's ``n_written``: ``finish_run`` counts score rows, which a
        gradsim run does not write, so the runner puts its gradsim row count back."""
        self._write(
            lambda con: con.execute("UPDATE runs SET n_written = ? WHERE run_id = ?", [int(n_written), run_id]),
            "recording a run's rows",
        )

    def gradsim_rows(
        self, space: str, runs: Sequence[str] | None = None, epochs: Sequence[int] | None = None
    ) -> dict[str, np.ndarray]:
        """Columns run_name, config_hash, label (the config's label), epoch, pair, arch_a,
        arch_b, layer, cosine (NaN for NULL) of the stored rows, filtered by runs / epochs."""
        params = {
            "space": space,
            "runs": list(runs) if runs else None,
            "epochs": [int(e) for e in epochs] if epochs else None,
        }
        return self._numpy(load_sql("gradsim"), params, "reading gradient similarities")

    def gradsim_epochs(self, space: str) -> dict[str, list[int]]:
        """Run name -> the checkpoint epochs with gradsim rows, for one space."""
        rows = self._rows("SELECT DISTINCT run_name, epoch FROM gradsim WHERE space = ? ORDER BY 1, 2", [space])
        out: dict[str, list[int]] = {}
        for run, epoch in rows:
            out.setdefault(run, []).append(epoch)
        return out
