"""NAS-Bench-1shot1 search space 3 (automl/nasbench-1shot1, ``search_space_3.py``) as
7-vertex NB101 specs.

The space: vertex 0 is the cell input, vertices 1..5 are choice blocks (one op each
from ``spec.OPS``), vertex 6 the output. Vertex v chooses exactly ``NUM_PARENTS[v]``
inputs among the vertices before it: 1, 1, 1, 2, 2 for the choice blocks and 2 for the
output (vertex 1's only choice is the input), 9 edges in all, the NB101 maximum.
``NUM_PARENTS`` and the parent combinations are those of the 1shot1 ConfigSpace
(``choice_block_{v}_parents``, ``itertools.combinations(range(v), n)``).

An architecture is a configuration: the parents of vertices 1..6 and the ops of blocks
1..5, kept as the *un-pruned* 7x7 matrix 1shot1's ``create_nasbench_adjacency_matrix_
with_loose_ends`` builds (``matrix[p][v] = 1`` for each chosen parent). A block whose
output no later vertex takes is a *loose end*; NB101 (``ModelSpec``) prunes it, so the
NB101 architecture of a configuration is ``to_nb101(spec)``, the pruned spec, and its
benchmark key ``module_hash`` of that.

Subsets (``SUBSETS``; counts pinned by tests/test_nb101_oneshot3.py, derivation below):

- ``"all"``: every configuration, loose ends included: 1*2*3*6*10*15 = 5,400 parent
  patterns x 3^5 = 243 op choices = 1,312,200 configurations (1shot1's
  ``generate_with_loose_ends`` x ops). Pruned they give 118,524 distinct NB101 specs
  (configurations differing only in a loose end's op or inputs prune alike) and
  55,854 distinct module hashes.
- ``"no-loose-ends"``: every block feeds a later vertex (so every vertex is on an
  input->output path and the spec is already pruned): 445 patterns x 243 = 108,135
  distinct specs, 49,032 distinct module hashes (isomorphic copies: e.g. blocks 2 and
  3 both fed by block 1 and both feeding block 4 can swap their ops).
- ``"paper"`` (the default): the 14,580 architectures the paper trains its supernet on
  ("14580 architectures (without loose end) in search space 3"; aw_nas's
  ``nb101_14k.yaml``). They are what 1shot1's ``generate_search_space_without_loose_
  ends`` yields once its validity check is fixed as aw_nas fixed it ("important FIX":
  every vertex must have its full parent count). That generator walks back from the
  output depth first and keeps, at each vertex, only the edges of the branch it is in,
  so a full graph comes out only when the last parent of every vertex v is v-1: the
  chain 0->1->...->6 plus one free extra parent for vertices 4, 5 and 6 from
  {0..v-2}: 3*4*5 = 60 patterns x 243 = 14,580. A DAG with a Hamiltonian path has a
  unique topological order, so no two of them are isomorphic: 14,580 distinct hashes
  too, which is the paper's "14.6k (w.o. isomorphic ones)" in Table A1. The space
  itself has 49,032 non-isomorphic cells without loose ends (55,854 counting the
  pruned cells of configurations with loose ends): the gap is the generator's.
- For the record (not a subset here): 1shot1's generator with its original check
  (absent blocks allowed, their op fixed to conv1x1) yields 234 patterns and 24,066
  architectures; absent blocks are not configurations of the one-shot model.

Order of ``enumerate_archs``: parent patterns in ``itertools.product`` order over
vertices 1..6 (each vertex's ``combinations`` order), filtered by the subset; within a
pattern, ops in ``itertools.product(OPS, repeat=5)`` order (block 1 slowest), so the
arch at position ``p * 243 + o`` has pattern p and op tuple o."""

from __future__ import annotations

import itertools
from functools import cache
from typing import TYPE_CHECKING, Callable

from estbench.errors import BadInput
from estbench.spaces.nb101 import spec as nb
from estbench.spaces.nb101.spec import INPUT, OPS, OUTPUT, Spec

if TYPE_CHECKING:
    import numpy as np

N_VERTICES = 7
OUTPUT_NODE = 6
CHOICE_BLOCKS = (1, 2, 3, 4, 5)
NUM_PARENTS = (0, 1, 1, 1, 2, 2, 2)  # per vertex, as 1shot1's num_parents_per_node
Parents = tuple[tuple[int, ...], ...]  # the parents of vertices 1..6
OP_CHOICES = tuple(itertools.product(OPS, repeat=len(CHOICE_BLOCKS)))


