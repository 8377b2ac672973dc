"""The NB201 cell space: parsing, isomorphism keys, mutations (no data needed)."""

from collections import Counter

import pytest

from estbench.errors import BadInput
from estbench.spaces import get_space

GOOD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201")


@pytest.fixture(scope="module")
def all_archs(nb201):
    return nb201.cell.enumerate()


def test_parse_roundtrip(nb201):
    arch = nb201.parse(GOOD)
    assert arch == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    assert nb201.to_str(arch) == GOOD


@pytest.mark.parametrize(
    "text, reason",
    [
        ("nor_conv_3x3~0|+|", "must start and end"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "2 nodes"),
        (
            "|conv~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "unknown op 'conv'",
        ),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 2 has 1 incoming"),
        (
            "|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "reads from node 1",
        ),
        (
            "|nor_conv_3x3|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "not 'op~source'",
        ),
    ],
)
def test_parse_rejects_with_reason(nb201, text, reason):
    with pytest.raises(BadInput, match=reason):
        nb201.parse(text)


def test_space_size_and_class_counts(nb201, all_archs):
    assert len(all_archs) == 15625 == len(set(all_archs))
    assert len({nb201.canonical(a, "iso") for a in all_archs}) == 6466  # the paper's count
    assert len({nb201.canonical(a, "computational") for a in all_archs}) == 5390
    assert sum(nb201.is_degenerate(a) for a in all_archs) == 341


def test_iso_key_examples(nb201):
    # swapping which input feeds a summed node is isomorphic; a dead conv (fed by zero) is
    # erased by the computational key but kept by the benchmark's key
    a = nb201.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|")
    b = nb201.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|")
    assert nb201.canonical(a) != nb201.canonical(b)
    c = nb201.parse("|none~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|")
    d = nb201.parse("|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|")
    assert nb201.canonical(c) == nb201.canonical(d)  # node 1 is zero, so its out-ops do not matter
    e = nb201.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    f = nb201.parse("|none~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    assert nb201.canonical(e, "computational") == nb201.canonical(f, "computational")
    assert nb201.is_degenerate(nb201.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))
    assert not nb201.is_degenerate(e)


def test_isomorphic_archs_share_structure_counts_only_via_keys(nb201, all_archs):
    # the iso key never merges archs with different live op multisets of the final node
    groups = Counter(nb201.canonical(a) for a in all_archs)
    assert max(groups.values()) > 1 and min(groups.values()) == 1


def test_mutations(nb201):
    arch = nb201.parse(GOOD)
    muts = nb201.mutations(arch)
    assert len(muts) == 24 == len(set(muts))
    assert all(sum(x != y for x, y in zip(arch, m)) == 1 for m in muts)
    assert arch not in muts


def test_toy_space(toy):
    archs = toy.arch_list(None)
    assert len(archs) == 27
    assert toy.parse(archs[0]) == ("none", "none", "none")


def test_live_edges(nb201):
    # node 2 has no path to the output: its in-edges are dead; node 1 is unreachable
    arch = nb201.parse("|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|")
    assert nb201.cell.live_edges(arch) == (False, False, False, True, False, False)
    full = nb201.parse(GOOD)
    assert all(nb201.cell.live_edges(full)[k] for k, op in enumerate(full) if op != "none")
    p_all, p_live = nb201.structural(arch, "params"), nb201.structural(arch, "params", live_only=True)
    assert p_all - p_live == 5 * (2336 + 9280 + 36992) + 5 * (16 * 16 + 32 + 32 * 32 + 64 + 64 * 64 + 128)
