"""vote (the paper's pairwise majority of experts, as Copeland wins) and vote_borda (the
Borda count that was vote before schema 5): against brute force on a synthetic store
with ties, a lower-is-better expert, missing and non-finite scores and two seeds; both
from one request; migration 5 of a store written at schema 4."""

import json
import math

import numpy as np
import pytest

from estbench.config import config_hash
from estbench.errors import BadInput
from estbench.runs import ScoreRequest, score
from estbench.runs.loop import record_config
from estbench.runs.vote import copeland_wins, score_vote
from estbench.store import ScoreKey, ScoreRow, Store
from estbench.store.schema import MIGRATIONS

EXPERTS = ("plain", "relu_logdet", "synflow")  # plain: lower is better; synflow: data-free, batch 0 only
SEEDS = (1, 2)
N_ARCHS = 27  # the toy space

# The pre-schema-5 sql/vote.sql, verbatim: vote_borda must give exactly its values.
OLD_VOTE_SQL = """
WITH e AS (
    SELECT s.arch_id, s.seed, s.estimator,
           CASE WHEN est.higher_is_better THEN s.value ELSE -s.value END AS oriented
    FROM score_mean s JOIN estimators est ON est.name = s.estimator
    WHERE s.space = $space AND s.epoch = 0
      AND list_contains($experts, s.estimator || ':' || s.config_hash)
      AND s.value IS NOT NULL AND isfinite(s.value)
),
complete AS (
    SELECT arch_id, seed FROM e GROUP BY arch_id, seed HAVING count(DISTINCT estimator) = $n_experts
),
ranked AS (
    SELECT e.arch_id, e.seed, e.estimator,
           percent_rank() OVER (PARTITION BY e.seed, e.estimator ORDER BY e.oriented) AS pr
    FROM e JOIN complete USING (arch_id, seed)
)
SELECT arch_id, seed, list_avg(list(pr ORDER BY estimator)) AS vote FROM ranked GROUP BY arch_id, seed ORDER BY seed, arch_id
"""


# ---- brute force -------------------------------------------------------------------------
def brute_copeland(values: list[list[float]]) -> list[int]:
    """values[a][e], higher is better: a's wins = #b that more experts rank below a than above."""
    n = len(values)
    wins = []
    for a in range(n):
        w = 0
        for b in range(n):
            if a != b:
                margin = sum((x > y) - (x < y) for x, y in zip(values[a], values[b]))
                w += margin > 0
        wins.append(w)
    return wins


def brute_borda(values: list[list[float]]) -> list[float]:
    n = len(values)
    k = len(values[0])
    return [sum(sum(values[b][e] < values[a][e] for b in range(n)) / (n - 1) for e in range(k)) / k for a in range(n)]


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_copeland_wins_is_the_pairwise_majority(k):
    rng = np.random.default_rng(k)
    values = rng.integers(0, 4, size=(40, k)).astype(float)  # few levels: many ties per expert and per pair
    values[3] = values[7]  # two archs tied under every expert
    expected = brute_copeland(values.tolist())
    for chunk in (1, 7, 40, 1 << 20):  # one row at a time, ragged chunks, one chunk
        assert copeland_wins(values, chunk_cells=chunk).tolist() == expected
    assert copeland_wins(values)[3] == copeland_wins(values)[7]


def test_copeland_ties_count_for_neither():
    # 2 experts: a > b under one, b > a under the other -> a tie, no win for either
    assert copeland_wins(np.array([[1.0, 0.0], [0.0, 1.0]])).tolist() == [0, 0]
    # an expert with equal values abstains: the other decides
    assert copeland_wins(np.array([[5.0, 1.0], [5.0, 0.0]])).tolist() == [1, 0]
    # 3 experts, Condorcet cycle: every arch beats exactly one
    cycle = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 0.0], [2.0, 0.0, 1.0]])
    assert copeland_wins(cycle).tolist() == [1, 1, 1]
    assert copeland_wins(np.zeros((0, 3))).tolist() == []
    assert copeland_wins(np.array([[1.0, 2.0]])).tolist() == [0]


