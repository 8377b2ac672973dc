"""The passes of the zero-shot engine as data: what each produces for its measures, what
it needs of the one shared forward, what it builds on; and :func:`plan`, which turns a
set of requested measures into the passes to run (the union of their ``needs``).

Torch-free on purpose: measures are registered (and estimators listed) from this
metadata alone; the torch code of each pass is in :mod:`.passes` and
:mod:`.engine`. The outputs below hold tensors, but only as annotations.

A pass runs once per (architecture, batch) however many measures read its output.
Order of :data:`PASSES` = execution order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

    from estbench.estimators.zeroshot.measure import Measure

# Settings that change a data-dependent value (they enter the config hash).
DATA_SETTINGS = ("batch_size", "n_batches", "input", "init", "dtype", "c", "n", "num_classes", "resolution")
# The synflow passes ignore the batch (an all-ones input of the batch's image shape) and
# always run in float64, so neither the data settings nor dtype change their values.
DATA_FREE_SETTINGS = ("init", "c", "n", "num_classes", "resolution")
# zen: Gaussian noise of the batch's shape on a Gaussian re-initialised copy of the network
# (the init setting still names which network: fresh or a supernet candidate)
NOISE_SETTINGS = (*DATA_FREE_SETTINGS, "batch_size")


# ---- what the passes produce (a measure's ``compute`` receives one of these) --------------
@dataclass(frozen=True)
class CEGradients:
    """``ce_backward``: one cross-entropy forward + backward (BN on batch statistics).
    Per conv/linear layer, in ``modules()`` order: the detached weight and dL/dw of the
    mean CE (None for a layer on no path to the loss)."""

    weights: list[Tensor]
    grads: list[Tensor | None]
    # (fan_in, [g_nk per call]) per layer, g_nk = sum_spatial(act * dL/dact) [batch,
    # channels] at the layer's output; only when a requested measure uses "fisher"
    fisher: list[tuple[int, list[Tensor]]] | None = None


@dataclass(frozen=True)
class HessianGradients:
    """``grasp``: H g for g = dL/dw (the Hessian-gradient product on the CE pass)."""

    weights: list[Tensor]
    hessian_grads: list[Tensor | None]


@dataclass(frozen=True)
class InputGradient:
    """``input_grad``: d(sum of logits)/dx, [batch, *image] (zeros when the output
    ignores the input); the batch's labels and the number of logits (epe_nas)."""

    jacobian: Tensor
    labels: Tensor | None = None
    n_classes: int = 0


@dataclass(frozen=True)
class ReluCodes:
    """``relu_forward``: the NASWOT kernel of the binary codes (x > 0) of every hooked
    ReLU input: agreements per pair of images, float64 [batch, batch]."""

    kernel: Tensor


@dataclass(frozen=True)
class SynflowGradients:
    """``synflow`` / ``synflow_bn``: the absolute float64 conv/linear weights and dR/dw,
    R = sum of the output of the |w| network on an all-ones image."""

    weights: list[Tensor]
    grads: list[Tensor | None]


@dataclass(frozen=True)
class BlockStats:
    """``az_blocks`` (AZ-NAS): per block feature F_0..F_L of the shared forward (the stem
    and every cell, :func:`.passes.feature_blocks`), the entropy of its normalised
    channel-covariance spectrum (``entropies``, L+1 values) and, for every consecutive
    pair, the trainability term of the pair's random-projection VJP (``trainability``,
    L values, the last pair first as in the reference)."""

    entropies: list[float]
    trainability: list[float]


@dataclass(frozen=True)
class NTKGram:
    """``ntk`` (TE-NAS): K = J J^T, J the per-image gradients of the summed logits w.r.t.
    every conv/linear weight and BN weight, on the shared train-mode forward (float64
    [batch, batch])."""

    kernel: Tensor


