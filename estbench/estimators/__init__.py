"""Estimators, registered by short name with their metadata:

- ``kind``: structural | zeroshot | oneshot
- ``higher_is_better``: how criteria rank the score
- ``settings``: the config fields that change its value (they enter the config hash)
- ``needs``: the pass it needs (structural estimators need none)
- zero-shot only: ``data_free`` (batch 0 only), ``all_batches`` (one value over all
  batches), ``derived`` (computed from other estimators' stored scores: vote, vote_borda)

Structural and one-shot entries are lazy ``module:attr`` strings; zero-shot measures
register themselves (``zeroshot.register_measure``) from torch-free modules, so listing
estimators imports no torch."""

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
    "os_acc", "estbench.runs.oneshot:OneShotJob", kind="oneshot", higher_is_better=True, settings=(),
    needs="supernet", description="accuracy of the architecture inside a trained supernet (train-mode BN)",
)  # fmt: skip
ESTIMATORS.register(
    "os_loss", "estbench.runs.oneshot:OneShotJob", kind="oneshot", higher_is_better=False, settings=(),
    needs="supernet", description="cross-entropy loss of the architecture inside a trained supernet",
)  # fmt: skip

# A vote needs the whole population, so vote and vote_borda are computed at analysis time
# from the stored scores of their experts (estbench.runs.vote), never by the zero-shot engine.
ESTIMATORS.register(
    "vote", "estbench.runs.vote:score_vote", kind="zeroshot", derived=True, needs="analysis",
    higher_is_better=True, settings=(), data_free=False, all_batches=False,
    description="the paper's vote: pairwise majority of expert ZSEs (NB201: relu_logdet, jacob_cov, synflow); "
    "score = archs beaten (Copeland)",
)  # fmt: skip
ESTIMATORS.register(
    "vote_borda", "estbench.runs.vote:score_vote", kind="zeroshot", derived=True, needs="analysis",
    higher_is_better=True, settings=(), data_free=False, all_batches=False,
    description="Borda count of vote's experts: their mean percent rank over the population",
)  # fmt: skip

# Rank aggregates of the newer proxies' authors (AZ-NAS, VKDNW, TE-NAS), also computed
# from stored scores over the population (estbench.runs.aggregate); listed here by name
# so that registering them imports nothing.
for _name, _description in (
    ("az_nas", "AZ-NAS: sum of log(rank/N) of flops, az_expressivity, az_progressivity, az_trainability"),
    ("vkdnw_agg", "VKDNW_agg: sum of log(rank/N) of flops, az_expressivity, az_trainability, jacob_cov, vkdnw_single"),
    ("tenas", "TE-NAS: minus the sum of the dense ranks of ntk_cond (ascending) and linear_regions (descending)"),
):
    ESTIMATORS.register(
        _name, "estbench.runs.aggregate:score_aggregates", kind="zeroshot", derived=True, needs="analysis",
        higher_is_better=True, settings=(), data_free=False, all_batches=False, description=_description,
    )  # fmt: skip

import estbench.estimators.zeroshot.measures  # noqa: E402,F401  (registers the built-in measures)