# ---- a synthetic store -------------------------------------------------------------------
def _expert_scores(seed: int) -> dict[str, dict[int, list[float]]]:
    """expert -> arch -> its batch values (inf: a non-finite batch), with ties, a
    missing arch and archs whose only value is non-finite."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[int, list[float]]] = {}
    for e in EXPERTS:
        n_batches = 1 if e == "synflow" else 2
        out[e] = {a: [float(rng.integers(0, 5)) for _ in range(n_batches)] for a in range(N_ARCHS)}
    out["plain"][4] = [math.inf, 2.0]  # a non-finite batch: the mean is over the ok batch
    out["synflow"][5] = [math.inf]  # no finite value: arch 5 is out of the vote
    del out["relu_logdet"][6 + seed]  # not scored by one expert: out of the vote of that seed
    return out


def _mean(batches: list[float]) -> float | None:
    ok = [v for v in batches if math.isfinite(v)]
    return sum(ok) / len(ok) if ok else None


def _expected(scores: dict[str, dict[int, list[float]]], higher: dict[str, bool]):
    """(archs, oriented values[a][e] in expert name order) of the archs every expert scored."""
    means = {e: {a: _mean(b) for a, b in per.items()} for e, per in scores.items()}
    archs = sorted(a for a in range(N_ARCHS) if all(means[e].get(a) is not None for e in EXPERTS))
    oriented = [[means[e][a] * (1 if higher[e] else -1) for e in sorted(EXPERTS)] for a in archs]
    return archs, oriented


@pytest.fixture
def expert_store(tmp_path):
    """A toy store with the three experts' scores of two seeds; yields (store, data)."""
    from estbench.estimators import ESTIMATORS

    path = tmp_path / "vote.duckdb"
    with Store(path) as st:
        data = {}
        for e in EXPERTS:
            chash = record_config(st, e, {"space": "toy", "init": "fresh"})
            rows = []
            for seed in SEEDS:
                per = _expert_scores(seed)[e]
                data.setdefault(seed, {})[e] = per
                for a, batches in per.items():
                    key = ScoreKey("toy", e, chash, 0, seed)
                    rows += [ScoreRow.of(key, a, b, v, 0.0, "r") for b, v in enumerate(batches)]
            st.upsert_scores(rows)
        higher = {e: ESTIMATORS.meta(e)["higher_is_better"] for e in EXPERTS}
        assert higher["plain"] is False and higher["synflow"] is True
        yield st, data, higher


def _stored(st, name):
    rows = st.query(f"SELECT seed, arch_id, value, config_hash FROM scores WHERE estimator = '{name}' ORDER BY ALL")[1]
    out: dict[int, dict[int, float]] = {}
    for seed, a, v, _ in rows:
        out.setdefault(seed, {})[a] = v
    return out, {r[3] for r in rows}


def _request(*names):
    return ScoreRequest(space="toy", estimators=names, vote_experts=EXPERTS)


def test_both_rules_from_one_request_against_brute_force(expert_store):
    st, data, higher = expert_store
    summaries = score(st, _request("vote", "vote_borda"))
    assert [s.estimator for s in summaries] == ["vote", "vote_borda"]
    copeland, cope_hashes = _stored(st, "vote")
    borda, borda_hashes = _stored(st, "vote_borda")
    assert len(cope_hashes) == len(borda_hashes) == 1 and cope_hashes != borda_hashes
    assert sorted(copeland) == sorted(borda) == list(SEEDS)
    for seed in SEEDS:
        archs, oriented = _expected(data[seed], higher)
        assert 5 not in archs and 6 + seed not in archs and 4 in archs
        assert sorted(copeland[seed]) == sorted(borda[seed]) == archs  # same experts, same archs
        assert [copeland[seed][a] for a in archs] == brute_copeland(oriented)
        assert np.allclose([borda[seed][a] for a in archs], brute_borda(oriented), rtol=0, atol=1e-12)
    # the seeds differ, so a per-seed vote must too
    assert [copeland[1].get(a) for a in range(N_ARCHS)] != [copeland[2].get(a) for a in range(N_ARCHS)]
    # the plain expert is lower-is-better: with it taken as higher-is-better, the vote changes
    archs, oriented = _expected(data[1], {**higher, "plain": True})
    assert [copeland[1].get(a) for a in archs] != brute_copeland(oriented)


