"""NAS-Bench-101 cell specs: the official ModelSpec semantics without TensorFlow.

A cell is a DAG of at most 7 vertices and 9 edges: vertex 0 is the input, the last
vertex the output, every other vertex carries one of three ops. The benchmark stores
each cell *pruned* (vertices not on an input-to-output path removed, the rest
renumbered in order) and keys it by ``module_hash``, an isomorphism-invariant MD5 of
the pruned graph (google-research/nasbench, ``graph_util.hash_module``).

String form (``to_str`` / ``parse``): the matrix rows as 0/1 digits joined by ``.``, a
``:``, then the op names joined by ``,``, e.g.
``0110000.0001000.0000001.0000001.0000000:input,conv3x3-bn-relu,...``.
``parse`` accepts pruned specs only (the form the benchmark stores); ``parse_raw``
accepts any well-formed DAG (un-pruned cells, e.g. NAS-Bench-1shot1's with loose ends).

Pure Python on tuples (no numpy in the hot paths): ``prune`` + ``module_hash`` cost
about 0.1 ms per cell, so hashing every NB1shot-3 arch takes seconds."""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import md5
from typing import TYPE_CHECKING, Sequence

from estbench.errors import BadInput
from estbench.spaces.base import CellGraph

if TYPE_CHECKING:
    import numpy as np

# the official config['available_ops'], in its order: the hash labels are these indices
OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
INPUT = "input"
OUTPUT = "output"
MAX_VERTICES = 7
MAX_EDGES = 9
_LABEL = {op: i for i, op in enumerate(OPS)}


