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


def no_rows(st, space: str, truth: str, estimators: list[str], epochs: list[int], seeds: list[int]):
    """The one-line error of a query that matches no scores (exit code 2, like an unknown
    name: the filters name something the store does not hold)."""
    from estbench.errors import BadInput

    names = estimators or st.scored_estimators(space)
    scored = sorted({e for _, _, e in st.group_stats({"space": space, "estimators": names, "epochs": [], "seeds": []})})
    filters = (f" at epoch {', '.join(map(str, epochs))}" if epochs else "") + (
        f" with seed {', '.join(map(str, seeds))}" if seeds else ""
    )
    who = ", ".join(estimators) if estimators else "any estimator"
    return BadInput(
        f"nothing to show: no scores of {who} for {space}{filters} on architectures with a {truth} value "
        f"(scored epochs: {', '.join(map(str, scored)) or 'none'})"
    )


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
        None,
        "--k",
        help="Proportions K for P@top/bottomK, BR@K, WR@K (repeatable) [default: 0.1% 0.5% 1% 5% 10% "
        "20% 50%; the table shows 5% unless --k or --all-columns].",
    ),
    all_columns: bool = typer.Option(
        False,
        "--all-columns",
        help="Table, markdown and latex: every column (config_hash, epoch, failed, nonfinite, lc, mean, the set "
        "criteria at every K, threads) instead of the readable set; csv and json always have them all.",
    ),
) -> Rows:
    """Ranking criteria (paper Sec. 3) of every scored estimator against a truth metric.

    One row per estimator (and config / epoch): LC, KD (Kendall tau-b), SpearmanR,
    mean estimate, and P@topK, P@bottomK, BR@K, WR@K for every K. The table shows a
    readable set (estimator, with its config and epoch where needed; points; excluded
    = failed + non-finite; s/arch; KD; SpearmanR; P@top, P@bottom, BR, WR at 5% or
    each --k; threads when a row mixes scores of runs with different thread counts);
    --all-columns, csv and json show every column. No matching scores (e.g. an epoch
    that was never scored): one line, exit code 2."""
    from estbench.analysis.evaluate import evaluate
    from estbench.report.tables import criteria_brief_rows, criteria_rows

    ks = _parse_ks(k)
    groups = evaluate(st, space, truth, protocol, list(estimator or []), epoch, seed, ks)
    if not groups:
        raise no_rows(st, space, truth, list(estimator or []), list(epoch or []), list(seed or []))
    title = f"{space} vs {truth} ({protocol})"
    cols, rows = criteria_rows(groups, ks)
    brief = None if all_columns else Rows(*criteria_brief_rows(groups, ks if k else (0.05,)), title=title)
    return Rows(cols, rows, title=title, brief=brief)
