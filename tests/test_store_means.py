"""score_arch, the per-(arch, seed) batch means that every write of scores keeps current:
after any write path it holds exactly what averaging the scores table on the fly (the
score_mean view of schemas 3-7) gives."""

import random

from estbench.store import ScoreKey, ScoreRow, Store
from estbench.store.schema import MEANS_VERSION, MIGRATIONS

# score_mean as schemas 3-7 defined it: computed from the scores table on every query
ON_THE_FLY = """
SELECT space, arch_id, estimator, config_hash, epoch, seed,
       list_avg(list(value ORDER BY batch) FILTER (WHERE status = 'ok')) AS value,
       count(*) AS n_batches, count(*) FILTER (WHERE status <> 'ok') AS n_failed,
       list_sum(list(elapsed_s ORDER BY batch)) AS elapsed_s
FROM scores GROUP BY ALL ORDER BY ALL
"""


def rows_for(key, archs, batches=3, rng=None, offset=0.0):
    rng = rng or random.Random(0)
    out = []
    for a in archs:
        for b in range(batches):
            v = rng.choice([rng.random() + offset, float("inf"), float("nan")]) if b == 1 else rng.random() + offset
            err = "E: boom" if (a + b) % 7 == 0 else None
            out.append(ScoreRow.of(key, a, b, None if err else v, 0.1 * (b + 1), "r", err))
    rng.shuffle(out)  # written in any order, averaged in batch order
    return out


def same_as_on_the_fly(st):
    kept = st.query("SELECT * FROM score_mean ORDER BY ALL")[1]
    fly = st.query(ON_THE_FLY)[1]
    assert kept == fly
    return kept


def test_every_write_path_keeps_the_means(tmp_path):
    a, b = ScoreKey("toy", "synflow", "h1", 0, 1), ScoreKey("toy", "synflow", "h1", 0, 2)
    with Store(tmp_path / "s.duckdb") as st:
        st.upsert_scores(rows_for(a, range(10)))
        assert len(same_as_on_the_fly(st)) == 10
        # a second chunk adds batches to old keys and new archs; old rows are kept
        st.upsert_scores(rows_for(ScoreKey("toy", "synflow", "h1", 0, 1), range(5, 15), batches=5, offset=9.0))
        kept = same_as_on_the_fly(st)
        assert len(kept) == 15 and {r[7] for r in kept if r[1] >= 10} == {5}
        run_id = st.start_run("score", "toy", "synflow", {})
        st.upsert_run_scores(run_id, rows_for(b, range(8)))
        assert len(same_as_on_the_fly(st)) == 23
        st.replace_scores("toy", "synflow", "h1", rows_for(a, range(3)))
        assert len(same_as_on_the_fly(st)) == 3
        st.query("DELETE FROM scores WHERE arch_id = 0")  # user SQL naming scores
        assert len(same_as_on_the_fly(st)) == 2
        st.replace_scores("toy", "synflow", "h1", [])
        assert same_as_on_the_fly(st) == []


def test_failed_and_nonfinite_are_counted_apart():
    k = ScoreKey("toy", "snip", "h", 0, 0)
    with Store(":memory:") as st:
        st.upsert_scores([ScoreRow.of(k, 0, 0, 1.0, 0.0, None), ScoreRow.of(k, 0, 1, float("inf"), 0.0, None),
                          ScoreRow.of(k, 0, 2, None, 0.0, None, "E: x")])  # fmt: skip
        assert st.query("SELECT value, n_batches, n_failed, n_nonfinite FROM score_arch")[1] == [(1.0, 3, 1, 1)]
        assert st.query("SELECT n_failed FROM score_mean")[1] == [(2,)]  # not ok, as before


def test_an_older_store_gets_its_means_on_migration(tmp_path, monkeypatch):
    import estbench.store.store as store_mod

    path = tmp_path / "old.duckdb"
    older = [m for m in MIGRATIONS if m[0] < MEANS_VERSION]
    monkeypatch.setattr(store_mod, "MIGRATIONS", older)
    with Store(path) as st:
        st.upsert_scores(rows_for(ScoreKey("toy", "params", "h"), range(6)))
        before = st.query(ON_THE_FLY)[1]
        assert "score_arch" not in st._tables()
    monkeypatch.setattr(store_mod, "MIGRATIONS", MIGRATIONS)
    with Store(path) as st:
        assert st.query("SELECT * FROM score_mean ORDER BY ALL")[1] == before
