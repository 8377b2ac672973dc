"""NB301 / DARTS genotypes: the architecture value, its string forms and its edits.

A DARTS architecture is a normal and a reduction cell; each has 2 inputs (the outputs of
the two previous cells, ``c_{k-2}`` and ``c_{k-1}``) and 4 intermediate nodes, each the
sum of two ops applied to two distinct earlier nodes; the cell's output concatenates the
4 intermediate nodes. NB301's 7 ops are ``OPS`` (no zero op: every node is live).

String forms read by ``parse`` (one line each, detected by their first characters):

- estbench's (``to_str``, the store's ``arch_str``), NB201-like: per cell the 4 nodes as
  ``|op~input|op~input|`` groups joined by ``+``:
  ``normal:|sep_conv_3x3~0|sep_conv_3x3~1|+|skip_connect~0|sep_conv_3x3~1|+|...|+|...|;reduce:|...|``
- DARTS's ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...],
  reduce_concat=[2, 3, 4, 5])`` (``to_darts``; ``range(2, 6)`` is accepted as the concat);
- NASLib's compact form ``[[(input, op_index) x 8], [(input, op_index) x 8]]`` (normal,
  reduce; op_index into ``OPS``; ``to_naslib``), the key of NASLib's NB301 tables;
- NB301's ConfigSpace configuration as a JSON object (``to_config``): ``edge_<cell>_<e>``
  (e = the edge: node 0 has edges 0, 1; node 1 edges 2..4; node 2 edges 5..8; node 3 edges
  9..13, one per possible input) and ``inputs_node_<cell>_<k>`` (``"i_j"``, the two inputs
  of node k = 3, 4, 5, i.e. intermediate nodes 1..3), names prefixed
  ``NetworkSelectorDatasetInfo:darts:`` (or ``_COLON_`` for ``:``, as YAHPO writes them).

Isomorphism (``canonical``): two genotypes are the same architecture when one becomes
the other by (1) swapping the two operands of a node (the node sums them; estbench keeps
them sorted by input, so this one is already in the value) or (2) renumbering the
intermediate nodes of a cell so that every node still takes inputs only from earlier
ones (e.g. two nodes that both read only the cell inputs): the cell output is then the
same concatenation with its channel blocks permuted, and everything that reads it (the
next cells' 1x1 preprocessing convolutions, FactorizedReduce, the pooled classifier) is
equivariant to a permutation of its input channels, so both compute the same function
family with permuted weights. Nothing else is merged: no op is the zero op, every node
is live, and ops are never equivalent to each other.
"""

from __future__ import annotations

import ast
import itertools
import json
from dataclasses import dataclass
from functools import cache
from typing import Any, Iterable, Mapping

import numpy as np

from estbench.errors import BadInput

# the 7 NB301 ops in NB301's / NASLib's order (NASLib compact op codes are positions here)
OPS: tuple[str, ...] = (
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)  # fmt: skip
NODES = 4  # intermediate nodes per cell
CELL_TYPES = ("normal", "reduce")
CONFIG_PREFIX = "NetworkSelectorDatasetInfo:darts:"
EDGE_START = (0, 2, 5, 9)  # ConfigSpace edge number of (node j, input 0)
N_EDGES = 14

Pair = tuple[str, int]  # (op, input); input 0 / 1 = the cell inputs c_{k-2} / c_{k-1}, 2 + j = intermediate node j
Cell = tuple[Pair, ...]  # 8 pairs: node j (0..3) is pairs 2j and 2j+1, inputs < 2 + j, the two inputs distinct


@dataclass(frozen=True)
class Genotype:
    """A DARTS architecture: the normal and the reduction cell, each 8 (op, input) pairs
    in DARTS order (node j = pairs 2j, 2j+1); both cells concatenate nodes 2..5. The pairs
    inside a node are kept sorted by input (operand order does not matter: the node sums
    them), so equal architectures are equal values. Build one with ``make`` (checked)."""

    normal: Cell
    reduce: Cell

    def cell(self, name: str) -> Cell:
        return self.normal if name == "normal" else self.reduce

    def cells(self) -> tuple[tuple[str, Cell], ...]:
        return (("normal", self.normal), ("reduce", self.reduce))


