"""Store queries of the bias analyses: per-architecture facts (strings, class sizes) and
one estimator's values per architecture (``sql/arch_facts.sql``, ``sql/arch_values.sql``)."""

from __future__ import annotations

import numpy as np

from estbench.store.sql import load_sql


class AnalysisMixin:
    def _numpy(self, sql: str, params: dict, what: str) -> dict[str, np.ndarray]:
        def work(con) -> dict[str, np.ndarray]:
            cur = con.execute(sql, params)
            data = cur.fetchnumpy()
            return {d[0]: np.asarray(data[d[0]]) for d in cur.description}

        return self._run(work, what)

    def arch_facts(self, space: str, protocol: str = "iso") -> dict[str, np.ndarray]:
        """Columns arch_id, arch_str, degenerate, grp, class_size, iso_size of every arch."""
        return self._numpy(load_sql("arch_facts"), {"space": space, "protocol": protocol}, "reading architectures")

    def arch_values(self, space: str, estimator: str, epoch: int = 0) -> dict[str, np.ndarray]:
        """Columns config_hash, arch_id, value of ``estimator``'s finite scores."""
        params = {"space": space, "estimator": estimator, "epoch": int(epoch)}
        return self._numpy(load_sql("arch_values"), params, f"reading {estimator} scores")
