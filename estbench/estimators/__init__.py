"""Estimators, registered by short name with their metadata:

- ``kind``: structural | zeroshot | oneshot
- ``higher_is_better``: how criteria rank the score
- ``settings``: the config fields that change its value (they enter the config hash)
- ``needs``: the pass it needs (structural estimators need none)

Entries are lazy ``module:attr`` strings, so listing estimators imports no torch."""

from estbench.registry import Registry

ESTIMATORS: Registry = Registry("estimator")

_SHAPE = ("c", "n", "num_classes", "resolution")
ESTIMATORS.register(
    "params", "estbench.estimators.structural:params", kind="structural", higher_is_better=True,
    settings=_SHAPE[:3], needs="structure", description="number of parameters of the standalone network",
)  # fmt: skip
ESTIMATORS.register(
    "flops", "estbench.estimators.structural:flops", kind="structural", higher_is_better=True,
    settings=_SHAPE, needs="structure", description="multiply-adds of one forward pass, counted by fvcore",
)  # fmt: skip
ESTIMATORS.register(
    "relu", "estbench.estimators.structural:relu", kind="structural", higher_is_better=True,
    settings=("c", "n"), needs="structure", description="number of ReLU layers of the standalone network",
)  # fmt: skip


def estimator_names(kind: str | None = None) -> list[str]:
    return ESTIMATORS.names(kind=kind) if kind else ESTIMATORS.names()


def _register_zero_shot() -> None:
    """Zero-shot measures declare their metadata in ``zeroshot.SPECS`` (no torch import)."""
    from estbench.estimators import zeroshot

    for name, meta in getattr(zeroshot, "SPECS", {}).items():
        ESTIMATORS.register(name, f"estbench.estimators.zeroshot.measures:{name}", kind="zeroshot", **meta)


_register_zero_shot()
