"""NB301 genotypes: the four string forms and their round trips, isomorphism, sampling,
mutations and the bad-input lines."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from estbench.errors import BadInput
from estbench.spaces.nb301 import genotype as gt

# DARTS (2nd order) as the DARTS repository's genotypes.py writes it
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
DARTS_V2_STR = (
    "normal:|sep_conv_3x3~0|sep_conv_3x3~1|+|sep_conv_3x3~0|sep_conv_3x3~1|+|skip_connect~0|sep_conv_3x3~1|"
    "+|skip_connect~0|dil_conv_3x3~2|;reduce:|max_pool_3x3~0|max_pool_3x3~1|+|max_pool_3x3~1|skip_connect~2|"
    "+|max_pool_3x3~0|skip_connect~2|+|max_pool_3x3~1|skip_connect~2|"
)
# the same architecture as NB301's ConfigSpace writes it (edges numbered per node and input)
P = "NetworkSelectorDatasetInfo:darts:"
DARTS_V2_CONFIG = {
    f"{P}edge_normal_0": "sep_conv_3x3", f"{P}edge_normal_1": "sep_conv_3x3",
    f"{P}inputs_node_normal_3": "0_1", f"{P}edge_normal_2": "sep_conv_3x3", f"{P}edge_normal_3": "sep_conv_3x3",
    f"{P}inputs_node_normal_4": "0_1", f"{P}edge_normal_5": "skip_connect", f"{P}edge_normal_6": "sep_conv_3x3",
    f"{P}inputs_node_normal_5": "0_2", f"{P}edge_normal_9": "skip_connect", f"{P}edge_normal_11": "dil_conv_3x3",
    f"{P}edge_reduce_0": "max_pool_3x3", f"{P}edge_reduce_1": "max_pool_3x3",
    f"{P}inputs_node_reduce_3": "1_2", f"{P}edge_reduce_3": "max_pool_3x3", f"{P}edge_reduce_4": "skip_connect",
    f"{P}inputs_node_reduce_4": "0_2", f"{P}edge_reduce_5": "max_pool_3x3", f"{P}edge_reduce_7": "skip_connect",
    f"{P}inputs_node_reduce_5": "1_2", f"{P}edge_reduce_10": "max_pool_3x3", f"{P}edge_reduce_11": "skip_connect",
    "CreateImageDataLoader:batch_size": 96, "NetworkSelectorDatasetInfo:darts:init_channels": 32,
}  # fmt: skip
# NASLib's compact key of it, operands in DARTS order (NASLib keeps the genotype's order)
DARTS_V2_NASLIB = (
    "[[(0, 3), (1, 3), (0, 3), (1, 3), (1, 3), (0, 2), (0, 2), (2, 5)], "
    "[(0, 0), (1, 0), (2, 2), (1, 0), (0, 0), (2, 2), (2, 2), (1, 0)]]"
)


def test_every_form_reads_the_same_genotype():
    g = gt.parse(DARTS_V2)
    assert gt.to_str(g) == DARTS_V2_STR
    assert gt.parse(DARTS_V2_STR) == g
    assert gt.from_config(DARTS_V2_CONFIG) == g
    assert gt.parse(json.dumps(DARTS_V2_CONFIG)) == g
    assert gt.from_naslib(DARTS_V2_NASLIB) == g
    assert gt.parse(DARTS_V2_NASLIB) == g
    # YAHPO writes ':' as _COLON_
    assert gt.from_config({k.replace(":", "_COLON_"): v for k, v in DARTS_V2_CONFIG.items()}) == g
    assert gt.parse(DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)")) == g


def test_round_trips_on_random_genotypes():
    rng = np.random.default_rng(3)
    for _ in range(200):
        g = gt.sample(rng)
        assert gt.parse(gt.to_str(g)) == g
        assert gt.parse(gt.to_darts(g)) == g
        assert gt.parse(gt.to_naslib(g)) == g
        assert gt.from_config(gt.to_config(g)) == g
        cfg = gt.to_config(g)
        assert len(cfg) == 2 * (8 + 3)  # 8 active edges and 3 input choices per cell


def test_operand_order_inside_a_node_does_not_matter():
    swapped = DARTS_V2.replace("('sep_conv_3x3', 1), ('skip_connect', 0)", "('skip_connect', 0), ('sep_conv_3x3', 1)")
    assert swapped != DARTS_V2
    assert gt.parse(swapped) == gt.parse(DARTS_V2)


def test_canonical_merges_renumbered_nodes_only():
    # nodes 0 and 1 both read only the cell inputs: swapping them is the same cell
    a = gt.make(
        [("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("skip_connect", 0), ("max_pool_3x3", 1),
         ("dil_conv_3x3", 2), ("avg_pool_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 4)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4,
    )  # fmt: skip
    b = gt.make(
        [("skip_connect", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 1),
         ("avg_pool_3x3", 2), ("dil_conv_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 4)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4,
    )  # fmt: skip
    assert a != b
    assert gt.canonical(a) == gt.canonical(b)
    # node 1 reads node 0: they cannot swap, so changing which one carries an op is another cell
    c = gt.make(
        [("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("skip_connect", 0), ("max_pool_3x3", 2)]
        + [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 2,
        [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4,
    )
    d = gt.make(
        [("skip_connect", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2)]
        + [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 2,
        [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4,
    )
    assert gt.canonical(c) != gt.canonical(d)
    # canonical is a class invariant: the key of the key is itself
    assert gt.canonical(gt.parse(gt.canonical(a))) == gt.canonical(a)


def test_sample_is_uniform_over_the_configuration_space():
    rng = np.random.default_rng(0)
    inputs = Counter()
    ops = Counter()
    for _ in range(3000):
        g = gt.sample(rng)
        inputs[tuple(i for _, i in g.normal[6:8])] += 1  # node 3: 10 input pairs
        ops.update(op for op, _ in g.reduce)
    assert len(inputs) == 10 and min(inputs.values()) > 3000 / 10 * 0.75
    assert len(ops) == 7 and min(ops.values()) > 3000 * 8 / 7 * 0.9


def test_mutations_are_every_single_edit():
    g = gt.parse(DARTS_V2)
    nbs = gt.mutations(g)
    # 16 pairs x 6 other ops + 2 cells x 2 operands x (0 + 1 + 2 + 3) other inputs
    assert len(nbs) == len(set(nbs)) == 16 * 6 + 2 * 2 * 6
    kinds = Counter(gt.mutation_kind(g, n) for n in nbs)
    assert kinds["input"] == 24
    assert kinds["sep_conv_3x3->dil_conv_5x5"] == 5  # the 5 sep_conv_3x3 of the normal cell
    for n in nbs:
        assert g in gt.mutations(n)  # symmetric
        assert gt.to_str(n) != gt.to_str(g)
    with pytest.raises(BadInput, match="not a neighbour"):
        gt.mutation_kind(g, g)


def test_op_counts():
    counts = gt.op_counts(gt.parse(DARTS_V2))
    assert counts["sep_conv_3x3"] == 5 and counts["max_pool_3x3"] == 5 and counts["skip_connect"] == 5
    assert sum(counts.values()) == 16


@pytest.mark.parametrize(
    "text, message",
    [
        (DARTS_V2.replace("dil_conv_3x3", "conv_7x7"), r"node 3 of the normal cell: unknown op 'conv_7x7'"),
        (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), r"node 3 of the normal cell takes input 5"),
        (DARTS_V2.replace("('skip_connect', 0), ('dil_conv_3x3', 2)", "('skip_connect', 2), ('dil_conv_3x3', 2)"),
         "takes input 2 twice"),
        (DARTS_V2.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=[4, 5]"), "reduce_concat is"),
        (DARTS_V2_STR.replace("+|skip_connect~0|dil_conv_3x3~2|", ""), "the normal cell has 3 nodes"),
        (DARTS_V2_STR.replace("sep_conv_3x3~0", "sep_conv_3x3-0", 1), "is not op~input"),
        (DARTS_V2_NASLIB.replace("(2, 5)", "(2, 9)"), r"op index 9 is not 0..6"),
        ("[[(0, 3)], [(0, 3)]]", "the normal cell has 1"),
        ('{"NetworkSelectorDatasetInfo:darts:edge_normal_0": "sep_conv_3x3"}', "edge_normal_1 is not set"),
        ("|nor_conv_3x3~0|+|", "not an NB301 architecture"),
        ("Genotype(normal=[1, 2", "not a DARTS Genotype"),
    ],
)  # fmt: skip
def test_bad_genotypes_say_what_is_wrong(text, message):
    with pytest.raises(BadInput, match=message):
        gt.parse(text)


def test_bad_configurations_say_which_parameter():
    cfg = dict(DARTS_V2_CONFIG)
    cfg[f"{P}edge_normal_4"] = "sep_conv_3x3"  # node 1 takes inputs 0_1: edge 4 (input 2) is inactive
    with pytest.raises(BadInput, match="edge_normal_4 is set but no node's inputs select it"):
        gt.from_config(cfg)
    cfg = dict(DARTS_V2_CONFIG)
    del cfg[f"{P}edge_reduce_11"]
    with pytest.raises(BadInput, match="takes input 2 but edge_reduce_11 is not set"):
        gt.from_config(cfg)
    cfg = dict(DARTS_V2_CONFIG)
    cfg[f"{P}inputs_node_normal_4"] = "0_7"
    with pytest.raises(BadInput, match="inputs_node_normal_4 takes input 7"):
        gt.from_config(cfg)
