"""Behaviour pinned before the house refactor: structural criteria, the per-batch values
of all nine zero-shot measures and vote (bit-identical on CPU), and a one-shot
train + score run must equal the golden files (see golden_cases.py)."""

import json
import math

import pytest
from golden_cases import APPROX, CASES, GOLDEN


def _close(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    x, y = float(a), float(b)
    return x == y or (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-12)


def _same(expected: list, got: list) -> bool:
    if expected == got:
        return True
    if expected[0] not in APPROX or expected[:5] != got[:5] or expected[6:] != got[6:]:
        return False
    return _close(expected[5], got[5])


def _check(name, tmp_path):
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    got = json.loads(json.dumps(CASES[name](tmp_path)))
    assert set(got) == set(expected)
    for part, want in expected.items():
        if isinstance(want, dict):  # criteria: class truths are DuckDB averages (any summation order)
            assert got[part].keys() == want.keys(), f"golden {name}/{part}: other estimators"
            for est, values in want.items():
                assert got[part][est].keys() == values.keys(), f"golden {name}/{part}/{est}: other criteria"
                bad = {k: (v, got[part][est][k]) for k, v in values.items() if not _close(v, got[part][est][k])}
                assert not bad, f"golden {name}/{part}/{est} differs: {bad}"
            continue
        assert len(got[part]) == len(want), f"golden {name}/{part}: {len(got[part])} rows, expected {len(want)}"
        bad = [(w, g) for w, g in zip(want, got[part]) if not _same(w, g)]
        assert not bad, f"golden {name}/{part}: {len(bad)} rows differ, first: {bad[0]}"


def test_golden_toy(tmp_path):
    _check("toy", tmp_path)


@pytest.mark.data
def test_golden_nb201(tmp_path, shared_data):
    _check("nb201", tmp_path)
