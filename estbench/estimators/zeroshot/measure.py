"""A zero-shot measure: a formula over what one pass produced, registered in
``estbench.estimators.ESTIMATORS`` with the metadata runners and criteria read.

Torch-free: registering a measure (and listing estimators) never imports torch; the
torch work is the engine's, and a measure's formula imports torch only when it runs."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from estbench.errors import UnknownName
from estbench.estimators import ESTIMATORS
from estbench.estimators.zeroshot.plan import PASSES


@dataclass(frozen=True)
class Measure:
    """``compute(output) -> float`` on the output of its pass ``needs`` (one of
    :data:`.plan.PASSES`); with ``all_batches`` it gets the list of that pass's outputs,
    one per batch, and returns one value for the whole set."""

    name: str
    needs: str
    compute: Callable[[Any], float]
    uses: tuple[str, ...] = ()  # optional products of the pass (e.g. "fisher" of ce_backward)
    all_batches: bool = False


def register_measure(
    name: str,
    compute: Callable[[Any], float] | None = None,
    *,
    needs: str,
    higher_is_better: bool,
    description: str,
    settings: tuple[str, ...] | None = None,
    uses: tuple[str, ...] = (),
    all_batches: bool = False,
    constants: dict[str, Any] | None = None,
    min_batches: int = 1,
) -> Any:
    """Register a zero-shot measure as estimator ``name``.

    ``compute`` receives what the pass ``needs`` produced for one (architecture, batch)
    (see :mod:`estbench.estimators.zeroshot.plan`: ``ce_backward`` -> ``CEGradients``,
    ``grasp`` -> ``HessianGradients``, ``input_grad`` -> ``InputGradient``,
    ``relu_forward`` -> ``ReluCodes``, ``synflow`` / ``synflow_bn`` ->
    ``SynflowGradients``) and returns one float. With ``all_batches=True`` it receives
    the list of those outputs, one per batch, and returns one value for the whole set.
    ``settings``: the config fields that change its value (default: the pass's; they
    enter the cache key). ``uses``: optional products of the pass it reads ("fisher").
    ``constants``: fixed parameters of the formula (e.g. a reference's sample count),
    which enter the cache key next to the settings, so changing one recomputes.
    ``min_batches``: the fewest batches it is defined on (zico: 2); a request with fewer
    is refused (``--zse all`` leaves it out with a warning).
    Returns the registered :class:`Measure`; without ``compute``, a decorator (which
    returns the function unchanged). A name already registered raises ValueError. Example::

        @register_measure("grad_sum", needs="ce_backward", higher_is_better=True,
                          description="sum of dL/dw over conv/linear weights")
        def grad_sum(p):
            return float(sum(g.sum() for g in p.grads if g is not None))
    """
    if needs not in PASSES:
        raise ValueError(f"measure {name!r}: unknown pass {needs!r} (known: {', '.join(PASSES)})")
    spec = PASSES[needs]
    unknown = [u for u in uses if u not in spec.optional]
    if unknown:
        raise ValueError(f"measure {name!r}: pass {needs!r} has no optional product {unknown[0]!r}")
    if not isinstance(higher_is_better, bool):
        raise ValueError(f"measure {name!r}: higher_is_better must be True or False")
    meta = dict(
        kind="zeroshot",
        higher_is_better=higher_is_better,
        description=description,
        settings=tuple(spec.settings if settings is None else settings),
        needs=needs,
        data_free=spec.data_free,
        all_batches=bool(all_batches),
        derived=False,
        constants=dict(constants or {}),
        min_batches=int(min_batches),
        requires=spec.requires,
    )

    def add(fn: Callable[[Any], float]) -> Callable[[Any], float]:
        ESTIMATORS.register(name, Measure(name, needs, fn, tuple(uses), bool(all_batches)), **meta)
        return fn

    if compute is None:
        return add
    add(compute)
    return ESTIMATORS.get(name)


def measure_names(**where: Any) -> list[str]:
    """The registered zero-shot measures (not the derived estimators), filtered by
    metadata equality (e.g. ``all_batches=True``)."""
    return ESTIMATORS.names(kind="zeroshot", derived=False, **where)


def get_measure(name: str) -> Measure:
    """The registered measure ``name``; UnknownName (with suggestions) otherwise."""
    target = ESTIMATORS.entry(name).target if name in ESTIMATORS else None
    if isinstance(target, Measure):
        return target
    known = measure_names()
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownName(f"unknown zero-shot measure {name!r}.{hint} Known: {', '.join(known)}.")
