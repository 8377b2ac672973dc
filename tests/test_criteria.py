"""Criteria against scipy and against definition-level implementations."""

import numpy as np
import pytest
from scipy import stats

from estbench.analysis.criteria import DEFAULT_KS, criteria_from_arrays, format_k, ordinal_ranks, top_count


def direct_criteria(y, s, k):
    """Definition-level P@top/bottomK, BR@K, WR@K: sort with explicit tie-breaks, count sets."""
    m = len(y)
    c = max(1, int(np.floor(k * m + 1e-9)))
    by_truth = sorted(range(m), key=lambda i: (-y[i], i))  # best first, ties by index
    by_score = sorted(range(m), key=lambda i: (-s[i], i))
    true_rank = {i: pos + 1 for pos, i in enumerate(by_truth)}
    top_true, top_est = set(by_truth[:c]), set(by_score[:c])
    bot_true, bot_est = set(by_truth[m - c :]), set(by_score[m - c :])
    return {
        "p_top": len(top_true & top_est) / c,
        "p_bottom": len(bot_true & bot_est) / c,
        "br": min(true_rank[i] for i in top_est) / m,
        "wr": max(true_rank[i] for i in top_est) / m,
    }


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_correlations_match_scipy(seed, ties):
    rng = np.random.default_rng(seed)
    m = 500
    y = rng.normal(size=m)
    s = y + rng.normal(scale=1.5, size=m)
    if ties:
        s = np.round(s)  # many ties in the scores
        y = np.round(y, 1)
    out = criteria_from_arrays(y, s)
    assert out["kd"] == pytest.approx(stats.kendalltau(y, s).statistic, abs=1e-9)
    assert out["spearman"] == pytest.approx(stats.spearmanr(y, s).statistic, abs=1e-9)
    assert out["lc"] == pytest.approx(stats.pearsonr(y, s).statistic, abs=1e-9)
    assert out["mean"] == pytest.approx(np.mean(s), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("m", [7, 150, 1001])
def test_set_criteria_match_definitions(seed, m):
    rng = np.random.default_rng(seed)
    y = np.round(rng.normal(size=m), 2)
    s = np.round(y + rng.normal(size=m), 1)
    out = criteria_from_arrays(y, s)
    for k in DEFAULT_KS:
        ref = direct_criteria(y, s, k)
        tag = format_k(k)
        for name in ("p_top", "p_bottom", "br", "wr"):
            assert out[f"{name}@{tag}"] == pytest.approx(ref[name], abs=1e-12), (name, k)


def test_lower_is_better_is_sign_corrected():
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    loss = -y + rng.normal(scale=0.3, size=200)
    out = criteria_from_arrays(y, loss, higher_is_better=False)
    ref = criteria_from_arrays(y, -loss)
    assert out["kd"] > 0.5
    for key in ("kd", "spearman", "lc", "p_top@5%", "br@5%", "wr@10%"):
        assert out[key] == pytest.approx(ref[key])


def test_perfect_and_reversed():
    y = np.arange(100.0)
    best = criteria_from_arrays(y, y)
    assert best["kd"] == pytest.approx(1) and best["p_top@10%"] == 1 and best["br@1%"] == 0.01
    worst = criteria_from_arrays(y, -y)
    assert worst["kd"] == pytest.approx(-1) and worst["p_top@10%"] == 0 and worst["wr@1%"] == 1.0


def test_ordinal_ranks_tiebreak_and_top_count():
    r = ordinal_ranks(np.array([1.0, 3.0, 3.0, 2.0]), tiebreak=np.array([0, 5, 4, 1]))
    assert r.tolist() == [4, 2, 1, 3]
    assert top_count(0.05, 6466) == 323 and top_count(0.001, 500) == 1
