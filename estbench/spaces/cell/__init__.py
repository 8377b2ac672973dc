"""Cell spaces in the NB201 style (NB201, toy): ``space`` (the DAG, strings,
isomorphism; no torch), ``network`` (the standalone network), ``cost`` (params, FLOPs,
ReLUs), ``supernet`` (the weight-sharing network), ``samplers`` (how it is trained),
``presets`` and ``search_space`` (``CellSearchSpace``, the protocol for all of them)."""

from estbench.spaces.cell.search_space import CellSearchSpace
from estbench.spaces.cell.space import Arch, CellSpace

__all__ = ["Arch", "CellSearchSpace", "CellSpace"]
