"""The zero-shot engine: run each pass a set of measures needs once per (architecture,
batch) and feed every requested measure from it.

Plan for one call (only what the requested measures need):

1. build the BN network once (seeded) if any measure but synflow is requested;
2. ONE train-mode forward with the hooks the measures need: ReLU kernel (relu_logdet),
   conv/linear outputs (fisher); under ``no_grad`` when relu_logdet is all it feeds;
3. on that graph: the input gradient of the summed logits (jacob_cov); then ONE CE
   backward for the weight gradients and the recorded outputs' gradients (grad_norm,
   plain, snip, fisher), taken with ``create_graph`` when grasp is requested, then the
   Hessian-gradient product (grasp; on CPU its batch norms and convs use the lean double
   backward of :mod:`.hessian`, first-order values bit-identical);
4. synflow_bn on the same BN network, evaluated functionally on absolute float64 copies
   of its tensors (cheaper than a second build plus a sign restore, and it leaves the
   network untouched);
5. synflow on the same network with its BNs bypassed by hooks (the reference builds a
   BN-free copy; the conv/linear weights are the same, so the value is too); a network
   built without BN only when synflow is all that is asked.

Sharing the forward changes no value: BN runs on batch statistics, so the forwards the
reference repeats per measure are identical. Determinism: the same seed on the same
device gives identical values on CPU; on CUDA ``score_zero_shot`` turns on
``torch.use_deterministic_algorithms`` (warn-only), cuBLAS's deterministic workspace and
no cuDNN autotuning (never run here: no GPU was lent; ``benchmarks/cuda_check.py`` checks
repeats and CPU agreement when one is)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from estbench.errors import UnknownName
from estbench.estimators.zeroshot import SPECS, formulas, passes

Values = dict[str, float]
Timings = dict[str, float]
Errors = dict[str, str]

CE_MEASURES = ("grad_norm", "plain", "snip", "fisher")
SHARED_PASSES = ("ce_backward", "grasp", "input_grad", "relu_forward")  # served by the one BN forward


def pass_of(name: str) -> str:
    try:
        return SPECS[name]["needs"]
    except KeyError:
        known = ", ".join(sorted(SPECS))
        raise UnknownName(f"unknown zero-shot measure {name!r}. Known: {known}.") from None


def run_measures(
    build: Callable[[bool], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    measures: Iterable[str],
    *,
    seed: int,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[Values, Timings, Errors]:
    """Score one architecture on one batch with every measure in ``measures``.

    ``build(bn)`` returns a fresh network (with / without BatchNorm); torch is seeded with
    ``seed`` before the build, so either build gets the same conv/linear weights. Returns (values,
    wall seconds by stage, errors): every requested measure is in exactly one of values
    (possibly inf/nan; the caller records the status) and errors ("Type: message"); a
    failing measure never loses the others. Timing stages: ``build`` and ``forward``
    (shared by all BN passes; ReLU kernels are computed inside the forward), then one
    key per pass for its own work."""
    names = _names(measures)
    x, y = x.to(device=device, dtype=dtype), y.to(device=device)
    values: Values = {}
    timings: Timings = {}
    errors: dict[str, BaseException] = {}
    bn_names = [n for n in names if n != "synflow"]
    if bn_names:
        try:
            with _clock(timings, "build", x.device):
                net = _seeded(build, True, seed).to(device=device, dtype=dtype).train()
        except Exception as exc:  # a network that cannot be built fails its measures, not the call
            errors.update(dict.fromkeys(names, exc))
            return values, timings, _messages(errors)
        _score_bn(net, x, y, bn_names, values, timings, errors)
        if "synflow" in names:  # the BN network with its BNs bypassed: same weights, no rebuild
            _synflow(net, x, values, timings, errors, bypass_bn=True)
        del net
    elif "synflow" in names:
        try:
            with _clock(timings, "build", x.device):
                net0 = _seeded(build, False, seed).to(device=device).train()
        except Exception as exc:
            errors["synflow"] = exc
        else:
            _synflow(net0, x, values, timings, errors)
    return values, timings, _messages(errors)


def _synflow(
    net: nn.Module,
    x: torch.Tensor,
    values: Values,
    timings: Timings,
    errors: dict,
    *,
    name: str = "synflow",
    bypass_bn: bool = False,
) -> None:
    """synflow (or synflow_bn) on ``net``, timed under its own name; a failure is recorded."""
    try:
        with _clock(timings, name, x.device):
            values[name] = passes.synflow_score(net, tuple(x.shape[1:]), bypass_bn=bypass_bn)
    except Exception as exc:
        errors[name] = exc


def score_model(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, measures: Iterable[str]
) -> tuple[Values, Timings, Errors]:
    """The same suite on a caller's model, which is left exactly as it was (modes,
    buffers, ``requires_grad``, no ``.grad`` written, no hooks left). synflow runs on it
    with its BatchNorms bypassed. x and y must already be on the model's device/dtype."""
    values, timings, errors = score_model_raw(net, x, y, measures)
    return values, timings, _messages(errors)


