"""Rank aggregates of the newer proxies (az_nas, vkdnw_agg, tenas): the rank rules against
brute force, the population (structural experts serve every seed, missing values rank
lowest), and scoring them from a toy store end to end."""

import math

import numpy as np
import pytest

from estbench.errors import BadInput
from estbench.estimators import ESTIMATORS
from estbench.runs import ScoreRequest, ZeroShotConfig, score
from estbench.runs.aggregate import AGGREGATES, aggregate_scores, population
from estbench.store import Store


def brute_log_rank_sum(values: list[list[float]]) -> list[float]:
    """sum over experts of log(average rank / n), ranks from 1 (lowest), nan lowest."""
    n = len(values)
    out = []
    for a in range(n):
        total = 0.0
        for e in range(len(values[0])):
            col = [-math.inf if math.isnan(v[e]) else v[e] for v in values]
            below = sum(c < col[a] for c in col)
            equal = sum(c == col[a] for c in col)
            total += math.log((below + (equal + 1) / 2) / n)
        out.append(total)
    return out


def brute_dense_rank_sum(values: list[list[float]]) -> list[float]:
    out = []
    for a in range(len(values)):
        total = 0
        for e in range(len(values[0])):
            col = [-math.inf if math.isnan(v[e]) else v[e] for v in values]
            total += len({c for c in col if c > col[a]})  # distinct better values
        out.append(-total)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rules_equal_brute_force_with_ties_and_missing_values(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 5, size=(12, 3)).astype(float)  # many ties
    values[rng.integers(0, 12, 3), rng.integers(0, 3, 3)] = np.nan
    values[0, 0] = -np.inf
    assert aggregate_scores(values, "log_rank_sum") == pytest.approx(brute_log_rank_sum(values.tolist()))
    assert aggregate_scores(values, "dense_rank_sum").tolist() == brute_dense_rank_sum(values.tolist())
    with pytest.raises(ValueError, match="unknown aggregate rule"):
        aggregate_scores(values, "median")


def test_the_best_arch_on_every_expert_gets_the_top_score():
    values = np.array([[1.0, 1.0], [3.0, 2.0], [2.0, 3.0], [4.0, 4.0]])
    for rule in ("log_rank_sum", "dense_rank_sum"):
        assert int(np.argmax(aggregate_scores(values, rule))) == 3
    assert aggregate_scores(values, "log_rank_sum")[3] == 0.0  # log(N/N) per expert
    assert aggregate_scores(values, "dense_rank_sum")[3] == 0.0


def test_population_serves_a_structural_expert_to_every_seed():
    rows = [("flops", "structural", 0, a, float(a)) for a in (1, 2, 3)]
    rows += [("az_expressivity", "zeroshot", s, a, float(10 * s + a)) for s in (20, 21) for a in (1, 2)]
    rows += [("az_expressivity", "zeroshot", 21, 3, None)]  # non-finite at seed 21: ranks lowest
    pops = population(rows, ["flops", "az_expressivity"])
    assert sorted(pops) == [20, 21]
    archs, values = pops[20]
    assert archs.tolist() == [1, 2] and values.tolist() == [[1.0, 201.0], [2.0, 202.0]]
    archs, values = pops[21]
    assert archs.tolist() == [1, 2, 3] and np.isnan(values[2, 1])


def test_every_aggregate_is_registered_as_derived_with_registered_experts():
    for name, agg in AGGREGATES.items():
        meta = ESTIMATORS.meta(name)
        assert meta["derived"] is True and meta["needs"] == "analysis" and meta["higher_is_better"] is True
        assert meta["description"] == agg.description
        for e in agg.experts:
            assert e in ESTIMATORS, (name, e)


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    st = Store(tmp_path_factory.mktemp("agg") / "s.duckdb")
    cfg = ZeroShotConfig(batch_size=8, n_batches=1)
    score(st, ScoreRequest(space="toy", estimators=("az_nas", "tenas"), seeds=(1, 2), zero_shot=cfg))
    return st


def test_scoring_an_aggregate_scores_its_experts_and_ranks_them(toy_store):
    st = toy_store
    for name in ("az_nas", "tenas"):
        rows = st.query(
            "SELECT seed, arch_id, value FROM scores WHERE estimator = $e ORDER BY seed, arch_id", {"e": name}
        )[1]
        assert len(rows) == 2 * 27, name  # both seeds, every toy arch
        experts = AGGREGATES[name].experts
        for seed in (1, 2):
            values = []
            for e in experts:
                orient = 1 if ESTIMATORS.meta(e)["higher_is_better"] else -1
                got = dict(st.query(
                    "SELECT arch_id, avg(value) FILTER (WHERE status = 'ok') FROM scores WHERE estimator = $e "
                    "AND (seed = $s OR $structural) GROUP BY arch_id",
                    {"e": e, "s": seed, "structural": ESTIMATORS.meta(e)["kind"] == "structural"},
                )[1])  # fmt: skip
                values.append([np.nan if got[a] is None else orient * got[a] for a in range(27)])
            expected = aggregate_scores(np.array(values).T, AGGREGATES[name].rule)
            stored = [v for s, _, v in rows if s == seed]
            assert stored == pytest.approx(expected.tolist()), (name, seed)


def test_an_aggregate_without_its_experts_is_refused(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    with pytest.raises(BadInput, match="az_nas needs scores of all its experts"):
        from estbench.runs.aggregate import score_aggregates

        score_aggregates(st, "toy", ["az_nas"], {})


def test_zse_all_leaves_out_what_the_space_or_batch_count_cannot_serve(capsys):
    from estbench.cli.score import _estimator_names
    from estbench.spaces import get_space

    names = _estimator_names([], ["all"], space=get_space("toy"), n_batches=2)
    assert {"zico", "linear_regions", "tenas", "az_nas", "vkdnw_agg", "vote"} <= set(names)
    names = _estimator_names([], ["all"], space=get_space("toy"), n_batches=1)
    assert "zico" not in names and "linear_regions" in names
    assert "leaving out zico needs --batches 2 or more" in capsys.readouterr().err
    names = _estimator_names([], ["all"], space=get_space("nb101"), n_batches=2)
    assert "linear_regions" not in names and "tenas" not in names and "az_nas" in names
    err = capsys.readouterr().err
    assert "linear_regions needs the space's thin_network()" in err and "leaving out tenas" in err


def test_an_explicit_measure_the_space_cannot_serve_is_refused(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    cfg = ZeroShotConfig(batch_size=8, n_batches=1)
    with pytest.raises(BadInput, match="zico needs --batches 2 or more"):
        score(st, ScoreRequest(space="toy", estimators=("zico",), zero_shot=cfg))
