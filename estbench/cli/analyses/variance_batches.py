"""`estbench variance batches`: criteria against the number of validation batches averaged
(paper Sec. 4.1, Fig. 3, A3) and the intra-level KDs. Library code:
``estbench/analysis/batches.py``."""

from __future__ import annotations

from typing import Any, List

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import VARIANCE_HELP, protocol_title

SHOW = ("criteria", "levels")


def parse_ks(k: List[str] | None) -> tuple[float, ...]:
    """--k values (like criteria's), default 5%."""
    from estbench.cli.analyses.criteria import _parse_ks

    return _parse_ks(k) if k else (0.05,)


def _check(show: str = "criteria", k: List[str] | None = None, **_: Any) -> None:
    from estbench.errors import BadInput

    if show not in SHOW:
        raise BadInput(f"--show {show!r}: expected one of {', '.join(SHOW)}")
    parse_ks(k)


def nothing(st, space: str, truth: str, estimators: list[str], epochs: list[int], seeds: list[int], need: str):
    """The one-line error when no group qualifies: criteria's when nothing matches at all,
    else ``need`` (what the matching groups lack)."""
    from estbench.cli.analyses.criteria import no_rows
    from estbench.errors import BadInput

    names = estimators or st.scored_estimators(space)
    if not st.group_stats({"space": space, "estimators": names, "epochs": epochs, "seeds": seeds}):
        return no_rows(st, space, truth, estimators, epochs, seeds)
    who = ", ".join(estimators) if estimators else "any estimator"
    return BadInput(f"nothing to show: no group of {who} for {space} {need}")


@analysis("batches", group="variance", group_help=VARIANCE_HELP, check=_check)
def variance_batches(
    st,
    space,
    truth,
    protocol,
    post_deiso,
    estimator,
    epoch,
    seed,
    show: str = typer.Option(
        "criteria",
        "--show",
        help="criteria: the criteria per number of batches b (Fig. 3, A3); levels: the intra-level KDs of the "
        "1-batch levels (Fig. 3 right).",
    ),
    k: List[str] | None = typer.Option(
        None, "--k", help="Proportions K of P@topK, P@bottomK, BR@K (repeatable, like criteria) [default: 5%]."
    ),
) -> Rows:
    """Validation data size (paper Sec. 4.1, Fig. 3, A3): how the criteria of an estimator
    change with the number of validation batches its score averages.

    For every estimator group (estimator, config, epoch) whose scores have B >= 2 stored
    batches (`score --batches B`; one-shot and zero-shot alike), the b-batch score of an
    architecture is the mean of its first b batches (batch order = the stored batch
    index), b = 1..B; an architecture enters at b only if its first b batches are all
    ok. The points are those of `criteria` (--protocol, --post-deiso, seeds averaged, a
    class's score = its representative's), so at b = B the values are criteria's
    wherever every architecture has all B batches ok.

    --show criteria (default): one row per group and b: points, distinct (the number of
    distinct score values: one batch of 128 images gives at most 129), kd (Kendall tau-b),
    spearman, and p_top, p_bottom, br at each --k (default 5%). More batches should help a
    well-trained supernet; an under-trained one can get worse (the paper's NB301 epoch
    200). csv/json columns: estimator, config_hash, epoch, batches (b), of_batches (B),
    points, distinct, then the criteria.

    --show levels: a level = the points tied under the 1-batch score (over the points
    with both a 1-batch and a B-batch score). One row per level with >= 2 points: its
    1-batch score (level), size, and kd = Kendall tau-b of truth vs the B-batch score
    among the level's points (the intra-level KD histogram of Fig. 3; NaN when the
    B-batch scores or truths of the level are all equal). Then one summary row per group
    (row = summary): size = all points, kd = the mean intra-level KD over levels with a
    finite KD, levels = number of levels, multi_levels = levels with > 1 point (the
    table shows them as multi/levels, the paper's legend), positive / negative = levels
    with KD > 0 / < 0. Negative intra-level KDs mean more data orders the tied
    architectures worse than chance. csv/json columns: estimator, config_hash, epoch,
    batches (B), row (level or summary), level (empty on summary rows), size, kd, and
    levels, multi_levels, positive, negative (summary rows only).

    Errors (one line, exit code 2): no scores match, or no group has 2 or more batches."""
    from estbench.analysis.batches import batch_criteria, criteria_columns, load_batch_points
    from estbench.analysis.points import group_names

    ks = parse_ks(k)
    estimators, epochs, seeds = list(estimator or []), list(epoch or []), list(seed or [])
    groups = load_batch_points(st, space, truth, protocol, estimators, epochs, seeds, post_deiso)
    if not groups:
        raise nothing(st, space, truth, estimators, epochs, seeds, "has 2 or more stored batches (score --batches N)")
    names = group_names(groups)
    head = f"{space} vs {truth} ({protocol_title(protocol, post_deiso)})"
    if show == "levels":
        return _levels(groups, names, head)
    crit = criteria_columns(ks)
    cols = ["estimator", "config_hash", "epoch", "batches", "of_batches", "points", "distinct"] + crit
    rows, brief = [], []
    for name, g in zip(names, groups):
        for c in batch_criteria(g, ks):
            rows.append([g.estimator, g.config_hash, g.epoch, c["b"], g.n_batches, c["points"], c["distinct"]])
            rows[-1] += [c[x] for x in crit]
            brief.append([name, c["b"], c["points"], c["distinct"]] + [c[x] for x in crit])
    title = (
        f"{head}: criteria of the mean over the first b of B batches (an arch enters at b when its first b "
        "batches are ok; seeds averaged); b = B is criteria's"
    )
    return Rows(cols, rows, title=title, brief=Rows(["estimator", "batches", "points", "distinct"] + crit, brief))


def _levels(groups, names: list[str], head: str) -> Rows:
    from estbench.analysis.batches import levels

    cols = ["estimator", "config_hash", "epoch", "batches", "row", "level", "size", "kd"]
    cols += ["levels", "multi_levels", "positive", "negative"]
    rows, brief = [], []
    for name, g in zip(names, groups):
        lv = levels(g)
        for j in range(len(lv.level)):
            if lv.size[j] >= 2:
                rows.append([g.estimator, g.config_hash, g.epoch, lv.batches, "level", float(lv.level[j])])
                rows[-1] += [int(lv.size[j]), float(lv.kd[j]), None, None, None, None]
                brief.append([name, float(lv.level[j]), int(lv.size[j]), float(lv.kd[j]), ""])
        s = lv.summary()
        rows.append([g.estimator, g.config_hash, g.epoch, lv.batches, "summary", None, lv.points, s["mean_kd"]])
        rows[-1] += [s["levels"], s["multi_levels"], s["positive"], s["negative"]]
        shown = f"{s['multi_levels']}/{s['levels']} (+{s['positive']} -{s['negative']})"
        brief.append([name, "all (mean kd)", lv.points, s["mean_kd"], shown])
    title = (
        f"{head}: levels = points tied under the 1-batch score; kd = Kendall tau-b of truth vs the B-batch score "
        "within a level (levels of >= 2 points); 'all' rows: mean kd, levels with > 1 point / all levels "
        "(+ positive, - negative kd)"
    )
    return Rows(cols, rows, title=title, brief=Rows(["estimator", "level", "size", "kd", "levels"], brief))