@dataclass(frozen=True)
class ReluPatterns:
    """``relu_patterns`` (SWAP): the number of distinct per-neuron activation patterns
    across the batch (a neuron: one position of one ReLU output of the shared forward;
    its pattern: which images activate it) and the network's parameter count."""

    distinct: int
    n_params: int


@dataclass(frozen=True)
class ModuleCorrelations:
    """``meco``: per module call of a train-mode forward of the batch's first image, the
    smallest eigenvalue of the channel correlation matrix of its output (nan/inf
    entries zeroed, as the reference), and the number of channels."""

    min_eigenvalues: list[float]
    channels: list[int]


@dataclass(frozen=True)
class ZenFeatures:
    """``zen``: on a Gaussian re-initialised copy (conv/linear N(0,1), BN 1/0), the mean
    over images of sum |f(x) - f(x + 0.01 e)| of the pre-global-pool features for
    Gaussian x, e, and the sum over BNs of log sqrt(mean running_var) afterwards."""

    feature_distance: float
    log_bn_scale: float


@dataclass(frozen=True)
class Weights:
    """``weights``: the conv/linear weights as initialised (data-free, no forward)."""

    weights: list[Tensor]


@dataclass(frozen=True)
class RegionCount:
    """``linear_regions`` (TE-NAS): distinct ReLU activation patterns among the
    one-channel 3x3 crops fed to the space's thin network."""

    distinct: int
    samples: int


@dataclass(frozen=True)
class LogitFisher:
    """``vkdnw``: eigenvalues (descending, float64) of F = mean_n J_n^T S_n J_n, J_n the
    per-image Jacobian of the logits w.r.t. entry 0 of the first 128 parameter tensors
    (eval-mode BN with the as-built statistics), S_n = diag(p) - p p^T of the smoothed
    softmax; ``n_tensors``: the number of parameter tensors of the network (aleph)."""

    eigenvalues: Tensor
    n_tensors: int


# ---- the passes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ForwardNeeds:
    """What passes need of the shared train-mode forward of the BN network."""

    grad: bool = False  # record the graph (any backward on it)
    input_grad: bool = False  # the input is a leaf that requires grad
    fisher: bool = False  # tap conv/linear outputs during the CE backward
    relu: bool = False  # hook every ReLU for the code kernel
    double_backward: bool = False  # the CE gradients are differentiated again (grasp)
    blocks: bool = False  # keep the block outputs (stem, cells) with their graph (az_blocks)
    patterns: bool = False  # per-neuron ReLU-output patterns across the batch (relu_patterns)

    def __or__(self, other: ForwardNeeds) -> ForwardNeeds:
        return ForwardNeeds(**{f.name: getattr(self, f.name) or getattr(other, f.name) for f in fields(self)})


@dataclass(frozen=True)
class PassSpec:
    name: str
    produces: type  # the output its measures receive
    forward: ForwardNeeds | None = None  # None: runs on its own, not on the shared forward
    after: str | None = None  # a pass whose results it builds on (planned with it)
    bn: bool = True  # False: on a network without BN (the BN one with BNs bypassed, if built)
    data_free: bool = False  # ignores the batch: computed for batch 0 only
    settings: tuple[str, ...] = DATA_SETTINGS  # the default settings of its measures
    # optional products, made only for measures that ``use`` them, with what they need
    optional: dict[str, ForwardNeeds] = field(default_factory=dict, compare=False)
    # "module:function" of its torch step (None: the engine's own, engine._STEPS)
    step: str | None = None
    # a search-space method the pass needs (linear_regions: the space's thin network)
    requires: str | None = None


