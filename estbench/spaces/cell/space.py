"""Cell search spaces in the NAS-Bench-201 style: a DAG of ``n_nodes`` nodes where every
pair j < i has one edge carrying one operation. NB201 is the 4-node, 5-op instance;
the ``toy`` space used by tests is a smaller instance of the same code.

Architectures are tuples of op names in string order: edges (1<-0), (2<-0), (2<-1),
(3<-0), (3<-1), (3<-2), ... The string form is the official NB201 one:
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

Nothing here imports torch; networks are built in ``network``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from estbench.errors import BadInput

Arch = tuple[str, ...]
ZERO = "#"  # the zero marker in canonical expressions (NB201's own symbols)
INPUT = "0"  # the input node's expression
PARAMETRIC_OPS = ("nor_conv_1x1", "nor_conv_3x3")
_EDGE_RE = re.compile(r"^([a-z0-9_]+)~(\d+)$")


@dataclass(frozen=True)
class CellSpace:
    """The combinatorial part of a cell space (no torch)."""

    name: str
    ops: tuple[str, ...]
    n_nodes: int = 4

    @cached_property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(source, target) of every edge, in string order."""
        return tuple((j, i) for i in range(1, self.n_nodes) for j in range(i))

    @property
    def size(self) -> int:
        return len(self.ops) ** len(self.edges)

    # ---- string form ------------------------------------------------------------
    def parse(self, text: str) -> Arch:
        """Strict parser: exact format, known ops, right edge count and sources."""
        s = text.strip()
        if not (s.startswith("|") and s.endswith("|")):
            raise BadInput(f"malformed {self.name} architecture {text!r}: must start and end with '|'")
        nodes = s[1:-1].split("|+|")
        if len(nodes) != self.n_nodes - 1:
            raise BadInput(
                f"malformed {self.name} architecture {text!r}: {len(nodes)} nodes separated by '|+|', "
                f"expected {self.n_nodes - 1}"
            )
        ops: list[str] = []
        for i, node in enumerate(nodes, start=1):
            parts = node.split("|")
            if len(parts) != i:
                raise BadInput(
                    f"malformed {self.name} architecture {text!r}: node {i} has {len(parts)} incoming "
                    f"edges, expected {i}"
                )
            for j, part in enumerate(parts):
                m = _EDGE_RE.match(part)
                if not m:
                    raise BadInput(f"malformed {self.name} architecture {text!r}: edge {part!r} is not 'op~source'")
                op, src = m.group(1), int(m.group(2))
                if op not in self.ops:
                    raise BadInput(
                        f"malformed {self.name} architecture {text!r}: unknown op {op!r} "
                        f"(ops are {', '.join(self.ops)})"
                    )
                if src != j:
                    raise BadInput(
                        f"malformed {self.name} architecture {text!r}: edge {j} of node {i} reads from "
                        f"node {src}, expected {j}"
                    )
                ops.append(op)
        return tuple(ops)

    def to_str(self, arch: Arch) -> str:
        self.check(arch)
        out, k = [], 0
        for i in range(1, self.n_nodes):
            out.append("|" + "|".join(f"{arch[k + j]}~{j}" for j in range(i)) + "|")
            k += i
        return "+".join(out)

    def check(self, arch: Arch) -> None:
        if len(arch) != len(self.edges) or any(op not in self.ops for op in arch):
            raise BadInput(f"not a {self.name} architecture: {arch!r}")

    def enumerate(self) -> list[Arch]:
        """Every architecture, in lexicographic op order (not NB201's official order)."""
        archs: list[Arch] = [()]
        for _ in self.edges:
            archs = [a + (op,) for a in archs for op in self.ops]
        return archs

    # ---- isomorphism -------------------------------------------------------------
    def node_exprs(self, arch: Arch, drop_zero: bool) -> list[str]:
        """Canonical expression of every node.

        An edge j->i contributes a term: the zero marker if its op is ``none`` or node
        j's expression is exactly the zero marker; node j's expression for
        ``skip_connect``; ``(expr_j)@op`` otherwise. A node's expression is its terms
        sorted and joined by '+' (the benchmark's symbols: input '0', zero '#', so
        the keys equal NB201's own ``to_unique_str``). With ``drop_zero`` (the strict computational key),
        zero terms are dropped and a node without terms is the zero marker; without it
        (the benchmark's own key) zero terms are kept, so only a node whose single
        term is zero is exactly the zero marker.
        """
        exprs = [INPUT]
        for i in range(1, self.n_nodes):
            terms = []
            for k, (j, dst) in enumerate(self.edges):
                if dst != i:
                    continue
                src, op = exprs[j], arch[k]
                if op == "none" or src == ZERO:
                    terms.append(ZERO)
                elif op == "skip_connect":
                    terms.append(src)
                else:
                    terms.append(f"({src})@{op}")
            if drop_zero:
                terms = [t for t in terms if t != ZERO]
                exprs.append("+".join(sorted(terms)) if terms else ZERO)
            else:
                exprs.append("+".join(sorted(terms)))
        return exprs

    def canonical(self, arch: Arch, protocol: str = "iso") -> str:
        """Key shared by isomorphic architectures.

        ``iso``: the benchmark's key (zero terms kept; 6,466 classes on NB201, the
        paper's count). ``computational``: zero terms dropped (5,390 classes on NB201),
        i.e. architectures that compute exactly the same function.
        """
        if protocol not in ("iso", "computational"):
            raise BadInput(f"unknown isomorphism protocol {protocol!r} (iso, computational)")
        return self.node_exprs(arch, drop_zero=protocol == "computational")[-1]

    def is_degenerate(self, arch: Arch) -> bool:
        """True when no path carries the input to the output (output is constant)."""
        return self.canonical(arch, "computational") == ZERO

    def live_edges(self, arch: Arch) -> tuple[bool, ...]:
        """Whether each edge lies on an input-to-output path of non-``none`` edges (its
        source is reachable from the input and its target reaches the output). Ops on
        other edges exist in the standalone network but cannot affect its output."""
        from_input = [True] + [False] * (self.n_nodes - 1)
        for k, (j, i) in enumerate(self.edges):  # edges are sorted by target node
            if arch[k] != "none" and from_input[j]:
                from_input[i] = True
        to_output = [False] * (self.n_nodes - 1) + [True]
        for k in reversed(range(len(self.edges))):
            j, i = self.edges[k]
            if arch[k] != "none" and to_output[i]:
                to_output[j] = True
        return tuple(arch[k] != "none" and from_input[j] and to_output[i] for k, (j, i) in enumerate(self.edges))

    # ---- neighbourhood -----------------------------------------------------------
    def mutations(self, arch: Arch) -> list[Arch]:
        """All edit-distance-1 neighbours: each edge changed to each other op."""
        self.check(arch)
        out = []
        for k in range(len(arch)):
            for op in self.ops:
                if op != arch[k]:
                    out.append(arch[:k] + (op,) + arch[k + 1 :])
        return out