def parent_choices(v: int) -> tuple[tuple[int, ...], ...]:
    """The parent combinations vertex ``v`` chooses from (1shot1 ``parent_combinations``)."""
    return tuple(itertools.combinations(range(v), NUM_PARENTS[v]))


def loose_ends(parents: Parents) -> tuple[int, ...]:
    """The choice blocks whose output no later vertex takes."""
    used = {p for ps in parents for p in ps}
    return tuple(v for v in CHOICE_BLOCKS if v not in used)


def _in_paper(parents: Parents) -> bool:
    return all(v - 1 in parents[v - 1] for v in range(2, N_VERTICES))


SUBSETS: dict[str, Callable[[Parents], bool]] = {
    "paper": _in_paper,
    "no-loose-ends": lambda parents: not loose_ends(parents),
    "all": lambda parents: True,
}


def _check_subset(subset: str) -> Callable[[Parents], bool]:
    if subset not in SUBSETS:
        raise BadInput(f"unknown NB1shot-3 subset {subset!r} (known: {', '.join(SUBSETS)})")
    return SUBSETS[subset]


@cache
def parent_patterns(subset: str = "paper") -> tuple[Parents, ...]:
    """The parent patterns of ``subset``, in enumeration order."""
    keep = _check_subset(subset)
    every = itertools.product(*(parent_choices(v) for v in range(1, N_VERTICES)))
    return tuple(p for p in every if keep(p))


@cache
def _pattern_index(subset: str) -> dict[Parents, int]:
    return {p: i for i, p in enumerate(parent_patterns(subset))}


def _matrix(parents: Parents) -> tuple[tuple[int, ...], ...]:
    rows = [[0] * N_VERTICES for _ in range(N_VERTICES)]
    for v, ps in enumerate(parents, 1):
        for p in ps:
            rows[p][v] = 1
    return tuple(map(tuple, rows))


def to_spec(parents: Parents, ops: tuple[str, ...]) -> Spec:
    """The un-pruned 7-vertex spec of a configuration (1shot1's NB101 conversion)."""
    return Spec(_matrix(parents), (INPUT, *ops, OUTPUT))


def decode(spec: Spec) -> tuple[Parents, tuple[str, ...]]:
    """(parents of vertices 1..6, ops of blocks 1..5); BadInput when ``spec`` is no
    NB1shot-3 configuration."""
    text = nb.to_str(spec)
    if spec.num_vertices != N_VERTICES:
        raise BadInput(f"not an NB1shot-3 cell {text!r}: {spec.num_vertices} vertices, need {N_VERTICES}")
    parents = tuple(tuple(p for p in range(v) if spec.matrix[p][v]) for v in range(1, N_VERTICES))
    for v, ps in enumerate(parents, 1):
        if len(ps) != NUM_PARENTS[v]:
            raise BadInput(f"not an NB1shot-3 cell {text!r}: vertex {v} has {len(ps)} inputs, needs {NUM_PARENTS[v]}")
    return parents, spec.ops[1:-1]


def parse(text: str, subset: str = "paper") -> Spec:
    """A 7-vertex spec string of a configuration in ``subset``; BadInput saying why not."""
    spec = nb.parse_raw(text)
    parents, _ = decode(spec)
    if not _check_subset(subset)(parents):
        why = (
            f"loose ends {list(loose_ends(parents))}"
            if loose_ends(parents)
            else "not the chain 0->1->..->6 plus extra inputs"
        )
        raise BadInput(f"NB1shot-3 cell {text.strip()!r} is not in the {subset!r} subset ({why})")
    return spec


def to_str(spec: Spec) -> str:
    return nb.to_str(spec)


def to_nb101(spec: Spec) -> Spec:
    """The NB101 architecture of a configuration: its spec pruned (loose ends removed)."""
    return nb.pruned(spec)


def canonical(spec: Spec) -> str:
    """The NB101 benchmark key (module hash of the pruned spec)."""
    return nb.module_hash(spec)


