"""The sections every store with scores has: the criteria table, quality against cost
and the agreement heatmap."""

from __future__ import annotations

import json
import math

import numpy as np

from estbench.report.html.base import Figure, Missing, Section, Table, best_cells, section
from estbench.report.html.plot import color, new_figure, short

# (column, criterion key, higher is better)
A9 = (
    ("KD", "kd", True),
    ("SpearmanR", "spearman", True),
    ("P@top5%", "p_top@5%", True),
    ("P@bottom5%", "p_bottom@5%", True),
    ("BR@5%", "br@5%", False),
)


def no_scores(ctx) -> Missing:
    return Missing(
        f"no scores of {ctx.space} against {ctx.truth} match the selection; "
        f"`estbench score --space {ctx.space} -e params` adds structural ones"
    )


def final_groups(ctx) -> list:
    groups = ctx.final_groups()
    if not groups:
        raise no_scores(ctx)
    return groups


def names_of(groups) -> list[str]:
    from estbench.report.tables import group_label

    return [group_label(groups, g) for g in groups]


def _config_text(g) -> str:
    if g.label:
        return f"run {g.label}"
    try:
        cfg = json.loads(g.config or "{}")
    except ValueError:
        return g.config_hash[:10]
    return ", ".join(f"{k}={v}" for k, v in sorted(cfg.items())) or "-"


@section(
    "criteria",
    title="Ranking criteria",
    paper="Table A9, A10, A12",
    blurb="""Each estimator's ranking quality against the truth: Kendall's tau-b (KD), Spearman's rho,
    P@top5% / P@bottom5% (the share of the estimator's best / worst 5% that truly are among the best /
    worst 5%) and BR@5% (the best true rank among the estimator's top 5%, as a fraction; lower is better).
    The best value of each column is in bold. One row per estimator and config at its last scored epoch
    (or every --epoch asked); points = the protocol's points, excluded = failed + non-finite scores,
    s/arch = seconds per architecture. `estbench criteria` prints every K and epoch.""",
    fills="estbench score (any estimator); estbench criteria for the long form",
    order=10,
)
def criteria_section(ctx) -> Section:
    from estbench.report.tables import interval_text

    groups = final_groups(ctx)
    names = names_of(groups)
    cols = ["estimator"] + [c for c, _, _ in A9] + ["points", "excluded", "s/arch"]
    numeric = [[n] + [g.values[k] for _, k, _ in A9] + [int(g.values["n"]), g.n_failed + g.n_nonfinite,
               g.seconds_per_arch] for n, g in zip(names, groups)]  # fmt: skip
    best = best_cells(cols, numeric, {c: hib for c, _, hib in A9})
    rows = numeric
    if ctx.ci is not None:
        rows = [
            [r[0]] + [interval_text(r[1 + i], (g.ci or {}).get(k)) for i, (_, k, _) in enumerate(A9)] + r[6:]
            for r, g in zip(numeric, groups)
        ]
    main = Table(cols, rows, title=f"{ctx.space} vs {ctx.truth}: criteria at K = 5%", best=best)
    notes = []
    if ctx.ci is not None:
        few = [n for n, g in zip(names, groups) if not g.ci]
        if few:
            notes.append(f"no bootstrap interval (fewer than 10 points): {', '.join(few)}")
    configs = Table(
        ["estimator", "estimator name", "epoch", "config", "config hash"],
        [[n, g.estimator, g.epoch, _config_text(g), g.config_hash[:12]] for n, g in zip(names, groups)],
        title="What each row is: its estimator, epoch and config",
    )
    return Section(tables=[main, configs], notes=notes)