def test_vote_borda_is_the_old_vote_unchanged(expert_store):
    st, _, _ = expert_store
    score(st, _request("vote_borda"))
    (chash,) = _stored(st, "vote_borda")[1]
    settings = st.query("SELECT config FROM configs WHERE config_hash = ?", [chash])[1][0][0]
    listed = json.loads(settings)["experts"]
    old = st.query(OLD_VOTE_SQL, {"space": "toy", "experts": listed, "n_experts": len(listed)})[1]
    new = st.query("SELECT arch_id, seed, value FROM scores WHERE estimator = 'vote_borda' ORDER BY seed, arch_id")[1]
    assert new == old and len(new) > 0
    assert json.loads(settings) == {"space": "toy", "experts": listed}  # the settings of the old vote


def test_each_rule_alone_and_rescoring_replaces(expert_store):
    st, _, _ = expert_store
    score(st, _request("vote"))
    assert st.query("SELECT DISTINCT estimator FROM scores WHERE estimator LIKE 'vote%'")[1] == [("vote",)]
    (chash,) = _stored(st, "vote")[1]
    settings = json.loads(st.query("SELECT config FROM configs WHERE config_hash = ?", [chash])[1][0][0])
    assert settings["rule"] == "copeland" and chash == config_hash({"estimator": "vote", **settings})
    before = _stored(st, "vote")[0]
    score(st, _request("vote", "vote_borda"))
    score(st, _request("vote_borda"))
    assert _stored(st, "vote")[0] == before
    counts = st.query(
        "SELECT estimator, count(DISTINCT config_hash), count(*) FROM scores WHERE estimator LIKE 'vote%' GROUP BY 1 "
        "ORDER BY 1"
    )[1]
    n = sum(len(v) for v in before.values())
    assert counts == [("vote", 1, n), ("vote_borda", 1, n)]
    assert st.query("SELECT count(*) FROM configs WHERE estimator LIKE 'vote%'")[1][0][0] == 2


def test_vote_refuses_unknown_rules_and_missing_experts(expert_store):
    st, _, _ = expert_store
    with pytest.raises(BadInput, match="not a vote rule: votes"):
        score_vote(st, "toy", list(EXPERTS), {}, ["votes"])
    with pytest.raises(BadInput, match="no matching config of snip"):
        score(st, ScoreRequest(space="toy", estimators=("vote_borda",), vote_experts=("plain", "snip")))


def test_zse_all_names_both_rules():
    from estbench.cli.score import _estimator_names

    names = _estimator_names([], ["all"])
    assert "vote" in names and "vote_borda" in names
    assert _estimator_names([], ["vote_borda"]) == ["vote_borda"]


# ---- migration 5 -------------------------------------------------------------------------
def _write_old_vote(st: Store, experts: list[str]) -> str:
    """What estbench wrote as vote before schema 5: the Borda count under the name vote."""
    settings = {"space": "toy", "experts": experts}
    chash = config_hash({"estimator": "vote", **settings})
    st.put_estimator("vote", "zeroshot", True, "ensemble of expert ZSEs, ranked over the population")
    st.put_config(chash, "vote", settings)
    run_id = st.start_run("score", "toy", "vote", {**settings, "config_hash": chash})
    ranks = st.query(OLD_VOTE_SQL, {"space": "toy", "experts": experts, "n_experts": len(experts)})[1]
    st.upsert_scores([ScoreRow.of(ScoreKey("toy", "vote", chash, 0, s), a, 0, v, 0.0, run_id) for a, s, v in ranks])
    st.finish_run(run_id, "done")
    return chash


