"""NAS-Bench-1shot1 search space 3: the configurations, its subsets and their counts."""

from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest

from estbench.errors import BadInput
from estbench.spaces.nb101 import oneshot3 as ss3
from estbench.spaces.nb101 import spec as nb

C3, C1, MP = nb.OPS


def test_the_space_is_1shot1s():
    assert ss3.NUM_PARENTS == (0, 1, 1, 1, 2, 2, 2) and sum(ss3.NUM_PARENTS) == nb.MAX_EDGES
    assert [len(ss3.parent_choices(v)) for v in range(1, 7)] == [1, 2, 3, 6, 10, 15]
    assert ss3.parent_choices(4) == ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


def test_pattern_and_configuration_counts():
    """5,400 = 1*2*3*6*10*15 patterns; 445 have no loose end; 60 (the chain 0->1->..->6 and
    one extra input for vertices 4, 5, 6 from {0..v-2}: 3*4*5) are the paper's."""
    assert [len(ss3.parent_patterns(s)) for s in ("all", "no-loose-ends", "paper")] == [5400, 445, 60]
    sizes = {s: len(ss3.enumerate_archs(s)) for s in ss3.SUBSETS}
    assert sizes == {"paper": 14580, "no-loose-ends": 108135, "all": 1312200}
    assert set(ss3.parent_patterns("paper")) <= set(ss3.parent_patterns("no-loose-ends"))


def _generator_patterns(full_parent_check: bool) -> set[frozenset]:
    """1shot1's ``generate_adjacency_matrix_without_loose_ends``, re-derived from its
    description: from the output, depth first, give a vertex its missing parents (each
    combination of the vertices before it that are not parents yet), setting them one
    at a time and descending into each as it is set (so a branch keeps only the edges
    on its own path); emit a graph as soon as it passes the validity check.
    ``full_parent_check``: aw_nas's fix (every vertex 1..6 has its full parent count)
    instead of the original (every vertex with inputs has its full count)."""
    found: set[frozenset] = set()

    def indeg(edges, v):
        return sum(1 for _, w in edges if w == v)

    def valid(edges):
        has_out = {p for p, _ in edges}
        has_in = {w for _, w in edges}
        if not has_out & set(ss3.CHOICE_BLOCKS) or 0 not in has_out or len(edges) > 9:
            return False
        needs = range(1, 7) if full_parent_check else has_in
        return all(indeg(edges, v) == ss3.NUM_PARENTS[v] for v in needs) and len(has_in) == len(has_out)

    def walk(edges, v):
        if valid(edges):
            found.add(edges)
            return
        free = [p for p in range(v) if (p, v) not in edges]
        for combo in itertools.combinations(free, ss3.NUM_PARENTS[v] - indeg(edges, v)):
            cur = edges
            for p in combo:
                cur = cur | {(p, v)}
                walk(cur, p)

    walk(frozenset(), ss3.OUTPUT_NODE)
    return found


def test_paper_subset_is_the_fixed_1shot1_generator():
    paper = {frozenset((p, v) for v, ps in enumerate(par, 1) for p in ps) for par in ss3.parent_patterns("paper")}
    assert _generator_patterns(full_parent_check=True) == paper
    original = _generator_patterns(full_parent_check=False)  # absent blocks get no op choice
    assert len(original) == 234
    assert sum(3 ** len({p for p, _ in g} - {0}) for g in original) == 24066


def test_enumeration_order_and_strings():
    archs = ss3.enumerate_archs("paper")
    assert archs == ss3.enumerate_archs("paper") and len(set(archs)) == len(archs)
    first = ss3.parse(archs[0])
    assert ss3.decode(first) == (((0,), (1,), (2,), (0, 3), (0, 4), (0, 5)), (C3,) * 5)
    assert archs[1].endswith(",".join([C3] * 4 + [C1]) + ",output")
    rng = np.random.default_rng(0)
    for i in rng.integers(0, len(archs), size=50):
        spec = ss3.parse(archs[i])
        assert ss3.index_of(spec) == i and ss3.to_str(spec) == archs[i]
        assert nb.parse(archs[i]) == spec  # no loose ends: already a pruned NB101 cell
        assert sum(map(sum, spec.matrix)) == 9


def test_loose_ends_prune_to_smaller_nb101_cells():
    parents = ((0,), (0,), (0,), (0, 1), (0, 1), (0, 1))  # blocks 2..5 feed nothing but 6 takes 0, 1
    spec = ss3.to_spec(parents, (C3, C1, MP, C3, C1))
    assert ss3.loose_ends(parents) == (2, 3, 4, 5)
    assert ss3.to_nb101(spec) == nb.Spec(((0, 1, 1), (0, 0, 1), (0, 0, 0)), ("input", C3, "output"))
    assert ss3.canonical(spec) == nb.module_hash(ss3.to_nb101(spec))
    assert ss3.parse(ss3.to_str(spec), "all") == spec
    with pytest.raises(BadInput, match=r"not in the 'paper' subset \(loose ends \[2, 3, 4, 5\]\)"):
        ss3.parse(ss3.to_str(spec))


