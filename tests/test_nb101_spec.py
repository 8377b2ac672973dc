"""NB101 cell specs: the official hash, pruning, strings, sampling and mutations."""

from __future__ import annotations

import ast
import itertools
import json

import numpy as np
import pytest

from estbench.errors import BadInput
from estbench.spaces.nb101.spec import (
    INPUT,
    OPS,
    OUTPUT,
    Spec,
    cell_graph,
    hash_module,
    is_valid,
    labels,
    module_hash,
    mutation_kind,
    mutations,
    op_counts,
    parse,
    parse_raw,
    prune,
    pruned,
    random_spec,
    to_str,
)

C3, C1, MP = OPS
# two rows of nasbench_vis_1k.json (official keys), written out as facts
KNOWN = [
    (
        "0100110.0010000.0001001.0000010.0000010.0000001.0000000",
        (INPUT, C3, MP, C3, C3, C1, OUTPUT),
        "00005c142e6f48ac74fdcf73e3439874",
    ),
]


BASE = "01100.00010.00001.00001.00000"  # 0->1, 0->2, 1->3, 2->4, 3->4


def _spec(rows: str, ops) -> Spec:
    return parse(rows + ":" + ",".join(ops))


def test_known_hash():
    for rows, ops, key in KNOWN:
        assert module_hash(_spec(rows, ops)) == key


def _permuted(spec: Spec, perm: list[int]) -> tuple[list[list[int]], list[int]]:
    """Vertex v of ``spec`` becomes vertex perm[v]."""
    n = spec.num_vertices
    m = [[0] * n for _ in range(n)]
    for i, j in spec.edges():
        m[perm[i]][perm[j]] = 1
    lab = [0] * n
    for v, x in enumerate(labels(spec)):
        lab[perm[v]] = x
    return m, lab


def test_hash_is_invariant_to_vertex_permutations():
    rng = np.random.default_rng(0)
    for _ in range(40):
        spec = random_spec(rng)
        key = module_hash(spec)
        n = spec.num_vertices
        for perm in itertools.islice(itertools.permutations(range(n)), 0, None, 97):
            m, lab = _permuted(spec, list(perm))
            assert hash_module(m, lab) == key
        # every other topological order of the vertices is an upper-triangular spec too
        for perm in itertools.permutations(range(1, n - 1)):
            full = [0, *perm, n - 1]
            if all(full[i] < full[j] for i, j in spec.edges()) and list(full) != list(range(n)):
                m, _ = _permuted(spec, full)
                ops = [""] * n
                for v in range(n):
                    ops[full[v]] = spec.ops[v]
                other = parse(to_str(Spec(tuple(map(tuple, m)), tuple(ops))))
                assert module_hash(other) == key  # (itself when the swap is an automorphism)
                break


def test_hash_separates_ops_and_edges():
    spec = _spec(BASE, (INPUT, C3, C1, MP, OUTPUT))
    other = _spec(BASE, (INPUT, C1, C3, MP, OUTPUT))
    assert module_hash(spec) != module_hash(other)
    swapped = _spec("01100.00001.00010.00001.00000", (INPUT, C1, C3, MP, OUTPUT))
    assert module_hash(swapped) == module_hash(spec)  # vertices 1 and 2 renamed


