"""Estimators, registered by short name with their metadata:

- ``kind``: structural | zeroshot | oneshot
- ``higher_is_better``: how criteria rank the score
- ``settings``: the config fields that change its value (they enter the config hash)
- ``needs``: the pass it needs (structural estimators need none)

Entries are lazy ``module:attr`` strings, so listing estimators imports no torch."""

from estbench.registry import Registry

ESTIMATORS: Registry = Registry("estimator")

_SHAPE = ("c", "n", "num_classes", "resolution")
_STRUCTURAL = {
    "params": (_SHAPE[:3], "number of parameters of the standalone network (the benchmark's count)"),
    "flops": (_SHAPE, "multiply-adds of one forward pass of the standalone network, counted by fvcore"),
    "relu": (("c", "n"), "number of ReLU layers of the standalone network"),
    "params_live": (_SHAPE[:3], "parameters of ops on input-to-output paths only (the paper's Table A9 'Param')"),
    "flops_live": (_SHAPE, "fvcore multiply-adds of ops on input-to-output paths only"),
    "relu_live": (("c", "n"), "ReLU layers on input-to-output paths only (the paper's Table A9 'relu')"),
}
for _name, (_settings, _description) in _STRUCTURAL.items():
    ESTIMATORS.register(
        _name, f"estbench.estimators.structural:{_name}", kind="structural", higher_is_better=True,
        settings=_settings, needs="structure", description=_description,
    )  # fmt: skip


ESTIMATORS.register(
    "os_acc", "estbench.oneshot_runs:score_one_shot", kind="oneshot", higher_is_better=True, settings=(),
    needs="supernet", description="accuracy of the architecture inside a trained supernet (train-mode BN)",
)  # fmt: skip
ESTIMATORS.register(
    "os_loss", "estbench.oneshot_runs:score_one_shot", kind="oneshot", higher_is_better=False, settings=(),
    needs="supernet", description="cross-entropy loss of the architecture inside a trained supernet",
)  # fmt: skip


def estimator_names(kind: str | None = None) -> list[str]:
    return ESTIMATORS.names(kind=kind) if kind else ESTIMATORS.names()


def _register_zero_shot() -> None:
    """Zero-shot measures declare their metadata in ``zeroshot.SPECS`` (no torch import)."""
    from estbench.estimators import zeroshot

    for name, meta in getattr(zeroshot, "SPECS", {}).items():
        ESTIMATORS.register(name, f"estbench.estimators.zeroshot.measures:{name}", kind="zeroshot", **meta)
    # derived estimators are computed from other estimators' stored scores
    for name, meta in getattr(zeroshot, "DERIVED", {}).items():
        ESTIMATORS.register(name, f"estbench.analysis.{name}:compute_{name}", kind="zeroshot", **meta)


_register_zero_shot()