@pytest.mark.parametrize(
    "text, why",
    [
        ("01.00:input,output", "2 vertices, need 7"),
        ("0100000.0010000.0001000.0000100.0000010.0000001.0000000:input," + ",".join([C3] * 5) + ",output",
         "vertex 4 has 1 inputs, needs 2"),
        ("0111111.0000111.0000000.0000000.0000000.0000000.0000000:input," + ",".join([C3] * 5) + ",output",
         "not in the 'paper' subset"),
    ],
)  # fmt: skip
def test_parse_errors(text, why):
    with pytest.raises(BadInput, match=why) as err:
        ss3.parse(text)
    assert "\n" not in str(err.value)


def test_unknown_subset():
    with pytest.raises(BadInput, match="unknown NB1shot-3 subset 'bogus' .known: paper, no-loose-ends, all"):
        ss3.enumerate_archs("bogus")


def test_sampling_stays_in_the_subset_and_follows_the_seed():
    for subset in ss3.SUBSETS:
        draws = [ss3.sample(np.random.default_rng(s), subset) for s in range(30)]
        assert all(ss3.parse(ss3.to_str(d), subset) == d for d in draws)
        assert draws[3] == ss3.sample(np.random.default_rng(3), subset)
    rng = np.random.default_rng(1)
    seen = {ss3.index_of(ss3.sample(rng)) for _ in range(2000)}
    assert len(seen) > 1800  # uniform over 14,580: few repeats


def test_mutations_change_one_hyperparameter():
    rng = np.random.default_rng(2)
    for subset, n_parents in (("paper", 9), ("all", 31)):
        for _ in range(10):
            spec = ss3.sample(rng, subset)
            nbs = ss3.mutations(spec, subset)
            assert len(nbs) == 10 + n_parents and len(set(nbs)) == len(nbs) and spec not in nbs
            kinds = [ss3.mutation_kind(spec, b) for b in nbs]
            assert sum(k.startswith("op:") for k in kinds) == 10
            assert {k for k in kinds if k.startswith("parents:")} <= {f"parents:{v}" for v in range(2, 7)}
            for b in nbs:
                ss3.parse(ss3.to_str(b), subset)
                assert spec in ss3.mutations(b, subset)
    nbs = ss3.mutations(ss3.sample(rng, "no-loose-ends"), "no-loose-ends")
    assert all(not ss3.loose_ends(ss3.decode(b)[0]) for b in nbs)
    a = ss3.sample(rng)
    with pytest.raises(ValueError, match="not a mutation pair"):
        ss3.mutation_kind(a, a)


def test_paper_counts_and_timing():
    """The 14,580 paper archs are pairwise non-isomorphic (a DAG with a Hamiltonian path
    has one topological order): 14,580 distinct module hashes."""
    t = time.perf_counter()
    c = ss3.counts("paper")
    elapsed = time.perf_counter() - t
    print(f"NB1shot-3 paper: {c} in {elapsed:.2f}s")
    assert c == {"patterns": 60, "configurations": 14580, "nb101_specs": 14580, "unique_hashes": 14580}
    assert elapsed < 20


@pytest.mark.slow
def test_full_space_counts():
    """With loose ends the 1,312,200 configurations prune to 118,524 NB101 cells, 55,854
    non-isomorphic; the 108,135 without loose ends are 49,032 non-isomorphic."""
    t = time.perf_counter()
    full, clean = ss3.counts("all"), ss3.counts("no-loose-ends")
    print(f"NB1shot-3 all: {full}; no-loose-ends: {clean}; {time.perf_counter() - t:.1f}s")
    assert full == {"patterns": 5400, "configurations": 1312200, "nb101_specs": 118524, "unique_hashes": 55854}
    assert clean == {"patterns": 445, "configurations": 108135, "nb101_specs": 108135, "unique_hashes": 49032}


@pytest.mark.data
def test_paper_archs_found_in_the_vis_keys(shared_data):
    keys = set(json.loads((shared_data / "nb101" / "nasbench_vis_20k.json").read_text())["key"])
    found = sum(ss3.canonical(ss3.parse(a)) in keys for a in ss3.enumerate_archs("paper"))
    assert found == 706  # 4.8% of 14,580, as 20,001 random keys of 423,624 cells predict