# ---- building and checking ---------------------------------------------------------------
def make_cell(pairs: Iterable[Any], name: str = "normal") -> Cell:
    """The checked cell of 8 (op, input) pairs, each node's pairs sorted by input;
    BadInput naming the node and the problem otherwise."""
    pairs = list(pairs)
    if len(pairs) != 2 * NODES:
        raise BadInput(f"the {name} cell has {len(pairs)} (op, input) pairs; a DARTS cell has {2 * NODES}")
    out: list[Pair] = []
    for j in range(NODES):
        node = []
        for p in pairs[2 * j : 2 * j + 2]:
            if not isinstance(p, (tuple, list)) or len(p) != 2:
                raise BadInput(f"node {j} of the {name} cell: {p!r} is not an (op, input) pair")
            op, inp = p
            if op not in OPS:
                raise BadInput(f"node {j} of the {name} cell: unknown op {op!r} (NB301 ops: {', '.join(OPS)})")
            if isinstance(inp, bool) or not isinstance(inp, (int, np.integer)) or not 0 <= inp < 2 + j:
                raise BadInput(
                    f"node {j} of the {name} cell takes input {inp!r}; node {j} can take 0..{1 + j} "
                    "(0, 1: the cell inputs; 2+i: intermediate node i)"
                )
            node.append((str(op), int(inp)))
        if node[0][1] == node[1][1]:
            raise BadInput(f"node {j} of the {name} cell takes input {node[0][1]} twice; its two inputs must differ")
        out.extend(sorted(node, key=lambda p: p[1]))
    return tuple(out)


def make(normal: Iterable[Any], reduce: Iterable[Any]) -> Genotype:
    return Genotype(make_cell(normal, "normal"), make_cell(reduce, "reduce"))


# ---- estbench string ---------------------------------------------------------------------
def _cell_str(cell: Cell) -> str:
    return "+".join("|" + "|".join(f"{op}~{i}" for op, i in cell[2 * j : 2 * j + 2]) + "|" for j in range(NODES))


def to_str(g: Genotype) -> str:
    return ";".join(f"{name}:{_cell_str(cell)}" for name, cell in g.cells())


def _parse_estbench(text: str) -> Genotype:
    parts = dict(p.partition(":")[::2] for p in text.split(";"))
    if sorted(parts) != sorted(CELL_TYPES) or len(text.split(";")) != 2:
        raise BadInput(f"{text!r}: expected normal:|op~i|op~j|+...;reduce:|...| (both cells, once each)")
    cells = {}
    for name in CELL_TYPES:
        nodes = parts[name].split("+")
        if len(nodes) != NODES:
            raise BadInput(f"the {name} cell has {len(nodes)} nodes ('+'-separated); a DARTS cell has {NODES}")
        pairs = []
        for j, node in enumerate(nodes):
            if not (node.startswith("|") and node.endswith("|")):
                raise BadInput(f"node {j} of the {name} cell: {node!r} is not |op~input|op~input|")
            for item in node[1:-1].split("|"):
                op, sep, inp = item.partition("~")
                if not sep or not inp.isdigit():
                    raise BadInput(f"node {j} of the {name} cell: {item!r} is not op~input")
                pairs.append((op, int(inp)))
        cells[name] = make_cell(pairs, name)
    return Genotype(cells["normal"], cells["reduce"])


# ---- DARTS Genotype(...) string ----------------------------------------------------------
def to_darts(g: Genotype) -> str:
    cells = ", ".join(f"{name}={list(cell)!r}, {name}_concat=[2, 3, 4, 5]" for name, cell in g.cells())
    return f"Genotype({cells})"


def _literal(node: ast.AST, what: str) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        try:
            return list(range(*(ast.literal_eval(a) for a in node.args)))
        except (ValueError, TypeError):
            raise BadInput(f"{what}: not a range of integers") from None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise BadInput(f"{what}: not a literal list") from None


def _parse_darts(text: str) -> Genotype:
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise BadInput(f"not a DARTS Genotype(...) string ({exc.msg})") from None
    if not isinstance(tree, ast.Call) or getattr(tree.func, "id", None) != "Genotype" or tree.args:
        raise BadInput("not a DARTS Genotype(normal=..., normal_concat=..., reduce=..., reduce_concat=...) string")
    fields = {k.arg: _literal(k.value, f"Genotype field {k.arg}") for k in tree.keywords}
    missing = [f for f in ("normal", "reduce") if f not in fields]
    if missing:
        raise BadInput(f"the Genotype has no {' and no '.join(missing)} field")
    for name in CELL_TYPES:
        concat = fields.get(f"{name}_concat", [2, 3, 4, 5])
        if list(concat) != [2, 3, 4, 5]:
            raise BadInput(f"{name}_concat is {concat!r}; NB301 cells concatenate every intermediate node [2, 3, 4, 5]")
    return make(fields["normal"], fields["reduce"])


# ---- NASLib compact ----------------------------------------------------------------------
def to_naslib(g: Genotype) -> str:
    return str([[(i, OPS.index(op)) for op, i in cell] for _, cell in g.cells()])