def score_model_raw(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, measures: Iterable[str]
) -> tuple[Values, Timings, dict[str, BaseException]]:
    """:func:`score_model` with the exception objects (for callers that re-raise)."""
    names = _names(measures)
    values: Values = {}
    timings: Timings = {}
    errors: dict[str, BaseException] = {}
    with passes.preserved(net):
        _score_bn(net, x, y, [n for n in names if n != "synflow"], values, timings, errors)
        if "synflow" in names:
            _synflow(net, x, values, timings, errors, bypass_bn=True)
    return values, timings, errors


# ---- the BN network's passes ------------------------------------------------------------
def _score_bn(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    names: list[str],
    values: Values,
    timings: Timings,
    errors: dict[str, BaseException],
) -> None:
    shared = [n for n in names if pass_of(n) in SHARED_PASSES]
    if shared:
        _shared_passes(net, x, y, shared, values, timings, errors)
    if "synflow_bn" in names:
        _synflow(net, x, values, timings, errors, name="synflow_bn")


def _shared_passes(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    names: list[str],
    values: Values,
    timings: Timings,
    errors: dict[str, BaseException],
) -> None:
    want = set(names)
    ce = [n for n in CE_MEASURES if n in want]
    grasp = "grasp" in want
    jacob = "jacob_cov" in want
    try:
        with _clock(timings, "forward", x.device):
            fwd = passes.forward(
                net,
                x,
                grad=bool(ce) or grasp or jacob,
                input_grad=jacob,
                fisher="fisher" in want,
                relu="relu_logdet" in want,
                hessian=grasp,
            )
    except Exception as exc:
        errors.update(dict.fromkeys(names, exc))
        return
    if jacob:
        with _clock(timings, "input_grad", x.device), _recorded(errors, ["jacob_cov"]):
            jac = passes.input_gradient(fwd, retain_graph=bool(ce) or grasp)
            values["jacob_cov"] = formulas.jacob_cov(jac.to(torch.float64).cpu().numpy())
    if ce or grasp:
        weights = [m.weight for _, m in passes.scored_layers(net)]
        grads = None
        with _clock(timings, "ce_backward", x.device), _recorded(errors, ce + ["grasp"] * grasp):
            grads = passes.ce_gradients(fwd, y, weights, create_graph=grasp)
            plain_grads = [None if g is None else g.detach() for g in grads]
            ws = [w.detach() for w in weights]
            formula = {
                "grad_norm": lambda: formulas.grad_norm(plain_grads),
                "plain": lambda: formulas.plain(ws, plain_grads),
                "snip": lambda: formulas.snip(ws, plain_grads),
                "fisher": lambda: formulas.fisher(passes.fisher_inputs(net, fwd)),
            }
            for name in ce:
                with _recorded(errors, [name]):
                    values[name] = formula[name]()
        if grasp and grads is not None:
            with _clock(timings, "grasp", x.device), _recorded(errors, ["grasp"]):
                values["grasp"] = formulas.grasp([w.detach() for w in weights], passes.hessian_gradient(weights, grads))
    if "relu_logdet" in want:
        with _clock(timings, "relu_forward", x.device), _recorded(errors, ["relu_logdet"]):
            if fwd.relu_kernel is None:
                raise RuntimeError("the network has no ReLU module to hook")
            values["relu_logdet"] = formulas.relu_logdet(fwd.relu_kernel.cpu().numpy())


# ---- helpers --------------------------------------------------------------------------
def _names(measures: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(measures))
    for n in names:
        pass_of(n)  # raises UnknownName early: a typo is the caller's bug, not a measure failure
    return names


def _seeded(build: Callable[[bool], nn.Module], bn: bool, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build(bn)


@contextmanager
def _recorded(errors: dict[str, BaseException], names: list[str]) -> Iterator[None]:
    """Record an exception against ``names`` (unless already recorded) and go on."""
    try:
        yield
    except Exception as exc:
        for n in names:
            errors.setdefault(n, exc)


@contextmanager
def _clock(timings: Timings, stage: str, device: torch.device) -> Iterator[None]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    try:
        yield
    finally:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def _messages(errors: dict[str, BaseException]) -> Errors:
    return {n: f"{type(e).__name__}: {e}" for n, e in errors.items()}