def index_of(spec: Spec, subset: str = "paper") -> int:
    """The position of ``spec`` in ``enumerate_archs(subset)``; BadInput when absent."""
    parents, ops = decode(spec)
    p = _pattern_index(subset).get(parents)
    if p is None:
        raise BadInput(f"NB1shot-3 cell {nb.to_str(spec)!r} is not in the {subset!r} subset")
    o = 0
    for op in ops:
        o = o * len(OPS) + OPS.index(op)
    return p * len(OP_CHOICES) + o


def enumerate_archs(subset: str = "paper") -> list[str]:
    """Every architecture of ``subset`` as a 7-vertex spec string (order: module doc)."""
    op_tails = [":" + ",".join((INPUT, *ops, OUTPUT)) for ops in OP_CHOICES]
    out: list[str] = []
    for parents in parent_patterns(subset):
        head = nb.to_str(Spec(_matrix(parents), ())).rstrip(":")
        out.extend(head + tail for tail in op_tails)
    return out


def sample(rng: np.random.Generator, subset: str = "paper") -> Spec:
    """One configuration drawn uniformly from ``subset`` (for "all" this is 1shot1's
    ``sample(with_loose_ends=True)``: each vertex's parents and each op uniform)."""
    patterns = parent_patterns(subset)
    parents = patterns[int(rng.integers(len(patterns)))]
    return to_spec(parents, tuple(OPS[int(c)] for c in rng.integers(0, len(OPS), size=len(CHOICE_BLOCKS))))


def mutations(spec: Spec, subset: str = "paper") -> list[Spec]:
    """The configurations of ``subset`` one hyperparameter away (the 1shot1 ConfigSpace's
    ``choice_block_{v}_op`` / ``choice_block_{v}_parents``): each other op of each block
    (5 x 2), then each other parent combination of each vertex 2..6 that stays in
    ``subset`` ("all": 1+2+5+9+14 = 31, "paper": 2+3+4 = 9, since only the extra input
    of vertices 4..6 may move). Neighbours are configurations, not NB101 specs: two of
    them may prune to the same NB101 cell."""
    parents, ops = decode(spec)
    keep = _check_subset(subset)
    out = [to_spec(parents, ops[:k] + (op,) + ops[k + 1 :]) for k in range(len(ops)) for op in OPS if op != ops[k]]
    for v in range(2, N_VERTICES):
        for choice in parent_choices(v):
            if choice != parents[v - 1]:
                cand = parents[: v - 1] + (choice,) + parents[v:]
                if keep(cand):
                    out.append(to_spec(cand, ops))
    return out


def mutation_kind(a: Spec, b: Spec) -> str:
    """``"op:FROM->TO"`` for an op change, ``"parents:V"`` when vertex V's inputs moved;
    ValueError when more than one hyperparameter differs."""
    (pa, oa), (pb, ob) = decode(a), decode(b)
    ops_diff = [k for k in range(len(oa)) if oa[k] != ob[k]]
    par_diff = [v for v in range(len(pa)) if pa[v] != pb[v]]
    if len(ops_diff) == 1 and not par_diff:
        return f"op:{oa[ops_diff[0]]}->{ob[ops_diff[0]]}"
    if len(par_diff) == 1 and not ops_diff:
        return f"parents:{par_diff[0] + 1}"
    raise ValueError(f"not a mutation pair: {nb.to_str(a)} -> {nb.to_str(b)}")


def counts(subset: str = "paper") -> dict[str, int]:
    """patterns, configurations, distinct pruned NB101 specs and distinct module hashes
    of ``subset``. Each distinct pruned matrix is hashed once per op choice of its live
    blocks (configurations differing only in loose-end ops or parents prune alike)."""
    patterns = parent_patterns(subset)
    seen: set[tuple[tuple[int, ...], ...]] = set()
    n_specs = 0
    hashes: set[str] = set()
    for parents in patterns:
        m = _matrix(parents)
        live = nb.live_vertices(m)
        pruned = tuple(tuple(m[i][j] for j in live) for i in live)
        if pruned in seen:
            continue
        seen.add(pruned)
        inner = len(live) - 2
        for codes in itertools.product(range(len(OPS)), repeat=inner):
            hashes.add(nb.hash_module(pruned, [-1, *codes, -2]))
            n_specs += 1
    return {
        "patterns": len(patterns),
        "configurations": len(patterns) * len(OP_CHOICES),
        "nb101_specs": n_specs,
        "unique_hashes": len(hashes),
    }
