"""``SearchSpace.cell_graphs``: the drawable form of an architecture (the report's cell
drawer reads only it). NB201 strings become 4 nodes and 6 edges j -> i with the ops of
the string; the default of a space without a drawing is []."""

from __future__ import annotations

import dataclasses

import pytest

from estbench.errors import BadInput
from estbench.spaces import get_space
from estbench.spaces.base import CellGraph, SearchSpace

NB201_ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def test_nb201_string_becomes_its_six_edges():
    (g,) = get_space("nb201").cell_graphs(NB201_ARCH)
    assert g.name == "cell"
    assert g.nodes == ("0", "1", "2", "3")
    assert g.edges == (
        (0, 1, "nor_conv_3x3"),
        (0, 2, "none"),
        (1, 2, "skip_connect"),
        (0, 3, "avg_pool_3x3"),
        (1, 3, "nor_conv_1x1"),
        (2, 3, "nor_conv_3x3"),
    )


def test_edges_round_trip_into_the_string():
    space = get_space("nb201")
    for arch in space.cell.enumerate()[::1000]:
        text = space.to_str(arch)
        (g,) = space.cell_graphs(text)
        by_edge = {(j, i): op for j, i, op in g.edges}
        rebuilt = "+".join(
            "|" + "|".join(f"{by_edge[(j, i)]}~{j}" for j in range(i)) + "|" for i in range(1, len(g.nodes))
        )
        assert rebuilt == text
        assert all(j < i for j, i, _ in g.edges)


def test_toy_space_is_a_three_node_cell():
    space = get_space("toy")
    text = space.arch_list(None)[5]
    (g,) = space.cell_graphs(text)
    assert g.nodes == ("0", "1", "2")
    assert [op for _, _, op in g.edges] == list(space.parse(text))
    assert [(j, i) for j, i, _ in g.edges] == [(0, 1), (0, 2), (1, 2)]


def test_malformed_string_is_bad_input():
    with pytest.raises(BadInput, match="malformed nb201"):
        get_space("nb201").cell_graphs("|nor_conv_3x3~0|")


def test_default_is_no_drawing_and_graphs_are_frozen():
    assert SearchSpace().cell_graphs("anything") == []
    g = CellGraph("cell", ("0", "1"), ((0, 1, "skip_connect"),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.name = "normal"  # type: ignore[misc]