def test_prune_drops_dangling_vertices_like_modelspec():
    m = np.zeros((7, 7), dtype=np.int8)
    for i, j in [(0, 1), (1, 6), (0, 2), (2, 3), (4, 6), (0, 5)]:  # 3: no output, 4: no input, 5: no output
        m[i, j] = 1
    ops = [INPUT, C3, C1, MP, C3, C1, OUTPUT]
    spec = prune(m, ops)
    assert spec == Spec(((0, 1, 0), (0, 0, 1), (0, 0, 0)), (INPUT, C3, OUTPUT))
    assert module_hash(Spec(tuple(map(tuple, m.tolist())), tuple(ops))) == module_hash(spec)
    assert prune(spec.matrix, spec.ops) == spec and pruned(spec) is spec
    with pytest.raises(BadInput, match="no path"):
        prune([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [INPUT, C3, OUTPUT])


def test_strings_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(200):
        spec = random_spec(rng)
        text = to_str(spec)
        assert parse(text) == spec and to_str(parse(text)) == text
    text = "0110000.0001000.0000101.0000010.0000001.0000001.0000000:input," + ",".join([C3, C1, MP, C3, C3]) + ",output"
    assert to_str(parse(text)) == text
    assert parse("  " + text + "\n") == parse(text)


@pytest.mark.parametrize(
    "text, why",
    [
        ("01.00", "expected 'ROWS:OPS'"),
        ("01.0x:input,output", "0/1 digits"),
        ("011.001:input,conv3x3-bn-relu,output", "not square"),
        ("01.00:input,conv3x3-bn-relu,output", "2 vertices but 3 ops"),
        ("010.001.100:input,conv3x3-bn-relu,output", "backward edge"),
        ("110.001.000:input,conv3x3-bn-relu,output", "self loop"),
        ("01.10:input,output", "backward edge"),
        (
            "01111111.00000001.00000001.00000001.00000001.00000001.00000001.00000000:"
            + ",".join([INPUT] + [C3] * 6 + [OUTPUT]),
            "8 vertices",
        ),
        ("0:input", "1 vertices"),
        ("011.001.000:input,conv5x5,output", "unknown op 'conv5x5'"),
        ("011.001.000:conv3x3-bn-relu,conv3x3-bn-relu,output", "first op must be 'input'"),
        ("011.001.000:input,conv3x3-bn-relu,input", "last 'output'"),
        ("010.000.000:input,conv3x3-bn-relu,output", "no path"),
        ("0101.0000.0001.0000:input,conv3x3-bn-relu,maxpool3x3,output", "not pruned: vertices 1, 2 are not"),
        (
            "0111111.0011111.0001111.0000111.0000011.0000001.0000000:" + ",".join([INPUT] + [C3] * 5 + [OUTPUT]),
            "21 edges",
        ),
    ],
)
def test_parse_errors_are_one_clear_line(text, why):
    with pytest.raises(BadInput) as err:
        parse(text)
    msg = str(err.value)
    assert why in msg and "\n" not in msg and msg.startswith("bad NB101 cell")


def test_parse_raw_accepts_unpruned_cells():
    text = "0101.0000.0001.0000:input,conv3x3-bn-relu,maxpool3x3,output"
    spec = parse_raw(text)
    assert to_str(spec) == text and to_str(pruned(spec)) == "01.00:input,output"


def test_is_valid_follows_the_official_checks():
    ten = Spec(tuple(tuple(1 if j > i else 0 for j in range(5)) for i in range(5)), (INPUT, C3, C3, C3, OUTPUT))
    assert sum(map(sum, ten.matrix)) == 10 and not is_valid(ten)
    assert not is_valid(Spec(((0, 0), (0, 0)), (INPUT, OUTPUT)))
    assert is_valid(Spec(((0, 1), (0, 0)), (INPUT, OUTPUT)))
    assert not is_valid(Spec(((0, 1, 0), (0, 0, 1), (0, 0, 0)), (INPUT, "conv5x5", OUTPUT)))
    # 10 edges, but vertex 5 has no output: pruned, 5 edges remain (the official order)
    m = [[0] * 7 for _ in range(7)]
    for i, j in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (0, 5), (1, 5), (2, 5), (3, 5), (4, 5)]:
        m[i][j] = 1
    assert is_valid(Spec(tuple(map(tuple, m)), (INPUT, *[C3] * 5, OUTPUT)))


def test_random_spec_is_the_official_rejection_sampler():
    a = [to_str(random_spec(np.random.default_rng(7))) for _ in range(3)]
    assert len(set(a)) == 1  # one seed, one draw
    rng = np.random.default_rng(3)
    draws = [random_spec(rng) for _ in range(300)]
    assert all(is_valid(s) and parse(to_str(s)) == s for s in draws)
    assert len({module_hash(s) for s in draws}) > 120  # biased to small cells, as the official one
    assert {op for s in draws for op in s.ops[1:-1]} == set(OPS)


def _padded_neighbours(spec: Spec) -> set[Spec]:
    """Brute force: pad to 7 vertices (isolated ones before the output), flip each of the
    21 cells or change each of the 5 ops, prune, keep valid ones other than ``spec``."""
    n, pad = spec.num_vertices, 7 - spec.num_vertices
    keep = list(range(n - 1)) + [6]  # old vertex -> new position
    m = [[0] * 7 for _ in range(7)]
    for i, j in spec.edges():
        m[keep[i]][keep[j]] = 1
    ops = list(spec.ops[:-1]) + [C1] * pad + [OUTPUT]
    out = set()
    for i in range(7):
        for j in range(i + 1, 7):
            m[i][j] ^= 1
            cand = Spec(tuple(map(tuple, m)), tuple(ops))
            m[i][j] ^= 1
            if is_valid(cand):
                out.add(pruned(cand))
    for v in range(1, 6):
        for op in OPS:
            if op != ops[v]:
                cand = Spec(tuple(map(tuple, m)), tuple(ops[:v] + [op] + ops[v + 1 :]))
                if is_valid(cand):
                    out.add(pruned(cand))
    out.discard(spec)
    return out