def from_naslib(obj: Any) -> Genotype:
    """The genotype of a NASLib compact key (its string or the nested sequences)."""
    if isinstance(obj, str):
        try:
            obj = ast.literal_eval(obj.strip())
        except (ValueError, SyntaxError, TypeError):
            raise BadInput(f"{obj!r}: not a NASLib compact key [[(input, op) x 8], [(input, op) x 8]]") from None
    if not isinstance(obj, (list, tuple)) or len(obj) != 2:
        raise BadInput(f"{obj!r}: a NASLib compact key has two cells (normal, reduce)")
    cells = []
    for name, cell in zip(CELL_TYPES, obj):
        pairs = []
        for p in cell if isinstance(cell, (list, tuple)) else [cell]:
            if not isinstance(p, (list, tuple)) or len(p) != 2:
                raise BadInput(f"the {name} cell: {p!r} is not an (input, op index) pair")
            inp, op = p
            if isinstance(op, bool) or not isinstance(op, int) or not 0 <= op < len(OPS):
                raise BadInput(f"the {name} cell: op index {op!r} is not 0..{len(OPS) - 1} ({', '.join(OPS)})")
            pairs.append((OPS[op], inp))
        cells.append(make_cell(pairs, name))
    return Genotype(*cells)


# ---- NB301 ConfigSpace configuration -----------------------------------------------------
def to_config(g: Genotype) -> dict[str, str]:
    """The NB301 ConfigSpace configuration (only the architecture's parameters)."""
    cfg: dict[str, str] = {}
    for name, cell in g.cells():
        for j in range(NODES):
            (op_a, a), (op_b, b) = cell[2 * j : 2 * j + 2]
            if j:
                cfg[f"{CONFIG_PREFIX}inputs_node_{name}_{j + 2}"] = f"{a}_{b}"
            cfg[f"{CONFIG_PREFIX}edge_{name}_{EDGE_START[j] + a}"] = op_a
            cfg[f"{CONFIG_PREFIX}edge_{name}_{EDGE_START[j] + b}"] = op_b
    return cfg


def from_config(config: Mapping[str, Any]) -> Genotype:
    """The genotype of an NB301 configuration; keys other than the architecture's
    (training hyperparameters) are ignored; an active edge the inputs do not select, a
    missing one or an unknown value is a BadInput."""
    arch: dict[str, Any] = {}
    for key, value in config.items():
        k = str(key).replace("_COLON_", ":")
        if k.startswith(CONFIG_PREFIX) and k[len(CONFIG_PREFIX) :].startswith(("edge_", "inputs_node_")):
            arch[k[len(CONFIG_PREFIX) :]] = value
    cells = []
    for name in CELL_TYPES:
        pairs: list[Pair] = []
        used: set[int] = set()
        for j in range(NODES):
            if j == 0:
                inputs = (0, 1)
            else:
                raw = arch.get(f"inputs_node_{name}_{j + 2}")
                if raw is None:
                    raise BadInput(f"configuration: no inputs_node_{name}_{j + 2} (the inputs of node {j})")
                try:
                    inputs = tuple(int(x) for x in str(raw).split("_"))
                except ValueError:
                    inputs = ()
                if len(inputs) != 2:
                    raise BadInput(f"configuration: inputs_node_{name}_{j + 2} is {raw!r}, not 'i_j'")
            for i in inputs:
                edge = EDGE_START[j] + i
                if not 0 <= i < 2 + j:
                    raise BadInput(
                        f"configuration: inputs_node_{name}_{j + 2} takes input {i}; node {j} can take 0..{1 + j}"
                    )
                op = arch.get(f"edge_{name}_{edge}")
                if op is None:
                    raise BadInput(
                        f"configuration: node {j} of the {name} cell takes input {i} but edge_{name}_{edge} is not set"
                    )
                pairs.append((op, i))
                used.add(edge)
        extra = sorted(
            int(k.rsplit("_", 1)[1]) for k in arch if k.startswith(f"edge_{name}_") and k.rsplit("_", 1)[1].isdigit()
        )
        stray = [e for e in extra if e not in used]
        if stray:
            raise BadInput(f"configuration: edge_{name}_{stray[0]} is set but no node's inputs select it")
        cells.append(make_cell(pairs, name))
    return Genotype(*cells)  # fmt: skip


