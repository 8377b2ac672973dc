"""`estbench bias compare`: is estimator A better than B on a criterion, or is the gap noise?"""

from __future__ import annotations

from typing import Any, List

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import (
    BIAS_HELP,
    estimator_option,
    protocol_title,
)


def _criteria(criterion: List[str] | None) -> list[str]:
    from estbench.analysis.bootstrap import COMPARE_DEFAULT, parse_criterion

    names = [parse_criterion(c) for c in criterion] if criterion else list(COMPARE_DEFAULT)
    return list(dict.fromkeys(names))


def _check(
    estimator: List[str] | None = None,
    criterion: List[str] | None = None,
    method: str = "both",
    resamples: int = 1000,
    ci: float = 95.0,
    ci_seed: int = 0,
    **_: Any,
) -> None:
    from estbench.analysis.bootstrap import METHODS, check_level
    from estbench.errors import BadInput

    if len(estimator or []) != 2:
        raise BadInput(f"bias compare needs exactly two estimators, -e A -e B (got {len(estimator or [])})")
    if method not in METHODS:
        raise BadInput(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    _criteria(criterion)
    check_level(ci, resamples, ci_seed)


def _pick(sets, labels: list[str], wanted: str):
    """The one group of estimator (or group label) ``wanted``; BadInput naming the groups
    when there are several."""
    from estbench.errors import BadInput

    exact = [p for p, lab in zip(sets, labels) if lab == wanted]
    if len(exact) == 1:
        return exact[0], wanted
    mine = [(p, lab) for p, lab in zip(sets, labels) if p.estimator == wanted]
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise BadInput(f"-e {wanted!r}: no scores match (groups here: {', '.join(labels)})")
    raise BadInput(
        f"-e {wanted}: {len(mine)} groups ({'; '.join(lab for _, lab in mine)}); pass one of them as -e "
        "or narrow with --epoch / --seed"
    )


@analysis("compare", group="bias", group_help=BIAS_HELP, check=_check)
def compare(
    st,
    space,
    truth,
    protocol,
    post_deiso,
    epoch,
    seed,
    estimator: List[str] | None = estimator_option(
        "The two estimators A and B: -e A -e B (an estimator name, or a row name as `criteria` prints it, "
        "e.g. 'snip [batch_size=64]', when it has several configs)."
    ),
    criterion: List[str] | None = typer.Option(
        None,
        "--criterion",
        "-c",
        help="Criterion to compare (repeatable): kd, spearman, lc, p_top@K, p_bottom@K, br@K, wr@K with K like "
        "5% [default: kd, spearman, p_top@5%, br@5%].",
    ),
    method: str = typer.Option(
        "both", "--method", help="bootstrap (interval and p-value of the difference), permutation, or both."
    ),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples, and permutations."),
    ci: float = typer.Option(95.0, "--ci", help="Level of the bootstrap interval of the difference, in percent."),
    ci_seed: int = typer.Option(0, "--ci-seed", help="Seed of the resamples and permutations."),
) -> Rows:
    """Paired test of two estimators A and B: is A's criterion really higher than B's?

    On the points both have (the classes, or archs with --protocol iso, that both
    scored; ranks recomputed among them), one row per --criterion: A's value, B's value,
    the difference A - B (for br/wr lower is better, so a negative difference favours
    A), its percentile bootstrap interval, and two p-values for "no difference".
    A small p (say < 0.05) means the gap is unlikely to be noise of the point sample.

    Bootstrap: each of --resamples resamples draws the common points with replacement
    (a point drawn c times counts as c tied points, as in `criteria --ci`), the same
    resample for A and B; the interval runs from the (100-ci)/2 to the (100+ci)/2
    percentile of the N resampled differences d, and p_bootstrap = min(1, 2 * (1 +
    min(#{d <= 0}, #{d >= 0})) / (1 + N)), the two-sided p of the percentile interval. Permutation: under "A and B are exchangeable" each
    point's normalised ranks of A and B (average rank / M of the oriented score, higher
    is better) are swapped with probability 1/2, independently per point, and the
    difference recomputed; p_permutation = (1 + #{|d_perm| >= |d_obs|}) / (1 + R) with R
    = --resamples permutations. The permutation test works on ranks, so lc gets none.
    An estimator with several configs or epochs must be narrowed (the error names the
    groups). README: Uncertainty."""
    from estbench.analysis.bootstrap import MIN_POINTS, common_points, compare_points
    from estbench.analysis.points import group_names, load_points
    from estbench.cli.analyses.criteria import no_rows
    from estbench.errors import BadInput

    names = _criteria(criterion)
    wanted = list(estimator or [])
    bare = list(dict.fromkeys(w.split(" [")[0].split(" @ep")[0] for w in wanted))
    sets = load_points(st, space, truth, protocol, bare, epoch, seed, post_deiso)
    if not sets:
        raise no_rows(st, space, truth, bare, list(epoch or []), list(seed or []))
    labels = group_names(sets)
    (a, la), (b, lb) = _pick(sets, labels, wanted[0]), _pick(sets, labels, wanted[1])
    facts = st.arch_facts(space, protocol)
    key = dict(zip(facts["arch_id"].astype(int).tolist(), facts["grp"].astype(str).tolist()))
    ca = [key[int(r)] for r in a.rep]
    cb = [key[int(r)] for r in b.rep]
    a, b = common_points(a, b, ca, cb)
    if len(a) < MIN_POINTS:
        raise BadInput(
            f"{la} and {lb} share {len(a)} points; a comparison needs at least {MIN_POINTS} "
            "(score both on the same architectures)"
        )
    out = compare_points(a, b, names, method, resamples, ci, ci_seed)
    boot, perm = method in ("bootstrap", "both"), method in ("permutation", "both")
    title = (
        f"A = {la} vs B = {lb} on {len(a)} common points: {space} vs {truth} "
        f"({protocol_title(protocol, post_deiso)}); {resamples} "
        + " / ".join(w for w, on in (("bootstrap resamples", boot), ("permutations", perm)) if on)
        + f", seed {ci_seed}"
    )
    cols = ["criterion", "a", "b", "points", "a_value", "b_value", "difference"]
    cols += ["difference_lo", "difference_hi", "p_bootstrap"] * boot + ["p_permutation"] * perm
    rows = []
    brief_cols = ["criterion", "A", "B", "A - B"] + [f"{ci:g}% interval", "p_bootstrap"] * boot
    brief_cols += ["p_permutation"] * perm
    brief = []
    for c in out:
        extra = [c.lo, c.hi, c.p_bootstrap] * boot + [c.p_permutation] * perm
        rows.append([c.criterion, la, lb, len(a), c.a, c.b, c.difference] + extra)
        shown = [c.criterion, c.a, c.b, c.difference]
        shown += [_interval(c.lo, c.hi), c.p_bootstrap] * boot + [c.p_permutation] * perm
        brief.append(shown)
    return Rows(cols, rows, title=title, brief=Rows(brief_cols, brief, title=title))


def _interval(lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return ""
    return "[" + ", ".join("nan" if v != v else f"{v:.3f}" for v in (lo, hi)) + "]"
