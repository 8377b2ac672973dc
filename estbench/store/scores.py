"""Scores in the store: chunked idempotent upserts, the keys already computed, and the
analysis queries over them (criteria point sets, group statistics, vote ranks)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from estbench.store import means
from estbench.store.rows import ScoreKey, ScoreRow
from estbench.store.sql import load_sql


class ScoresMixin:
    def upsert_scores(self, rows: Sequence[ScoreRow]) -> int:
        """Insert score rows in one transaction; rows whose key exists are left
        untouched. Returns the number of rows offered."""
        from estbench.store.store import score_columns

        if not rows:
            return 0
        data = score_columns(rows)
        self._write(lambda con: means.write_scores(con, data, self._keeps_means), "writing scores")
        return len(rows)

    def replace_scores(self, space: str, estimator: str, config_hash: str, rows: Sequence[ScoreRow]) -> None:
        """Replace every row of one (estimator, config) by ``rows`` in one transaction (a
        derived estimator such as vote depends on the whole population)."""
        from estbench.store.store import score_columns

        data = score_columns(rows)

        def work(con) -> None:
            con.execute(
                "DELETE FROM scores WHERE space = ? AND estimator = ? AND config_hash = ?",
                [space, estimator, config_hash],
            )
            if self._keeps_means:
                means.drop_group(con, space, estimator, config_hash)
            means.write_scores(con, data, self._keeps_means)

        self._write(work, "replacing scores")

    def done_arch_ids(self, key: ScoreKey) -> set[int]:
        """Arch ids that already have all ``key.n_batches`` batches of ``key``."""
        rows = self._rows(
            "SELECT arch_id FROM scores WHERE space = ? AND estimator = ? AND config_hash = ? AND epoch = ? "
            "AND seed = ? AND batch < ? GROUP BY arch_id HAVING count(*) = ?",
            [key.space, key.estimator, key.config_hash, key.epoch, key.seed, key.n_batches, key.n_batches],
        )
        return {r[0] for r in rows}

    def scored_estimators(self, space: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT estimator FROM scores WHERE space = ? ORDER BY 1", [space])]

    def criteria_points(self, params: dict) -> dict[str, np.ndarray]:
        """Columns of the criteria point sets (``sql/points.sql``) as numpy arrays."""

        def work(con) -> dict[str, np.ndarray]:
            cur = con.execute(load_sql("points"), params)
            data = cur.fetchnumpy()
            return {d[0]: np.asarray(data[d[0]]) for d in cur.description}

        return self._run(work, "building criteria points")

    def group_stats(self, params: dict) -> dict[tuple, tuple]:
        """(estimator, config, epoch) -> (failed, nonfinite, s/arch, label, config JSON)."""
        rows = self._rows(load_sql("group_stats"), params, "group statistics")
        return {(r[0], r[1], r[2]): r[3:] for r in rows}

    def vote_ranks(self, space: str, experts: list[str]) -> list[tuple[int, int, float]]:
        """(arch_id, seed, vote_borda) over the archs every expert ('estimator:config_hash')
        scored (``sql/vote_borda.sql`` over ``sql/vote_experts.sql``)."""
        params = {"space": space, "experts": experts, "n_experts": len(experts)}
        sql = load_sql("vote_borda").replace("\nVOTE_EXPERTS\n", "\n" + load_sql("vote_experts") + "\n")
        return self._rows(sql, params, "computing vote_borda")

    def aggregate_values(self, space: str, experts: list[str]) -> list[tuple[str, str, int, int, float | None]]:
        """(estimator, kind, seed, arch_id, oriented mean value or None) of the expert
        configs ('estimator:config_hash') at epoch 0 (``sql/aggregate_experts.sql``)."""
        return self._rows(
            load_sql("aggregate_experts"), {"space": space, "experts": experts}, "reading rank-aggregate experts"
        )

    def vote_values(self, space: str, experts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(seeds, arch_ids, values): the experts' oriented values (``sql/vote_experts.sql``)
        over the archs every expert scored, one row per (seed, arch) ordered by seed and
        arch, one column per expert in name order (higher is better in every column)."""
        params = {"space": space, "experts": experts, "n_experts": len(experts)}

        def work(con) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            data = con.execute(load_sql("vote_experts"), params).fetchnumpy()
            k = len(experts)
            seeds = np.asarray(data["seed"], dtype=np.int64)[::k]
            arch_ids = np.asarray(data["arch_id"], dtype=np.int64)[::k]
            values = np.asarray(data["oriented"], dtype=np.float64).reshape(-1, k)
            return seeds, arch_ids, values

        return self._run(work, "reading the vote's expert values")
