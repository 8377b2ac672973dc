"""The zero-shot engine: plan the passes the requested measures need from their metadata
(:func:`.plan.plan`, the union of their ``needs``), run each pass once per
(architecture, batch) and feed every measure from its pass's output.

What a plan runs, in order (only what the requested measures need):

1. the BN network, built once (seeded), if any pass needs it;
2. ONE train-mode forward with only the hooks the passes need: ReLU kernel
   (relu_forward), conv/linear output taps (fisher, an optional product of
   ce_backward); under ``no_grad`` when no pass backpropagates;
3. on that graph: the input gradient of the summed logits (input_grad); then ONE CE
   backward for the weight gradients and the tapped outputs' gradients (ce_backward),
   with ``create_graph`` when grasp is planned, then the Hessian-gradient product
   (grasp; on CPU its batch norms and convs use the lean double backward of
   :mod:`.hessian`, first-order values bit-identical);
4. synflow_bn on the same BN network, evaluated functionally on absolute float64 copies
   of its tensors (it leaves the network untouched);
5. synflow on the same network with its BNs bypassed by hooks (same conv/linear weights
   as a BN-free build, so the same value); a BN-free build only when no pass needs BN.

Sharing the forward changes no value: BN runs on batch statistics, so the forwards the
reference repeats per measure are identical. Determinism: the same seed on the same
device gives identical values on CPU; on CUDA the runner turns on
``torch.use_deterministic_algorithms`` (warn-only), cuBLAS's deterministic workspace and
no cuDNN autotuning (``benchmarks/cuda_check.py`` checks repeats and CPU agreement).

Timing keys: ``build``, ``forward`` (shared by every pass on it; ReLU kernels are made
inside it) and one per pass for its own work, its measures' formulas included."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from estbench.estimators.zeroshot import passes
from estbench.estimators.zeroshot.measure import Measure, get_measure
from estbench.estimators.zeroshot.plan import (
    PASSES,
    CEGradients,
    HessianGradients,
    InputGradient,
    Plan,
    ReluCodes,
    ReluPatterns,
    SynflowGradients,
    Weights,
    plan,
)

Values = dict[str, float]
Timings = dict[str, float]
Errors = dict[str, str]
Batch = tuple[torch.Tensor, torch.Tensor]


def run_architecture(
    build: Callable[[bool], nn.Module],
    batches: Sequence[Batch],
    needed: Mapping[str, int],
    *,
    seed: int,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    extras: Mapping[str, Any] | None = None,
) -> tuple[list[tuple[Values, Timings, Errors]], tuple[Values, Timings, Errors]]:
    """Score one architecture with every measure of ``needed`` on one network.

    ``needed[m]``: how many leading batches the per-batch measure m is scored on (1 for
    data-free ones); measures registered ``all_batches`` see every batch and get one
    value. The network is built once (torch seeded with ``seed`` first); for each batch
    the plan of the measures it serves runs once, so an all-batches measure (zico)
    shares its pass with the per-batch ones. ``extras``: what some passes need beyond
    the network ("thin_build": TE-NAS's thin network for linear_regions).

    Returns (one (values, timings, errors) per batch, the all-batches result). Every
    requested measure of a batch is in exactly one of its values and errors; a failing
    measure never loses the others. Each batch's timings hold the build's seconds."""
    measures = [get_measure(n) for n in dict.fromkeys(needed)]
    if not measures:
        return [], ({}, {}, {})
    per_batch = [m for m in measures if not m.all_batches]
    whole = [m for m in measures if m.all_batches]
    union = plan(measures)
    device = torch.device(device)
    first = _Run(union, device, seed, extras)
    net = first.build(build, dtype)
    built = first.timings.get("build", 0.0)
    results: list[tuple[Values, Timings, Errors]] = []
    outputs: dict[str, list[Any]] = {p: [] for p in plan(whole).passes} if whole else {}
    whole_timings: Timings = {"build": built}
    whole_errors: dict[str, BaseException] = {m.name: e for m, e in first.errors_of(whole)}
    for b, (x, y) in enumerate(batches):
        active = [m for m in per_batch if b < needed[m.name]] + whole
        run = _Run(plan(active, bn_network=union.bn_network), device, seed, extras, first.buffers)
        run.timings["build"] = built
        if net is None:
            run.errors.update(dict.fromkeys((m.name for m in active), first.errors[measures[0].name]))
        elif active:

            def sink(pass_name: str, out: Any, run: _Run = run) -> None:
                run.compute(pass_name, out)
                if pass_name in outputs:
                    outputs[pass_name].append(out)

            run.batch(net, x.to(device=device, dtype=dtype), y.to(device=device), sink, b)
        for m in whole:
            if m.name in run.errors:
                whole_errors.setdefault(m.name, run.errors.pop(m.name))
        for stage in ("forward", *{m.needs for m in whole}):
            if stage in run.timings:
                whole_timings[stage] = whole_timings.get(stage, 0.0) + run.timings[stage]
        if b < max([needed[m.name] for m in per_batch], default=0):
            results.append((run.values, run.timings, run.messages()))
    whole_values: Values = {}
    for m in whole:
        if m.name not in whole_errors:
            start = time.perf_counter()
            try:
                whole_values[m.name] = float(m.compute(outputs[m.needs]))
            except Exception as exc:
                whole_errors[m.name] = exc
            whole_timings[m.needs] = whole_timings.get(m.needs, 0.0) + time.perf_counter() - start
    return results, (whole_values, whole_timings, _messages(whole_errors))


def run_measures(
    build: Callable[[bool], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    measures: Iterable[str],
    *,
    seed: int,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    extras: Mapping[str, Any] | None = None,
) -> tuple[Values, Timings, Errors]:
    """Score one architecture on one batch with every (per-batch) measure in ``measures``
    (:func:`run_architecture` on one batch).

    ``build(bn)`` returns a fresh network (with / without BatchNorm); torch is seeded with
    ``seed`` before the build, so either build gets the same conv/linear weights. Returns
    (values, wall seconds by stage, errors): every requested measure is in exactly one
    of values (possibly inf/nan; the caller records the status) and errors ("Type:
    message"); a failing measure never loses the others."""
    names = [m.name for m in _measures(measures, all_batches=False)]
    results, _ = run_architecture(
        build, [(x, y)], dict.fromkeys(names, 1), seed=seed, device=device, dtype=dtype, extras=extras
    )
    return results[0] if results else ({}, {}, {})


def run_all_batches(
    build: Callable[[bool], nn.Module],
    batches: Sequence[Batch],
    measures: Iterable[str],
    *,
    seed: int,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[Values, Timings, Errors]:
    """Score one architecture with measures registered ``all_batches=True``: one value
    per measure over all ``batches`` at once (:func:`run_architecture` without per-batch
    measures). Timings are summed over the batches; a measure whose pass fails on any
    batch is an error."""
    names = [m.name for m in _measures(measures, all_batches=True)]
    _, whole = run_architecture(build, batches, dict.fromkeys(names, 0), seed=seed, device=device, dtype=dtype)
    return whole


def score_model(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    measures: Iterable[str],
    *,
    seed: int = 0,
    extras: Mapping[str, Any] | None = None,
) -> tuple[Values, Timings, Errors]:
    """The same (per-batch) measures on a caller's model, which is left exactly as it was
    (modes, buffers, ``requires_grad``, no ``.grad`` written, no hooks left). synflow
    runs on it with its BatchNorms bypassed. x and y must already be on the model's
    device/dtype; ``seed`` seeds the random draws of the passes that make any."""
    run = _Run(plan(_measures(measures, all_batches=False), bn_network=True), x.device, seed, extras, _buffers(net))
    with passes.preserved(net):
        run.batch(net, x, y, run.compute, 0)
    return run.values, run.timings, run.messages()


# ---- one run: an architecture under a plan ---------------------------------------------------
@dataclass
class _State:
    """One batch on one network: the shared forward and what later passes build on."""

    net: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    plan: Plan
    seed: int = 0
    batch: int = 0  # the batch's index (passes that draw random numbers seed them from (seed, batch))
    buffers: dict[str, torch.Tensor] | None = None  # the network's buffers as built (BN running stats)
    extras: Mapping[str, Any] | None = None
    fwd: passes.Forward | None = None
    weights: list[torch.Tensor] | None = None  # the scored weights (graph leaves)
    grads: list[torch.Tensor | None] | None = None  # CE gradients, with their graph when grasp is planned


class _Run:
    """One architecture under one plan: its network, the passes per batch, and the
    values, timings and errors they collect."""

    def __init__(
        self,
        plan_: Plan,
        device: torch.device,
        seed: int = 0,
        extras: Mapping[str, Any] | None = None,
        buffers: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.plan, self.device, self.seed, self.extras, self.buffers = plan_, device, seed, extras, buffers
        self.values: Values = {}
        self.timings: Timings = {}
        self.errors: dict[str, BaseException] = {}

    def build(self, build: Callable[[bool], nn.Module], dtype: torch.dtype) -> nn.Module | None:
        """The plan's network (None when it cannot be built: its measures fail, not the
        call); its buffers as built are kept (:attr:`buffers`) for passes that need the
        initial BN statistics after the shared forward has updated them."""
        bn = self.plan.bn_network
        try:
            with self.clock("build"):
                torch.manual_seed(self.seed)
                net = build(bn)
                # the BN-free network only serves synflow, which runs in float64 anyway
                net = (net.to(device=self.device, dtype=dtype) if bn else net.to(device=self.device)).train()
                self.buffers = _buffers(net)
                return net
        except Exception as exc:
            self.errors.update(dict.fromkeys((m.name for m in self.plan.measures), exc))
            return None

    def errors_of(self, measures: Sequence[Measure]) -> list[tuple[Measure, BaseException]]:
        return [(m, self.errors[m.name]) for m in measures if m.name in self.errors]

    def batch(
        self, net: nn.Module, x: torch.Tensor, y: torch.Tensor, sink: Callable[[str, Any], None], index: int
    ) -> None:
        """Run every planned pass on batch ``index``; ``sink(pass, output)`` inside its clock."""
        state = _State(net, x, y, self.plan, self.seed, index, self.buffers, self.extras)
        if self.plan.forward is not None:
            try:
                with self.clock("forward"):
                    state.fwd = passes.forward(net, x, self.plan.forward)
            except Exception as exc:
                self.errors.update(dict.fromkeys(self.plan.on_forward(), exc))
        done: set[str] = set()
        for p in self.plan.passes:
            spec = PASSES[p]
            if (spec.forward is not None and state.fwd is None) or (spec.after is not None and spec.after not in done):
                continue  # its measures' errors are recorded already
            with self.clock(p), self.recorded(self.plan.affected(p)):
                out = step(p)(state)
                done.add(p)
                sink(p, out)

    def compute(self, pass_name: str, output: Any) -> None:
        """Per-batch sink: every measure of the pass, each failing on its own."""
        for m in self.plan.measures_of(pass_name):
            if m.all_batches:
                continue  # fed the list of every batch's output by run_architecture
            with self.recorded([m.name]):
                self.values[m.name] = float(m.compute(output))

    @contextmanager
    def recorded(self, names: list[str]) -> Iterator[None]:
        """Record an exception against ``names`` (unless already recorded) and go on."""
        try:
            yield
        except Exception as exc:
            for n in names:
                self.errors.setdefault(n, exc)

    @contextmanager
    def clock(self, stage: str) -> Iterator[None]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def messages(self) -> Errors:
        return _messages(self.errors)


def _messages(errors: Mapping[str, BaseException]) -> Errors:
    return {n: f"{type(e).__name__}: {e}" for n, e in errors.items()}


def _buffers(net: nn.Module) -> dict[str, torch.Tensor]:
    return {name: b.detach().clone() for name, b in net.named_buffers()}


# ---- the passes' torch work, one step per name in plan.PASSES -------------------------------
def _input_grad(s: _State) -> InputGradient:
    jac = passes.input_gradient(s.fwd, retain_graph=s.plan.graph_used_after("input_grad"))
    return InputGradient(jac, s.y.detach(), int(s.fwd.logits.shape[1]))


def _ce_backward(s: _State) -> CEGradients:
    s.weights = [m.weight for _, m in passes.scored_layers(s.net)]
    s.grads = passes.ce_gradients(s.fwd, s.y, s.weights, create_graph=s.plan.forward.double_backward)
    fisher = passes.fisher_inputs(s.net, s.fwd) if "fisher" in s.plan.products else None
    return CEGradients([w.detach() for w in s.weights], [None if g is None else g.detach() for g in s.grads], fisher)


def _grasp(s: _State) -> HessianGradients:
    return HessianGradients([w.detach() for w in s.weights], passes.hessian_gradient(s.weights, s.grads))


def _relu_forward(s: _State) -> ReluCodes:
    if s.fwd.relu_kernel is None:
        raise RuntimeError("the network has no ReLU module to hook")
    return ReluCodes(s.fwd.relu_kernel)


def _relu_patterns(s: _State) -> ReluPatterns:
    if s.fwd.patterns is None:
        raise RuntimeError("the network has no nn.ReLU with a 4-D input to hook")
    return ReluPatterns(s.fwd.patterns.distinct(), sum(p.numel() for p in s.net.parameters()))


def _weights(s: _State) -> Weights:
    return Weights([m.weight.detach() for _, m in passes.scored_layers(s.net)])


def _synflow_bn(s: _State) -> SynflowGradients:
    return passes.synflow_gradients(s.net, tuple(s.x.shape[1:]))


def _synflow(s: _State) -> SynflowGradients:
    # on the BN network (when built) with its BNs bypassed: same weights, no rebuild
    return passes.synflow_gradients(s.net, tuple(s.x.shape[1:]), bypass_bn=s.plan.bn_network)


_STEPS: dict[str, Callable[[_State], Any]] = {
    "input_grad": _input_grad,
    "ce_backward": _ce_backward,
    "grasp": _grasp,
    "relu_forward": _relu_forward,
    "relu_patterns": _relu_patterns,
    "weights": _weights,
    "synflow_bn": _synflow_bn,
    "synflow": _synflow,
}


def step(pass_name: str) -> Callable[[_State], Any]:
    """The torch step of a pass: the engine's own, or its spec's ``module:function``
    (imported on first use)."""
    if pass_name not in _STEPS:
        module, _, attr = PASSES[pass_name].step.partition(":")
        _STEPS[pass_name] = getattr(importlib.import_module(module), attr)
    return _STEPS[pass_name]


def _measures(names: Iterable[str], *, all_batches: bool) -> list[Measure]:
    """The requested measures (duplicates dropped). An unknown name or a measure for the
    other entry point raises: a caller's bug, not a measure failure."""
    out = [get_measure(n) for n in dict.fromkeys(names)]
    wrong = [m.name for m in out if m.all_batches != all_batches]
    if wrong:
        other = "run_measures / score_model" if all_batches else "run_all_batches"
        kind = "per-batch" if all_batches else "all-batches"
        raise ValueError(f"{', '.join(wrong)}: {kind} measure(s), scored by engine.{other}")
    return out