@section(
    "cost",
    title="Quality against cost",
    paper="the point of an efficient estimator",
    blurb="""KD against the seconds each estimator spent per architecture (log scale), one point per
    estimator and config: up and to the left is better. With --ci the vertical bars are the bootstrap
    intervals of KD. The time is the mean wall time of the runs that wrote the scores (one-shot scores
    exclude the supernet's training time).""",
    fills="estbench score (any estimator; the time is recorded with the scores)",
    order=20,
)
def cost_section(ctx) -> Section:
    groups = final_groups(ctx)
    names = names_of(groups)
    secs = np.array([g.seconds_per_arch for g in groups], dtype=float)
    kd = np.array([g.values["kd"] for g in groups], dtype=float)
    keep = np.isfinite(secs) & np.isfinite(kd)
    if not keep.any():
        raise Missing("no estimator has both a KD and a recorded time per architecture")
    notes = [f"{n}: no recorded time per architecture (not drawn)" for n, k in zip(names, keep) if not k]
    floor = np.nanmin(secs[keep & (secs > 0)]) / 2 if np.any(keep & (secs > 0)) else 1e-6
    x = np.where(secs > 0, secs, floor)
    if np.any(keep & (secs <= 0)):
        notes.append(f"a time of 0 s is drawn at {floor:.2g} s")
    fig, ax = new_figure(7.5, 4.8)
    for i in np.flatnonzero(keep):
        g = groups[i]
        ci = (g.ci or {}).get("kd") if ctx.ci is not None else None
        yerr = None if ci is None else [[kd[i] - ci[0]], [ci[1] - kd[i]]]
        ax.errorbar(x[i], kd[i], yerr=yerr, fmt="o", color=color(i), capsize=3, label=short(names[i], 32))
        ax.annotate(short(names[i], 24), (x[i], kd[i]), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per architecture (log)")
    ax.set_ylabel(f"KD vs {ctx.truth}")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{ctx.space}: ranking quality against cost")
    if keep.sum() <= 12:
        ax.legend(fontsize=7, loc="best")
    rows = [[n, float(secs[i]), float(kd[i])] for i, n in enumerate(names) if keep[i]]
    return Section(
        figures=[Figure("cost_quality", f"KD against seconds per architecture ({int(keep.sum())} estimators)", fig)],
        tables=[Table(["estimator", "s/arch", "KD"], rows, best=best_cells(["estimator", "s/arch", "KD"], rows,
                                                                             {"s/arch": False, "KD": True}))],
        notes=notes,
    )  # fmt: skip


@section(
    "agreement",
    title="Agreement between truth metrics and estimators",
    paper="Fig. 4, A21, A22",
    blurb="""Kendall's tau-b between every pair of columns: the truth metrics named *-test (every metric
    if none is) and every estimator at its last scored epoch, all oriented so that higher is better,
    each cell over the points both columns have. Estimator-vs-truth cells are the estimator's KD;
    estimator-vs-estimator cells show which estimators are redundant; truth-vs-truth cells how alike
    the datasets rank architectures. `estbench bias agreement` prints the matrix.""",
    fills="estbench score (two or more columns: a truth metric and an estimator at least)",
    order=30,
)
def agreement_section(ctx) -> Section:
    from estbench.analysis.agreement import agreement

    final = {(p.estimator, p.config_hash, p.epoch) for p in ctx.final_points()}
    if not final:
        raise no_scores(ctx)
    res = agreement(ctx.st, ctx.space, None, ctx.protocol, ctx.estimators, ctx.epochs, ctx.seeds, ctx.post_deiso)
    k_t = res.kinds.count("truth")
    keep = list(range(k_t)) + [
        k_t + j for j, g in enumerate(res.groups) if (g.estimator, g.config_hash, g.epoch) in final
    ]
    names = [res.names[i] for i in keep]
    corr = res.corr[np.ix_(keep, keep)]
    n = len(names)
    size = max(4.5, 0.42 * n + 2.0)
    fig, ax = new_figure(size + 1.0, size)
    im = ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), [short(x, 22) for x in names], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), [short(x, 22) for x in names], fontsize=7)
    if n <= 24:
        for i in range(n):
            for j in range(n):
                v = corr[i, j]
                if math.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if abs(v) > 0.6 else "black")  # fmt: skip
    if k_t and n > k_t:
        ax.axhline(k_t - 0.5, color="black", lw=0.8)
        ax.axvline(k_t - 0.5, color="black", lw=0.8)
    fig.colorbar(im, ax=ax, shrink=0.8, label="Kendall's tau-b")
    ax.set_title(f"{ctx.space}: agreement (truth metrics first)")
    return Section(
        figures=[Figure("agreement", f"Kendall's tau-b between {k_t} truth metrics and {n - k_t} estimators", fig)],
        notes=[f"cells over {int(res.n[np.ix_(keep, keep)].min())}-{int(res.n[np.ix_(keep, keep)].max())} points"],
    )