_EXTRA = "estbench.estimators.zeroshot.extra"
PASSES: dict[str, PassSpec] = {
    p.name: p
    for p in (
        # passes that backpropagate through the shared graph without freeing it come first
        PassSpec("input_grad", InputGradient, forward=ForwardNeeds(grad=True, input_grad=True)),
        PassSpec(
            "az_blocks", BlockStats, forward=ForwardNeeds(grad=True, blocks=True), step=f"{_EXTRA}.aznas:az_blocks"
        ),
        PassSpec("ntk", NTKGram, forward=ForwardNeeds(grad=True), step=f"{_EXTRA}.tenas:ntk"),
        PassSpec(
            "ce_backward", CEGradients, forward=ForwardNeeds(grad=True), optional={"fisher": ForwardNeeds(fisher=True)}
        ),
        PassSpec("grasp", HessianGradients, forward=ForwardNeeds(grad=True, double_backward=True), after="ce_backward"),
        PassSpec("relu_forward", ReluCodes, forward=ForwardNeeds(relu=True)),
        PassSpec("relu_patterns", ReluPatterns, forward=ForwardNeeds(patterns=True)),
        # passes with forwards of their own
        PassSpec("meco", ModuleCorrelations, step=f"{_EXTRA}.meco:meco"),
        PassSpec("vkdnw", LogitFisher, step=f"{_EXTRA}.vkdnw:vkdnw"),
        PassSpec("linear_regions", RegionCount, step=f"{_EXTRA}.tenas:linear_regions", requires="thin_network"),
        PassSpec("zen", ZenFeatures, data_free=True, settings=NOISE_SETTINGS, step=f"{_EXTRA}.zen:zen"),
        PassSpec("weights", Weights, data_free=True, settings=DATA_FREE_SETTINGS),
        PassSpec("synflow_bn", SynflowGradients, data_free=True, settings=DATA_FREE_SETTINGS),
        PassSpec("synflow", SynflowGradients, bn=False, data_free=True, settings=DATA_FREE_SETTINGS),
    )
}


# ---- the plan -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """The passes a set of measures needs, in execution order, and how to run them."""

    measures: tuple[Measure, ...]
    passes: tuple[str, ...]
    forward: ForwardNeeds | None  # the shared forward (None: no pass runs on it)
    products: frozenset[str]  # optional products wanted
    bn_network: bool  # build the BN network (else only a BN-free one)

    def measures_of(self, pass_name: str) -> list[Measure]:
        return [m for m in self.measures if m.needs == pass_name]

    def affected(self, pass_name: str) -> list[str]:
        """The measures that get no value when ``pass_name`` fails: its own and those of
        the passes built on it."""
        hit = {pass_name}
        for p in self.passes:  # execution order: a pass comes after what it builds on
            if PASSES[p].after in hit:
                hit.add(p)
        return [m.name for m in self.measures if m.needs in hit]

    def on_forward(self) -> list[str]:
        """The measures whose passes run on the shared forward."""
        return [m.name for m in self.measures if PASSES[m.needs].forward is not None]

    def graph_used_after(self, pass_name: str) -> bool:
        """Whether a later pass backpropagates through the shared forward's graph."""
        later = self.passes[self.passes.index(pass_name) + 1 :]
        return any((f := PASSES[p].forward) is not None and f.grad for p in later)


def plan(measures: Sequence[Measure], *, bn_network: bool | None = None) -> Plan:
    """The union of the measures' ``needs`` (and what those passes build on), the shared
    forward with only the hooks they need. ``bn_network`` forces the network kind (a
    caller's model is what it is); by default the BN network is built whenever a pass
    needs it, and a BN-free one only when no pass does (synflow alone)."""
    wanted: set[str] = set()
    for m in measures:
        p: str | None = m.needs
        while p is not None and p not in wanted:
            wanted.add(p)
            p = PASSES[p].after
    order = tuple(p for p in PASSES if p in wanted)
    products = frozenset(u for m in measures for u in m.uses)
    forward: ForwardNeeds | None = None
    for p in order:
        spec = PASSES[p]
        if spec.forward is not None:
            forward = spec.forward if forward is None else forward | spec.forward
            for product, needs in spec.optional.items():
                if product in products:
                    forward |= needs
    bn = any(PASSES[p].bn for p in order) if bn_network is None else bn_network
    return Plan(tuple(measures), order, forward, products, bn)
