"""The per-(arch, seed) batch means: table ``score_arch``, which every write of scores keeps
current, so that analyses (views ``score_mean`` / ``score_seed_mean``, the criteria point
sets) read one averaged row per key instead of averaging every batch row on each query.

A mean is ``list_avg`` over the ok values in batch order (the same sum in the same order
on every run, whatever order the rows were written in), the seconds ``list_sum`` in
batch order: exactly what the ``score_mean`` view of schema 3-7 computed on the fly.

Writers: ``write_scores`` (insert rows, then recompute the keys they touched, in the
caller's transaction), ``drop_group`` (a replaced estimator config) and ``rebuild`` (the
whole table: after the migration that adds it, and after a user's ``sql --write`` that
names the scores table, since estbench cannot tell what such SQL changed)."""

from __future__ import annotations

import re

KEY = ("space", "estimator", "config_hash", "epoch", "seed", "arch_id")

_AGGREGATE = """
INSERT INTO score_arch (space, arch_id, estimator, config_hash, epoch, seed, value, n_batches, n_failed,
                        n_nonfinite, elapsed_s)
SELECT s.space, s.arch_id, s.estimator, s.config_hash, s.epoch, s.seed,
       list_avg(list(s.value ORDER BY s.batch) FILTER (WHERE s.status = 'ok')),
       count(*),
       count(*) FILTER (WHERE s.status = 'failed'),
       count(*) FILTER (WHERE s.status = 'nonfinite'),
       list_sum(list(s.elapsed_s ORDER BY s.batch))
FROM scores s {join}
GROUP BY s.space, s.estimator, s.config_hash, s.epoch, s.seed, s.arch_id
ORDER BY s.space, s.estimator, s.config_hash, s.epoch, s.seed, s.arch_id
"""
_MATCH = " AND ".join(f"s.{c} = t.{c}" for c in KEY)


def write_scores(con, data: dict[str, list], keep_means: bool = True) -> int:
    """Insert score rows (``SCORE_COLUMNS`` lists; existing keys skipped) and recompute
    the means of every key they touch; the number of rows inserted. ``keep_means`` is
    False only for a schema before ``MEANS_VERSION`` (a test playing an older estbench)."""
    from estbench.store.rows import SCORE_COLUMNS
    from estbench.store.store import _insert_columns

    inserted = _insert_columns(con, "scores", SCORE_COLUMNS, data)
    if inserted and keep_means:
        refresh(con, data)
    return inserted


def refresh(con, data: dict[str, list]) -> None:
    """Recompute the score_arch rows of the (space, estimator, config, epoch, seed, arch)
    keys in ``data`` (score columns) from the scores table."""
    cols = ", ".join(f"unnest(${i + 1}) AS {c}" for i, c in enumerate(KEY))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE touched_keys AS SELECT DISTINCT * FROM (SELECT {cols})", [data[c] for c in KEY]
    )
    con.execute(f"DELETE FROM score_arch s USING touched_keys t WHERE {_MATCH}")
    con.execute(_AGGREGATE.format(join=f"JOIN touched_keys t ON {_MATCH}"))
    con.execute("DROP TABLE touched_keys")


def drop_group(con, space: str, estimator: str, config_hash: str) -> None:
    con.execute(
        "DELETE FROM score_arch WHERE space = ? AND estimator = ? AND config_hash = ?", [space, estimator, config_hash]
    )


def rebuild(con) -> None:
    con.execute("DELETE FROM score_arch")
    con.execute(_AGGREGATE.format(join=""))


def names_scores(sql: str) -> bool:
    """True when SQL may have changed the scores table (it names it)."""
    return re.search(r"\bscores\b", sql, re.IGNORECASE) is not None