@dataclass(frozen=True)
class Spec:
    """One cell: ``matrix`` upper-triangular 0/1 (``matrix[i][j]``: edge i -> j), ``ops``
    one name per vertex, ``ops[0] == "input"``, ``ops[-1] == "output"``. The constructor
    does not validate (it is built millions of times); ``parse`` and ``prune`` do."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    def edges(self) -> list[tuple[int, int]]:
        n = len(self.ops)
        return [(i, j) for i in range(n) for j in range(i + 1, n) if self.matrix[i][j]]


# ---- strings ------------------------------------------------------------------------
def to_str(spec: Spec) -> str:
    return ".".join("".join("1" if x else "0" for x in row) for row in spec.matrix) + ":" + ",".join(spec.ops)


def parse_raw(text: str) -> Spec:
    """A well-formed cell, pruned or not: square 0/1 matrix, strictly upper triangular,
    2..7 vertices, input/output at the ends, known ops (edges and paths unchecked)."""
    rows_text, sep, ops_text = text.strip().partition(":")
    if not sep:
        raise _bad(text, "expected 'ROWS:OPS' (rows of 0/1 digits joined by '.', ':', ops joined by ',')")
    rows = rows_text.split(".")
    for k, row in enumerate(rows):
        if not row or set(row) - {"0", "1"}:
            raise _bad(text, f"row {k} {row!r} is not a string of 0/1 digits")
    n = len(rows)
    if any(len(r) != n for r in rows):
        raise _bad(text, f"the matrix is not square ({n} rows of lengths {','.join(str(len(r)) for r in rows)})")
    ops = tuple(o.strip() for o in ops_text.split(","))
    if len(ops) != n:
        raise _bad(text, f"{n} vertices but {len(ops)} ops")
    if not 2 <= n <= MAX_VERTICES:
        raise _bad(text, f"{n} vertices (NB101 cells have 2 to {MAX_VERTICES})")
    matrix = tuple(tuple(int(c) for c in r) for r in rows)
    _check_structure(matrix, ops, text)
    return Spec(matrix, ops)


def parse(text: str) -> Spec:
    """A pruned, valid NB101 cell (what the benchmark stores); BadInput saying why not."""
    spec = parse_raw(text)
    live = live_vertices(spec.matrix)
    if not live:
        raise _bad(text, "no path from the input to the output")
    if len(live) != spec.num_vertices:
        dead = [str(v) for v in range(spec.num_vertices) if v not in live]
        which = f"vertices {', '.join(dead)} are" if len(dead) > 1 else f"vertex {dead[0]} is"
        raise _bad(text, f"not pruned: {which} not on an input->output path (pruned: {to_str(_keep(spec, live))})")
    edges = sum(map(sum, spec.matrix))
    if edges > MAX_EDGES:
        raise _bad(text, f"{edges} edges (NB101 allows at most {MAX_EDGES})")
    return spec


def _bad(text: str, why: str) -> BadInput:
    shown = text if len(text) <= 120 else text[:117] + "..."
    return BadInput(f"bad NB101 cell {shown!r}: {why}")


def _check_structure(matrix: Sequence[Sequence[int]], ops: Sequence[str], text: str) -> None:
    n = len(ops)
    for i in range(n):
        for j in range(i + 1):
            if matrix[i][j]:
                kind = "a self loop" if i == j else "a backward edge (cycle or lower triangle)"
                raise _bad(text, f"edge {i}->{j} is {kind}: the matrix must be strictly upper triangular")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise _bad(text, f"the first op must be {INPUT!r} and the last {OUTPUT!r}")
    for v, op in enumerate(ops[1:-1], 1):
        if op not in _LABEL:
            raise _bad(text, f"unknown op {op!r} at vertex {v} (known: {', '.join(OPS)})")


# ---- pruning and validity -----------------------------------------------------------
def live_vertices(matrix: Sequence[Sequence[int]]) -> list[int]:
    """Vertices on an input->output path, in order; [] when the output is unreachable."""
    n = len(matrix)
    fwd = [False] * n
    fwd[0] = True
    for v in range(n):  # vertex order is a topological order (upper triangular)
        if fwd[v]:
            row = matrix[v]
            for w in range(v + 1, n):
                if row[w]:
                    fwd[w] = True
    if not fwd[n - 1]:
        return []
    bwd = [False] * n
    bwd[n - 1] = True
    for v in range(n - 2, -1, -1):
        row = matrix[v]
        for w in range(v + 1, n):
            if row[w] and bwd[w]:
                bwd[v] = True
                break
    return [v for v in range(n) if fwd[v] and bwd[v]]


def _keep(spec: Spec, live: list[int]) -> Spec:
    m = spec.matrix
    return Spec(tuple(tuple(m[i][j] for j in live) for i in live), tuple(spec.ops[i] for i in live))


def prune(matrix: Sequence[Sequence[float]] | np.ndarray, ops: Sequence[str]) -> Spec:
    """The official ModelSpec pruning: keep the vertices reachable from the input and
    reaching the output, in order. BadInput for a malformed cell or when no path exists.
    ``matrix`` may be nested lists, tuples or a numpy array (nonzero = edge)."""
    rows = [[1 if x else 0 for x in row] for row in matrix]
    ops = tuple(ops)
    text = f"{len(rows)}x{len(rows[0]) if rows else 0} matrix, ops {','.join(ops)}"
    if not rows or any(len(r) != len(rows) for r in rows):
        raise _bad(text, "the matrix is not square")
    if len(ops) != len(rows):
        raise _bad(text, f"{len(rows)} vertices but {len(ops)} ops")
    if len(ops) < 2:
        raise _bad(text, "a cell needs an input and an output vertex")
    _check_structure(rows, ops, text)
    spec = Spec(tuple(map(tuple, rows)), ops)
    return _prune_spec(spec, text)


def _prune_spec(spec: Spec, text: str | None = None) -> Spec:
    live = live_vertices(spec.matrix)
    if not live:
        raise _bad(text or to_str(spec), "no path from the input to the output")
    return spec if len(live) == spec.num_vertices else _keep(spec, live)


def pruned(spec: Spec) -> Spec:
    """``spec`` pruned (itself when already pruned); BadInput when no path exists."""
    return _prune_spec(spec)


def is_valid(spec: Spec) -> bool:
    """The official ``NASBench.is_valid``: after pruning, a path exists, at most 7
    vertices and 9 edges, input/output at the ends, known ops."""
    n = len(spec.ops)
    if not 2 <= n or len(spec.matrix) != n or any(len(r) != n for r in spec.matrix):
        return False
    try:
        _check_structure(spec.matrix, spec.ops, "")
        p = _prune_spec(spec, "")
    except BadInput:
        return False
    return p.num_vertices <= MAX_VERTICES and sum(map(sum, p.matrix)) <= MAX_EDGES


# ---- the official hash --------------------------------------------------------------
def hash_module(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """``graph_util.hash_module``: start from md5(str((out_degree, in_degree, label)))
    per vertex, then ``V`` rounds of md5(sorted in-neighbour hashes | sorted out-neighbour
    hashes | own hash), fingerprint = md5(str(sorted hashes)). Labels: -1 input, -2
    output, the ``OPS`` index otherwise."""
    n = len(labels)
    ins = [[w for w in range(n) if matrix[w][v]] for v in range(n)]
    outs = [[w for w in range(n) if matrix[v][w]] for v in range(n)]
    hashes = [md5(str((len(outs[v]), len(ins[v]), labels[v])).encode()).hexdigest() for v in range(n)]
    for _ in range(n):
        hashes = [
            md5(
                (
                    "".join(sorted([hashes[w] for w in ins[v]]))
                    + "|"
                    + "".join(sorted([hashes[w] for w in outs[v]]))
                    + "|"
                    + hashes[v]
                ).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return md5(str(sorted(hashes)).encode()).hexdigest()


def labels(spec: Spec) -> list[int]:
    return [-1] + [_LABEL[op] for op in spec.ops[1:-1]] + [-2]


def module_hash(spec: Spec) -> str:
    """The benchmark's key of ``spec`` (pruned first, as ``ModelSpec.hash_spec`` does)."""
    p = _prune_spec(spec)
    return hash_module(p.matrix, labels(p))


