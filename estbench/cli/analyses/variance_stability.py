"""`estbench variance stability`: ranking stability between checkpoints and seeds (paper
Sec. 5.3, Fig. 7) and the effect of multi-supernet averaging and temporal ensembles
(Sec. 6.1, Fig. 8). Library code: ``estbench/analysis/stability.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, List

import typer

from estbench.cli.analyses.variance_batches import nothing, parse_ks
from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import VARIANCE_HELP, protocol_title

SHOW = ("epochs", "seeds", "ensembles")


def _check(show: str = "epochs", k: List[str] | None = None, **_: Any) -> None:
    from estbench.errors import BadInput

    if show not in SHOW:
        raise BadInput(f"--show {show!r}: expected one of {', '.join(SHOW)}")
    parse_ks(k)


def _some(items: list[str], at_most: int = 6) -> str:
    """The first ``at_most`` items joined, and how many more."""
    more = len(items) - at_most
    return "; ".join(items[:at_most]) + (f"; ... {more} more" if more > 0 else "")


def config_names(sets) -> dict[tuple[str, str], str]:
    """(estimator, config) -> its readable name (the estimator, with its config label or
    differing settings when it has several configs; no epoch)."""
    from estbench.report.tables import group_label

    configs = {}
    for p in sets:
        configs.setdefault((p.estimator, p.config_hash), SimpleNamespace(
            estimator=p.estimator, config_hash=p.config_hash, epoch=0, label=p.label, config=p.config))  # fmt: skip
    items = list(configs.values())
    return {key: group_label(items, g) for key, g in configs.items()}


@analysis("stability", group="variance", group_help=VARIANCE_HELP, check=_check)
def variance_stability(
    st,
    space,
    truth,
    protocol,
    post_deiso,
    estimator,
    epoch,
    seed,
    show: str = typer.Option(
        "epochs",
        "--show",
        help="epochs: relative criteria between consecutive checkpoints (Fig. 7); seeds: between supernets "
        "trained with different seeds, and each seed's and the seed mean's true criteria; ensembles: true "
        "criteria of temporal ensembles (--ensemble 1 vs 3 vs 5) side by side (Fig. 8).",
    ),
    k: List[str] | None = typer.Option(
        None, "--k", help="Proportions K of P@topK and P@bottomK (repeatable, like criteria) [default: 5%]."
    ),
) -> Rows:
    """Ranking stability of one-shot estimators (paper Sec. 5.3, Fig. 7) and variance
    reduction by multi-supernet averaging and temporal ensembles (Sec. 6.1, Fig. 8).

    Relative criteria judge one set of scores against another taken as the truth, on the
    points both have: rel_kd = Kendall tau-b between them, rel_p_top / rel_p_bottom@K =
    the share of the top / bottom max(1, floor(K*n)) points by one that are also there by
    the other (ordinal ranks, ties broken by the smallest arch id of the point's class).
    1 = the ranking did not move. The points are criteria's (--protocol, --post-deiso,
    scores averaged over batches, then over the selected seeds).

    --show epochs (default): per estimator config scored at epochs e1 < e2 < ...: one row
    per consecutive pair, the scores at epoch_from against those at epoch_to as truth
    (n common points). Stability should rise with training. The scores are the mean
    over the selected seeds: compare `--seed S` (one supernet) with the default (the
    multi-supernet average) to see averaging stabilise; a temporal-ensemble config
    (`score --ensemble K`) is a config of its own with its own rows. Columns:
    estimator, config_hash, epoch_from, epoch_to, n, rel_kd, rel_p_top@K, rel_p_bottom@K.

    --show seeds: per estimator config and epoch with >= 2 seeds (supernets trained with
    different seeds share the config and differ in the seed column): one row per seed
    pair (scores = seed a, against = seed b: relative criteria), one per seed and one for
    the mean over the seeds (against = the truth metric: true kd, p_top, p_bottom, the
    mean row being criteria's). Averaging should beat single seeds. Columns: estimator,
    config_hash, epoch, scores, against, n, kd, p_top@K, p_bottom@K.

    --show ensembles: configs of one estimator that differ only in their ensemble setting
    (the last K checkpoints' weights averaged) form a family; at every epoch where two or
    more settings were scored, one row per setting with its true kd, spearman, p_top,
    p_bottom and br at each K (Fig. 8). Columns: estimator, config_hash, epoch, family
    (1, 2, ...: which family), ensemble (K), n, then the criteria.

    Errors (one line, exit code 2): no scores match; epochs: no config scored at two or
    more epochs; seeds: no group with two or more seeds; ensembles: no two ensemble
    settings of one config at one epoch."""
    from estbench.analysis.points import load_points

    ks = parse_ks(k)
    estimators, epochs, seeds = list(estimator or []), list(epoch or []), list(seed or [])
    args = (st, space, truth, protocol, estimators, epochs, seeds, post_deiso)
    head = f"{space} vs {truth} ({protocol_title(protocol, post_deiso)})"
    if show == "seeds":
        return _seeds(args, head, ks)
    sets = load_points(*args)
    if not sets:
        raise nothing(st, space, truth, estimators, epochs, seeds, "has points")
    if show == "ensembles":
        return _ensembles(args, sets, head, ks)
    return _epochs(args, sets, head, ks)


def _epochs(args, sets, head: str, ks) -> Rows:
    from estbench.analysis.stability import class_ids, epoch_stability, relative_names
    from estbench.errors import BadInput

    st, space, truth, protocol, estimators, epochs, seeds, _ = args
    names = config_names(sets)
    out, single = epoch_stability(sets, class_ids(st, space, protocol), ks)
    if not out:
        epoch_of = {(p.estimator, p.config_hash): p.epoch for p in sets}
        scored = _some([f"{names[key]} @ep{epoch_of[key]}" for key in single])
        raise BadInput(
            f"--show epochs needs a config scored at 2 or more checkpoint epochs; each has one ({scored}); "
            "score more with `estbench score --ose RUN --epoch E`"
        )
    crit = [f"rel_{c}" for c in relative_names(ks)]
    cols = ["estimator", "config_hash", "epoch_from", "epoch_to", "n"] + crit
    rows, brief = [], []
    for t in out:
        vals = [t.values[c[4:]] for c in crit]
        rows.append([t.estimator, t.config_hash, t.epoch_from, t.epoch_to, t.n] + vals)
        brief.append([names[(t.estimator, t.config_hash)], t.epoch_from, t.epoch_to, t.n] + vals)
    seeds_text = f"seed {', '.join(map(str, seeds))} averaged" if seeds else "mean over all seeds"
    title = (
        f"{head}; {seeds_text}: relative criteria of the scores at epoch_from against those at epoch_to "
        "as truth, on the points both have"
    )
    if single:
        left = ", ".join(names[key].replace(" [", " (").replace("]", ")") for key in single)  # a title is markup
        title += f" (one epoch, left out: {left})"
    return Rows(cols, rows, title=title, brief=Rows(["estimator", "epoch_from", "epoch_to", "n"] + crit, brief))


def _seeds(args, head: str, ks) -> Rows:
    from estbench.analysis.points import load_points
    from estbench.analysis.stability import load_seed_points, relative_names, seed_stability
    from estbench.errors import BadInput

    st, space, truth, protocol, estimators, epochs, seeds, post_deiso = args
    per_seed = load_seed_points(*args)
    if not per_seed:
        raise nothing(st, space, truth, estimators, epochs, seeds, "has points")
    keys = {k for k, v in per_seed.items() if len(v) >= 2}
    if not keys:
        one = sorted({f"{e} seed {next(iter(v))}" for (e, _, _), v in per_seed.items()})
        raise BadInput(
            f"--show seeds needs scores of 2 or more seeds of one config and epoch; each group has one "
            f"({_some(one)}); train and score another supernet with `estbench train --seed S`"
        )
    mean_sets = load_points(st, space, truth, protocol, sorted({k[0] for k in keys}), epochs, seeds, post_deiso)
    out, single = seed_stability(per_seed, mean_sets, truth, ks)
    names = config_names([p for v in per_seed.values() for p, _ in v.values()])
    crit = relative_names(ks)
    cols = ["estimator", "config_hash", "epoch", "scores", "against", "n"] + crit
    rows, brief = [], []
    for r in out:
        vals = [r.values[c] for c in crit]
        rows.append([r.estimator, r.config_hash, r.epoch, r.scores, r.against, r.n] + vals)
        brief.append([names[(r.estimator, r.config_hash)], r.epoch, r.scores, r.against, r.n] + vals)
    title = (
        f"{head}: seed vs seed = relative criteria (one supernet's scores against another's as truth, on the "
        f"points both have); against {truth} = true criteria of one seed or of the seed mean"
    )
    if single:
        title += f" ({len(single)} groups with one seed left out)"
    return Rows(cols, rows, title=title, brief=Rows(["estimator", "epoch", "scores", "against", "n"] + crit, brief))


def _ensembles(args, sets, head: str, ks) -> Rows:
    from estbench.analysis.stability import ensemble_families, ensemble_names
    from estbench.errors import BadInput

    out = ensemble_families(sets, ks)
    if not out:
        raise BadInput(
            "--show ensembles needs configs of one estimator that differ only in --ensemble, scored at the same "
            "epoch (no such pair here); e.g. `estbench score --ose RUN --ensemble 3 --epoch E` next to the plain scores"
        )
    names = config_names(sets)
    crit = ensemble_names(ks)
    cols = ["estimator", "config_hash", "epoch", "family", "ensemble", "n"] + crit
    rows, brief = [], []
    for r in out:
        vals = [r.values[c] for c in crit]
        rows.append([r.estimator, r.config_hash, r.epoch, r.family, r.ensemble, r.n] + vals)
        brief.append([names[(r.estimator, r.config_hash)], r.epoch, r.ensemble, r.n] + vals)
    seeds = args[6]
    seeds_text = f"seed {', '.join(map(str, seeds))} averaged" if seeds else "mean over all seeds"
    title = (
        f"{head}; {seeds_text}: true criteria of configs that differ only in their temporal ensemble (the "
        "weights of the last K checkpoints averaged), side by side per epoch"
    )
    return Rows(cols, rows, title=title, brief=Rows(["estimator", "epoch", "ensemble", "n"] + crit, brief))
