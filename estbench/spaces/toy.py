"""``toy``: a 3-node, 3-op cell space (27 architectures) on 8x8 inputs with 4 channels
and one cell per stage. Same code paths as NB201, small enough for unit tests."""

from estbench.spaces.cell import CellSearchSpace, CellSpace


class Toy(CellSearchSpace):
    name = "toy"
    cell = CellSpace("toy", ("none", "skip_connect", "nor_conv_3x3"), n_nodes=3)
    default_shape = {"c": 4, "n": 1, "num_classes": 10, "resolution": 8}


SPACE = Toy()