# ---- sampling and mutation ----------------------------------------------------------
def random_spec(rng: np.random.Generator) -> Spec:
    """The official sampler (NASBench.ipynb ``random_spec``): a random 7x7 0/1 matrix
    kept above the diagonal and random ops, redrawn until valid; returns it pruned.
    Not uniform over the 423k cells: pruning favours small ones (of 1,000 draws about
    10% have 2 vertices, 30% 4 and under 1% all 7, the size of most benchmark cells)."""
    n = MAX_VERTICES
    while True:
        bits = rng.integers(0, 2, size=(n, n))
        codes = rng.integers(0, len(OPS), size=n)
        matrix = tuple(tuple(int(bits[i][j]) if j > i else 0 for j in range(n)) for i in range(n))
        ops = (INPUT, *(OPS[int(c)] for c in codes[1:-1]), OUTPUT)
        spec = Spec(matrix, ops)
        if is_valid(spec):
            return _prune_spec(spec)


def _neighbours(spec: Spec) -> list[tuple[str, Spec]]:
    """(kind, neighbour) for every edit-distance-1 change, in order: edge flips (i, j)
    row-major, then op changes by vertex and ``OPS`` order; pruned, valid, distinct and
    different from ``spec``."""
    spec = _prune_spec(spec)
    n = spec.num_vertices
    out: list[tuple[str, Spec]] = []
    seen = {spec}
    rows = [list(r) for r in spec.matrix]
    for i in range(n):
        for j in range(i + 1, n):
            rows[i][j] ^= 1
            cand = Spec(tuple(map(tuple, rows)), spec.ops)
            rows[i][j] ^= 1
            if is_valid(cand):
                nb = _prune_spec(cand)
                if nb not in seen:
                    seen.add(nb)
                    out.append(("edge:-" if spec.matrix[i][j] else "edge:+", nb))
    for v in range(1, n - 1):
        for op in OPS:
            if op != spec.ops[v]:
                nb = Spec(spec.matrix, spec.ops[:v] + (op,) + spec.ops[v + 1 :])
                if nb not in seen:
                    seen.add(nb)
                    out.append((f"op:{spec.ops[v]}->{op}", nb))
    return out


def mutations(spec: Spec) -> list[Spec]:
    """Every edit-distance-1 neighbour, as the official ``mutate_spec`` moves: flip one
    edge of the un-pruned 7-vertex form or change one intermediate op, prune, keep it
    when valid (a path, <= 9 edges). The 7-vertex form of a pruned spec is the spec
    padded with isolated vertices; a flip or op change touching a padded vertex leaves
    it off every path and prunes back to ``spec``, so the neighbours are exactly: each
    of the n(n-1)/2 flips among the spec's own vertices and each other op on each
    intermediate vertex, pruned, valid, without duplicates (removing the only in- or
    out-edge of a vertex prunes it: both give one neighbour) and without ``spec``."""
    return [nb for _, nb in _neighbours(spec)]


def mutation_kind(a: Spec, b: Spec) -> str:
    """``"op:FROM->TO"``, ``"edge:+"`` or ``"edge:-"`` for a neighbour ``b`` of ``a``;
    ValueError when ``b`` is not one of ``mutations(a)``."""
    if a.num_vertices == b.num_vertices:
        if a.matrix == b.matrix:
            diff = [v for v in range(a.num_vertices) if a.ops[v] != b.ops[v]]
            if len(diff) == 1:
                return f"op:{a.ops[diff[0]]}->{b.ops[diff[0]]}"
        elif a.ops == b.ops:
            cells = [
                (i, j) for i, (ra, rb) in enumerate(zip(a.matrix, b.matrix)) for j in range(len(ra)) if ra[j] != rb[j]
            ]
            if len(cells) == 1 and is_valid(b):
                i, j = cells[0]
                return "edge:-" if a.matrix[i][j] else "edge:+"
    elif a.num_vertices > b.num_vertices:
        for kind, nb in _neighbours(a):
            if nb == b:
                return kind
    raise ValueError(f"not a mutation pair: {to_str(a)} -> {to_str(b)}")


# ---- facts --------------------------------------------------------------------------
def op_counts(spec: Spec) -> dict[str, int]:
    """How often each op occurs on the intermediate vertices (every op, zeros included)."""
    return {op: sum(1 for o in spec.ops[1:-1] if o == op) for op in OPS}


def cell_graph(spec: Spec) -> CellGraph:
    """The cell as a drawable graph: node labels = ops, plain edges (op "")."""
    return CellGraph("cell", tuple(spec.ops), tuple((i, j, "") for i, j in spec.edges()))
