"""`estbench criteria`: the ranking criteria of paper Sec. 3."""

from __future__ import annotations

from typing import Any, List

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import EpochOpt, EstOpt, ProtocolOpt, SeedOpt, SpaceOpt, TruthOpt


def _parse_ks(ks: List[str] | None) -> tuple[float, ...]:
    from estbench.analysis.criteria import DEFAULT_KS
    from estbench.errors import BadInput

    if not ks:
        return DEFAULT_KS
    out = []
    for k in ks:
        try:
            v = float(k[:-1]) / 100 if k.endswith("%") else float(k)
        except ValueError:
            raise BadInput(f"--k {k!r}: expected a proportion like 0.05 or 5%") from None
        if not 0 < v <= 1:
            raise BadInput(f"--k {k!r}: must lie in (0, 1]")
        out.append(v)
    return tuple(out)


def _check_ks(k: List[str] | None = None, **_: Any) -> None:
    _parse_ks(k)


@analysis("criteria", check=_check_ks)
def criteria(
    st,
    space: str = SpaceOpt,
    truth: str = TruthOpt,
    protocol: str = ProtocolOpt,
    estimator: List[str] | None = EstOpt,
    epoch: List[int] | None = EpochOpt,
    seed: List[int] | None = SeedOpt,
    k: List[str] | None = typer.Option(
        None, "--k", help="Proportions K for P@top/bottomK, BR@K, WR@K (repeatable; default 0.1%..50%)."
    ),
) -> Rows:
    """Ranking criteria (paper Sec. 3) of every scored estimator against a truth metric.

    One row per estimator (and config / epoch): LC, KD (Kendall tau-b), SpearmanR,
    mean estimate, and P@topK, P@bottomK, BR@K, WR@K for every K."""
    from estbench.analysis.evaluate import evaluate
    from estbench.report.tables import criteria_rows

    ks = _parse_ks(k)
    groups = evaluate(st, space, truth, protocol, list(estimator or []), epoch, seed, ks)
    cols, rows = criteria_rows(groups, ks)
    return Rows(cols, rows, title=f"{space} vs {truth} ({protocol})")