def test_mutations_are_the_padded_seven_vertex_neighbours():
    rng = np.random.default_rng(5)
    for _ in range(60):
        spec = random_spec(rng)
        nbs = mutations(spec)
        assert len(nbs) == len(set(nbs)) and spec not in nbs
        assert set(nbs) == _padded_neighbours(spec)
        for nb in nbs:
            kind = mutation_kind(spec, nb)
            assert kind in ("edge:+", "edge:-") or kind.startswith("op:")
            assert is_valid(nb)


def test_mutation_kinds():
    spec = _spec(BASE, (INPUT, C3, C1, MP, OUTPUT))
    nbs = mutations(spec)
    kinds = [mutation_kind(spec, nb) for nb in nbs]
    assert "op:conv3x3-bn-relu->maxpool3x3" in kinds and "edge:+" in kinds and "edge:-" in kinds
    # 5 additions; removing 0->1, 1->3 or 3->4 prunes 1 and 3 (one neighbour), 0->2 or 2->4
    # prunes 2 (another); 3 intermediate vertices x 2 other ops
    assert kinds.count("edge:+") == 5 and kinds.count("edge:-") == 2 and len(kinds) == 13
    dropped = _spec("0100.0010.0001.0000", (INPUT, C3, MP, OUTPUT))  # edge 0->2 removed: vertex 2 pruned
    assert dropped in nbs and mutation_kind(spec, dropped) == "edge:-"
    far = _spec(BASE, (INPUT, MP, MP, MP, OUTPUT))
    with pytest.raises(ValueError, match="not a mutation pair"):
        mutation_kind(spec, far)


def test_op_counts_and_cell_graph():
    spec = _spec(BASE, (INPUT, C3, C1, C3, OUTPUT))
    assert op_counts(spec) == {C3: 2, C1: 1, MP: 0}
    g = cell_graph(spec)
    assert g.name == "cell" and g.nodes == spec.ops
    assert g.edges == ((0, 1, ""), (0, 2, ""), (1, 3, ""), (2, 4, ""), (3, 4, ""))


# ---- real data -----------------------------------------------------------------------
def _vis_spec(adjacency, codes, mapping=OPS) -> Spec:
    keep = [i for i, c in enumerate(codes) if c != -3]  # -3 pads cells under 7 vertices
    matrix = [[int(adjacency[i][j]) for j in keep] for i in keep]
    ops = [INPUT if codes[i] == -1 else OUTPUT if codes[i] == -2 else mapping[codes[i]] for i in keep]
    return prune(matrix, ops)


@pytest.mark.data
def test_module_hash_equals_every_key_of_the_1k_file(shared_data):
    d = json.loads((shared_data / "nb101" / "nasbench_vis_1k.json").read_text())
    rows = list(zip(d["adjacency"], d["operations"], d["key"]))
    assert len(rows) == 1000
    # op codes 0, 1, 2 are OPS in order (conv3x3, conv1x1, maxpool): only that mapping matches
    hits = {m: sum(module_hash(_vis_spec(a, o, m)) == k for a, o, k in rows) for m in itertools.permutations(OPS)}
    assert hits.pop(OPS) == 1000 and max(hits.values()) < 50
    for a, o, _ in rows:  # the file stores pruned cells: they parse and round-trip
        spec = _vis_spec(a, o)
        assert parse(to_str(spec)) == spec


@pytest.mark.data
def test_naslib_archs_hash_into_the_vis_keys(shared_data):
    nb = shared_data / "nb101"
    d1 = json.loads((nb / "nasbench_vis_1k.json").read_text())
    d20 = json.loads((nb / "nasbench_vis_20k.json").read_text())
    acc = dict(zip(d20["key"], d20["108_final_validation_accuracy"]))
    acc.update(zip(d1["key"], d1["108_final_validation_accuracy"]))
    zc = json.loads((nb / "naslib_zc_nb101.json").read_text())["nasbench101"]["cifar10"]
    names = {0: INPUT, 1: OUTPUT, 2: MP, 3: C1, 4: C3}
    found = []
    for key, row in zc.items():
        flat = ast.literal_eval(key)  # 7x7 row-major un-pruned matrix + 7 op codes
        spec = prune([flat[7 * i : 7 * i + 7] for i in range(7)], [names[c] for c in flat[49:]])
        h = module_hash(spec)
        if h in acc:
            found.append(abs(row["val_accuracy"] / 100 - acc[h]))
    assert len(zc) == 500 and len(found) == 94
    assert max(found) < 0.015  # one seed's validation accuracy vs the file's