# ---- any form ----------------------------------------------------------------------------
def parse(text: str) -> Genotype:
    """A genotype from any of the string forms in the module docstring."""
    t = text.strip()
    if t.startswith(("normal:", "reduce:")):
        return _parse_estbench(t)
    if t.startswith("Genotype("):
        return _parse_darts(t)
    if t.startswith("{"):
        try:
            cfg = json.loads(t)
        except json.JSONDecodeError as exc:
            raise BadInput(f"not a JSON NB301 configuration ({exc.msg})") from None
        if not isinstance(cfg, dict):
            raise BadInput("not a JSON NB301 configuration (an object of parameter: value)")
        return from_config(cfg)
    if t.startswith(("[", "(")):
        return from_naslib(t)
    raise BadInput(
        f"{text[:60]!r}: not an NB301 architecture (estbench normal:|op~i|...;reduce:|...|, "
        "DARTS Genotype(...), NASLib [[(input, op) ...], [...]] or a ConfigSpace JSON object)"
    )


# ---- isomorphism -------------------------------------------------------------------------
@cache
def _orders() -> tuple[tuple[int, ...], ...]:
    return tuple(itertools.permutations(range(NODES)))


def canonical_cell(cell: Cell) -> Cell:
    """The smallest relabelling of the cell's intermediate nodes that keeps every input
    earlier than its node (each node's pairs sorted), as a cell."""
    best: Cell | None = None
    for perm in _orders():  # perm[j]: the new position of node j
        if any(i >= 2 and perm[i - 2] >= perm[j] for j in range(NODES) for _, i in cell[2 * j : 2 * j + 2]):
            continue
        nodes: list[list[Pair]] = [[] for _ in range(NODES)]
        for j in range(NODES):
            for op, i in cell[2 * j : 2 * j + 2]:
                nodes[perm[j]].append((op, i if i < 2 else 2 + perm[i - 2]))
        relabelled = tuple(p for node in nodes for p in sorted(node, key=lambda p: (p[1], p[0])))
        if best is None or relabelled < best:
            best = relabelled
    assert best is not None  # the identity is always valid
    return best


def canonical(g: Genotype) -> str:
    return to_str(Genotype(canonical_cell(g.normal), canonical_cell(g.reduce)))


# ---- sampling and edits ------------------------------------------------------------------
def sample(rng: np.random.Generator) -> Genotype:
    """A genotype uniform over NB301's configuration space: per node its two inputs
    uniform among the pairs of earlier nodes, each op uniform among the 7."""
    cells = []
    for name in CELL_TYPES:
        pairs: list[Pair] = []
        for j in range(NODES):
            combos = list(itertools.combinations(range(2 + j), 2))
            a, b = combos[int(rng.integers(len(combos)))]
            pairs += [(OPS[int(rng.integers(len(OPS)))], a), (OPS[int(rng.integers(len(OPS)))], b)]
        cells.append(make_cell(pairs, name))
    return Genotype(*cells)


def _replace(g: Genotype, name: str, k: int, pair: Pair) -> Genotype:
    cell = list(g.cell(name))
    cell[k] = pair
    j = k // 2
    cell[2 * j : 2 * j + 2] = sorted(cell[2 * j : 2 * j + 2], key=lambda p: p[1])
    return Genotype(tuple(cell), g.reduce) if name == "normal" else Genotype(g.normal, tuple(cell))


def mutations(g: Genotype) -> list[Genotype]:
    """Every edit-distance-1 neighbour: one pair's op replaced (16 x 6) or one pair's
    input moved to another allowed node its sibling does not use (2 x (0+1+2+3) x 2)."""
    out: list[Genotype] = []
    for name, cell in g.cells():
        for k, (op, i) in enumerate(cell):
            j, other = k // 2, cell[k ^ 1][1]
            out += [_replace(g, name, k, (o, i)) for o in OPS if o != op]
            out += [_replace(g, name, k, (op, n)) for n in range(2 + j) if n not in (i, other)]
    return out


def mutation_kind(g: Genotype, neighbour: Genotype) -> str:
    """``"from_op->to_op"`` for a changed op (either cell), ``"input"`` for a moved input."""
    for name, cell in g.cells():
        other = neighbour.cell(name)
        for j in range(NODES):
            mine, theirs = set(cell[2 * j : 2 * j + 2]), set(other[2 * j : 2 * j + 2])
            if mine == theirs:
                continue
            (a,), (b,) = mine - theirs, theirs - mine
            return f"{a[0]}->{b[0]}" if a[1] == b[1] else "input"
    raise BadInput(f"{to_str(neighbour)} is not a neighbour of {to_str(g)}")


def op_counts(g: Genotype) -> dict[str, int]:
    """How often each op occurs over both cells."""
    counts = dict.fromkeys(OPS, 0)
    for _, cell in g.cells():
        for op, _ in cell:
            counts[op] += 1
    return counts