def test_migration_5_renames_the_borda_vote_and_rescoring_replaces_it(tmp_path, monkeypatch):
    import estbench.store.store as store_mod

    assert [m[0] for m in MIGRATIONS[:5]] == [1, 2, 3, 4, 5]
    path = tmp_path / "schema4.duckdb"
    monkeypatch.setattr(store_mod, "MIGRATIONS", MIGRATIONS[:4])
    with Store(path) as st:
        assert st.schema_version() == 4
        hashes = {}
        for e in EXPERTS:
            hashes[e] = record_config(st, e, {"space": "toy", "init": "fresh"})
            key = ScoreKey("toy", e, hashes[e], 0, 1)
            st.upsert_scores([ScoreRow.of(key, a, 0, float((a * 7 + len(e)) % 5), 0.0, "r") for a in range(N_ARCHS)])
        listed = sorted(f"{e}:{h}" for e, h in hashes.items())
        old_hash = _write_old_vote(st, listed)
        old_rows = st.query("SELECT arch_id, seed, value FROM scores WHERE estimator = 'vote' ORDER BY ALL")[1]
        n_scores = st.query("SELECT count(*) FROM scores")[1][0][0]
    monkeypatch.setattr(store_mod, "MIGRATIONS", MIGRATIONS)
    new_hash = config_hash({"estimator": "vote_borda", "space": "toy", "experts": listed})
    assert new_hash != old_hash
    with Store(path) as st:
        assert st.schema_version() == MIGRATIONS[-1][0] >= 5
        q = lambda sql: st.query(sql)[1]  # noqa: E731
        for table, column in (("scores", "estimator"), ("configs", "estimator"), ("estimators", "name")):
            assert q(f"SELECT count(*) FROM {table} WHERE {column} = 'vote'") == [(0,)], table
        assert q("SELECT count(*) FROM runs WHERE name = 'vote'") == [(0,)]
        # the migrated config hash is the one the new vote_borda computes (SQL SHA-1 == config_hash)
        ((chash, config),) = q("SELECT config_hash, config FROM configs WHERE estimator = 'vote_borda'")
        assert chash == new_hash and json.loads(config) == {"space": "toy", "experts": listed}
        assert q("SELECT DISTINCT config_hash FROM scores WHERE estimator = 'vote_borda'") == [(new_hash,)]
        assert q("SELECT arch_id, seed, value FROM scores WHERE estimator = 'vote_borda' ORDER BY ALL") == old_rows
        assert q("SELECT count(*) FROM scores")[0][0] == n_scores
        run = q("SELECT name, config FROM runs WHERE kind = 'score' AND name = 'vote_borda'")
        assert len(run) == 1 and json.loads(run[0][1])["config_hash"] == new_hash
        assert q("SELECT higher_is_better FROM estimators WHERE name = 'vote_borda'") == [(True,)]
        # rescoring vote_borda replaces the migrated family: still one config, same values
        score(st, ScoreRequest(space="toy", estimators=("vote_borda", "vote"), vote_experts=EXPERTS))
        assert q("SELECT count(*) FROM configs WHERE estimator = 'vote_borda'") == [(1,)]
        assert q("SELECT DISTINCT config_hash FROM scores WHERE estimator = 'vote_borda'") == [(new_hash,)]
        assert q("SELECT arch_id, seed, value FROM scores WHERE estimator = 'vote_borda' ORDER BY ALL") == old_rows
        assert q("SELECT count(*) FROM scores WHERE estimator = 'vote'") == [(len(old_rows),)]


def test_migration_5_hash_is_config_hash_for_any_released_vote_config(tmp_path, monkeypatch):
    """The SQL recomputation against config.config_hash on several families (other
    spaces, expert lists of other lengths)."""
    import estbench.store.store as store_mod

    families = [
        {"space": "nb201", "experts": ["jacob_cov:0123456789ab", "relu_logdet:ba9876543210", "synflow:00ff00ff00ff"]},
        {"space": "toy", "experts": ["snip:aaaaaaaaaaaa", "synflow:bbbbbbbbbbbb"]},
        {"space": "nb201", "experts": ["plain:cccccccccccc"]},
    ]
    path = tmp_path / "families.duckdb"
    monkeypatch.setattr(store_mod, "MIGRATIONS", MIGRATIONS[:4])
    with Store(path) as st:
        for settings in families:
            st.put_config(config_hash({"estimator": "vote", **settings}), "vote", settings)
    monkeypatch.setattr(store_mod, "MIGRATIONS", MIGRATIONS)
    with Store(path) as st:
        got = {h: json.loads(c) for h, c in st.query("SELECT config_hash, config FROM configs")[1]}
    assert got == {config_hash({"estimator": "vote_borda", **s}): s for s in families}


def test_the_vote_path_imports_no_torch(tmp_path):
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import sys
        from estbench.runs.loop import record_config
        from estbench.runs.vote import score_vote
        from estbench.store import ScoreKey, ScoreRow, Store

        with Store({str(tmp_path / "t.duckdb")!r}) as st:
            for j, e in enumerate({list(EXPERTS)!r}):
                h = record_config(st, e, {{"space": "toy"}})
                st.upsert_scores([ScoreRow.of(ScoreKey("toy", e, h, 0, 1), a, 0, (a * (j + 2)) % 7, 0.0, "r")
                                  for a in range(9)])
            out = score_vote(st, "toy", {list(EXPERTS)!r}, {{}}, ["vote", "vote_borda"])
        assert [s.requested for s in out] == [9, 9], out
        assert "torch" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
