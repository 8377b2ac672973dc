"""Search spaces, registered by short name and imported only when used. A new space is
a module or package here implementing ``base.SearchSpace`` plus one ``SPACES.register``
line below (cell spaces subclass ``cell.CellSearchSpace``)."""

from estbench.registry import Registry
from estbench.spaces.base import SearchSpace

SPACES: Registry[SearchSpace] = Registry("space")
SPACES.register(
    "nb201", "estbench.spaces.nb201:SPACE", description="NAS-Bench-201 / NATS-Bench topology (15,625 archs)"
)
SPACES.register(
    "nb101",
    "estbench.spaces.nb101.search_space:NB101_SPACE",
    description="NAS-Bench-101 (every cell of <= 7 vertices, 9 edges; 423,624 graphs; archs from truth or sampled)",
)
SPACES.register(
    "nb101-1shot3",
    "estbench.spaces.nb101.search_space:ONESHOT3_SPACE",
    description="NAS-Bench-1shot1 search space 3 as the paper uses it (14,580 archs, 3 ops on 5 nodes)",
)
SPACES.register(
    "nb301",
    "estbench.spaces.nb301.search_space:SPACE",
    description="NAS-Bench-301, the DARTS space (normal + reduction cell, 7 ops; ~10^18 archs, from truth or sampled)",
)
SPACES.register("toy", "estbench.spaces.toy:SPACE", description="27-arch test space on 8x8 inputs")


def get_space(name: str) -> SearchSpace:
    return SPACES.get(name)


def find_space(name: str) -> SearchSpace | None:
    """The registered space ``name``, or None (a store copied from an installation with
    a space this one lacks: analyses then go without the space's preferences)."""
    from estbench.errors import UnknownName

    try:
        return get_space(name)
    except UnknownName:
        return None
