"""The bias sections: complexity-level bias bars (Fig. 5, A29), op-level mutation bias
(Fig. A11-A13) and estimate-vs-complexity Pareto fronts with their gap (Fig. A8-A10).

Every drawn number comes from the library analyses the `estbench bias complexity / op /
pareto` commands print (``analysis.complexity``, ``analysis.opbias``,
``analysis.pareto``), called the same way on the report's final point sets; the
plotted arrays are kept in each section's tables (or the figure's image array)."""

from __future__ import annotations

import math

import numpy as np

from estbench.report.html.base import Figure, Missing, Section, Table, section
from estbench.report.html.plot import color, grid, hide_unused, new_figure, short

N_GROUPS = 5  # the CLI's --groups default
LEVELS = 5  # `bias pareto --levels` default
MAX_BAR_ESTIMATORS = 40
MAX_FRONT_PANELS = 12
MAX_GAP_LINES = 8
MAX_HIST_KINDS = 12
HIST_BINS = 30


# ---- shared reads -------------------------------------------------------------------


def _final_sets(ctx) -> list:
    sets = ctx.final_points()
    if not sets:
        raise Missing(
            f"no scores of {ctx.space} against {ctx.truth} match the selection; "
            f"`estbench score --space {ctx.space} -e params` adds structural ones"
        )
    return sets


def _names(sets) -> list[str]:
    from estbench.analysis.points import group_names

    return group_names(sets)


def complexity_values(ctx, sets) -> tuple[str, np.ndarray, np.ndarray]:
    """(by, representative arch ids sorted, their params or flops; NaN where none):
    params when the store has them, else flops (once per report)."""
    from estbench.analysis.points import COMPLEXITY, arch_values
    from estbench.errors import BadInput

    reps = np.unique(np.concatenate([p.rep for p in sets]))

    def make():
        for by in COMPLEXITY:  # params first, as the paper groups by Param
            try:
                values = arch_values(ctx.st, ctx.space, by, reps)
            except BadInput:  # no scores of that structural estimator
                continue
            if np.isfinite(values).any():
                return by, values
        return None

    got = ctx.cached(("bias.complexity", reps.tobytes()), make)
    if got is None:
        raise Missing(
            f"no params or flops scores of {ctx.space} in the store; "
            f"`estbench score --space {ctx.space} -e params` adds them (seconds)"
        )
    return got[0], reps, got[1]


def _with_complexity(ps, reps, values) -> tuple[object, np.ndarray, int]:
    """The point set restricted to the points with a complexity value, their values and
    how many were dropped."""
    c = values[np.searchsorted(reps, ps.rep)]
    ok = np.isfinite(c)
    if ok.all():
        return ps, c, 0
    return ps.subset(ok), c[ok], int((~ok).sum())


def _kd_order(ctx, sets) -> list[int]:
    """Indices of ``sets`` by KD (the criteria groups'), best first; NaN last."""
    kd = {(g.estimator, g.config_hash, g.epoch): g.values.get("kd", math.nan) for g in ctx.final_groups()}
    vals = [kd.get((p.estimator, p.config_hash, p.epoch), math.nan) for p in sets]
    return sorted(
        range(len(sets)), key=lambda i: (not math.isfinite(vals[i]), -vals[i] if math.isfinite(vals[i]) else 0)
    )


def label(name: str, width: int = 28) -> str:
    """A short label of a group name that keeps its " @epN" tail (what tells two
    configs of one estimator apart most often)."""
    head, sep, tail = name.rpartition(" @ep")
    if not sep or len(name) <= width:
        return short(name, width)
    return f"{short(head, max(8, width - len(tail) - 4))} @ep{tail}"


def structural(name: str) -> bool:
    """Whether ``name`` is a registered structural estimator (params, flops, relu...),
    whose estimate is a function of the architecture's size."""
    from estbench.errors import EstbenchError
    from estbench.estimators import ESTIMATORS

    try:
        return ESTIMATORS.meta(name).get("kind") == "structural"
    except EstbenchError:
        return False


def _num(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else "-"


def _range_text(lo, hi) -> str:
    return ", ".join(f"g{i} {_num(a)}..{_num(b)}" if math.isfinite(a) else f"g{i} empty" for i, (a, b) in
                     enumerate(zip(lo, hi)))  # fmt: skip


# ---- complexity-level bias -----------------------------------------------------------


def complexity_rows(ctx, groups: int = N_GROUPS) -> tuple[str, list[str], list[dict], list[str]]:
    """(by, names, ``complexity_bias`` result per kept estimator, notes), as
    `estbench bias complexity --by BY` computes them on the final point sets."""
    from estbench.analysis.complexity import complexity_bias
    from estbench.analysis.points import complexity_groups

    sets = _final_sets(ctx)
    by, reps, values = complexity_values(ctx, sets)
    names, results, notes = [], [], []
    for name, ps in zip(_names(sets), sets):
        ps, c, dropped = _with_complexity(ps, reps, values)
        if dropped:
            notes.append(f"{name}: {dropped} points without {by} left out")
        if len(ps) < groups:
            notes.append(f"{name}: {len(ps)} points for {groups} groups (not drawn)")
            continue
        g = complexity_groups(c, groups)
        d = complexity_bias(ps.y, ps.s, ps.truth_rank, ps.score_rank, g, groups, c, ps.truth, ps.score)
        if d["n"].max() < 2:
            notes.append(f"{name}: no complexity group has two points (not drawn)")
            continue
        names.append(name)
        results.append(d)
    return by, names, results, notes


def _group_colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.12 + 0.76 * i / max(n - 1, 1)) for i in range(n)]


def _bars(ax, values: np.ndarray, names: list[str], colors, labels) -> None:
    """Bars grouped by estimator (rows of ``values``), one bar per group (columns)."""
    n_est, n_grp = values.shape
    width = 0.8 / n_grp
    x = np.arange(n_est)
    for j in range(n_grp):
        ax.bar(x - 0.4 + width * (j + 0.5), np.nan_to_num(values[:, j]), width, color=colors[j], label=labels[j])
    ax.set_xticks(x, [label(n, 26) for n in names], rotation=55, ha="right", fontsize=7)
    ax.set_xlim(-0.6, n_est - 0.4)
    ax.axhline(0, color="black", lw=0.6)
    ax.grid(True, axis="y", alpha=0.3)
    for k in range(1, n_est):
        ax.axvline(k - 0.5, color="0.85", lw=0.5)


@section(
    "complexity",
    title="Complexity-level bias",
    paper="Fig. 5, A7, A29 (Sec. 5.1)",
    blurb="""Each estimator's points (final epoch) are cut into five complexity groups by params
    (by FLOPs when the store has no params; quantiles over that estimator's points, g0 = the smallest,
    tied values share a group). Top: the intra-group KD (Kendall's tau-b of truth vs estimate among the
    group's points only: how well the estimator orders architectures of similar size). Bottom: the mean
    ranking difference (true rank - estimated rank) / M over the group, ranks among all M points of the
    estimator: above 0 the group is overestimated (ranked better than it truly is), below 0 underestimated.
    A falling RD from g0 to g4 is the paper's "larger models are underestimated". A missing KD bar is NaN
    (a group with a constant truth or estimate, e.g. a structural estimator within one size). `estbench bias
    complexity` prints the same numbers.""",
    fills="estbench score --space S -e params (the complexity) and any estimator",
    order=60,
)
def complexity_section(ctx) -> Section:
    by, names, results, notes = complexity_rows(ctx)
    if not results:
        raise Missing(f"no estimator has {N_GROUPS} points with {by}; `estbench score --space {ctx.space}` more archs")
    shown = len(names)
    if shown > MAX_BAR_ESTIMATORS:
        notes.append(f"first {MAX_BAR_ESTIMATORS} of {shown} estimators drawn (the table has all)")
    kd = np.array([d["kd"] for d in results], dtype=float)
    rd = np.array([d["mean_rd"] for d in results], dtype=float)
    ranges = [(d["c_min"], d["c_max"]) for d in results]
    shared = all(np.array_equal(r[0], ranges[0][0], equal_nan=True) and np.array_equal(r[1], ranges[0][1],
                 equal_nan=True) for r in ranges)  # fmt: skip
    if shared:
        labels = [f"g{i} ({by} {_num(a)}..{_num(b)})" if math.isfinite(a) else f"g{i} (empty)"
                  for i, (a, b) in enumerate(zip(*ranges[0]))]  # fmt: skip
        notes.append(f"{by} ranges: {_range_text(*ranges[0])}")
    else:
        labels = [f"g{i}" + (" (smallest)" if i == 0 else " (largest)" if i == N_GROUPS - 1 else "")
                  for i in range(N_GROUPS)]  # fmt: skip
        notes.append(f"{by} ranges differ between estimators (`estbench bias complexity --by {by} --format csv`)")
    m = min(shown, MAX_BAR_ESTIMATORS)
    colors = _group_colors(N_GROUPS)
    width = min(16.0, max(6.5, 0.5 * m + 2.5))
    fig, axes = new_figure(width, 7.4, nrows=2, ncols=1, sharex=True)
    ax_kd, ax_rd = axes[0, 0], axes[1, 0]
    _bars(ax_kd, kd[:m], names[:m], colors, labels)
    _bars(ax_rd, rd[:m], names[:m], colors, labels)
    ax_kd.tick_params(labelbottom=False)
    ax_kd.set_ylabel("intra-group KD")
    ax_rd.set_ylabel("mean RD (+ over, - under)")
    ax_kd.set_title(f"{ctx.space} vs {ctx.truth}: complexity-level bias, {N_GROUPS} {by} groups", fontsize=9)
    handles, texts = ax_kd.get_legend_handles_labels()
    fig.legend(handles, texts, fontsize=7, ncol=max(1, min(N_GROUPS, int(width // 2.8))), loc="outside lower center",
               frameon=False)  # fmt: skip
    cols = ["estimator", "points"] + [f"kd_g{i}" for i in range(N_GROUPS)] + [f"rd_g{i}" for i in range(N_GROUPS)]
    rows = [[n, int(d["n"].sum())] + d["kd"].tolist() + d["mean_rd"].tolist() for n, d in zip(names, results)]
    table = Table(cols, rows, title=f"intra-group KD (kd_gI) and mean RD (rd_gI) per {by} group (g0 = smallest)")
    return Section(
        figures=[Figure("complexity_bias", f"intra-group KD and mean ranking difference per {by} group", fig,
                        alt=f"bars of KD and mean RD in {N_GROUPS} {by} groups for {m} estimators")],
        tables=[table],
        notes=notes,
    )  # fmt: skip


# ---- op-level bias -------------------------------------------------------------------


def space_pairs(ctx):
    """``opbias.space_pairs`` of the report's space and protocol, once per report."""
    from estbench.analysis import opbias

    return ctx.cached(("bias.op_pairs", ctx.space, ctx.protocol), lambda: opbias.space_pairs(ctx.st, ctx.space,
                                                                                            ctx.protocol))  # fmt: skip


def op_summaries(ctx) -> tuple[list[str], list, list[dict], list[tuple], object]:
    """(names, point sets, ``opbias.summarize`` per estimator, its (src, dst, kind)
    pairs, the ClassPairs), as `estbench bias op` computes them on the final points."""
    from estbench.analysis import opbias

    sets = _final_sets(ctx)
    pairs, arch_ids = space_pairs(ctx)
    n_kinds = len(pairs.kinds)
    sums, used = [], []
    for ps in sets:
        src, dst, kind = opbias.point_pairs(pairs, opbias.rep_positions(arch_ids, ps.rep))
        used.append((src, dst, kind))
        sums.append(opbias.summarize(src, dst, kind, ps.y, ps.s, n_kinds))
    return _names(sets), sets, sums, used, pairs


def op_matrix(sums: list[dict], n_kinds: int, column: str = "diff") -> np.ndarray:
    """estimators x kinds of a summary column (NaN: no pair of that kind)."""
    out = np.full((len(sums), n_kinds), np.nan)
    for i, d in enumerate(sums):
        out[i, d["kind"]] = d[column]
    return out


def _kind_label(kind: str) -> str:
    a, _, b = kind.partition("->")
    return f"{_op(a)}\u2192{_op(b)}" if b else short(kind, 24)


def _op(op: str) -> str:
    for long, abbr in (("nor_conv_", "conv"), ("sep_conv_", "sep"), ("dil_conv_", "dil"), ("skip_connect", "skip"),
                       ("_pool_", "pool")):  # fmt: skip
        op = op.replace(long, abbr)
    return op


def hist_kinds(kinds: list[str], diff: np.ndarray, cap: int = MAX_HIST_KINDS) -> list[int]:
    """The kinds to draw histograms of: one of each reversed pair (a->b, not b->a:
    its changes are the same negated) where both exist, the largest |diff| first up to
    ``cap``, shown in kind order."""
    at = {k: i for i, k in enumerate(kinds)}
    pick = []
    for i, k in enumerate(kinds):
        a, _, b = k.partition("->")
        j = at.get(f"{b}->{a}") if b else None
        if j is None or i < j:
            pick.append(i)
    pick = [i for i in pick if math.isfinite(diff[i])]
    if len(pick) > cap:
        pick = sorted(sorted(pick, key=lambda i: -abs(diff[i]))[:cap])
    return pick


def _heatmap(ctx, names, diff, kinds, n_pairs):
    n_est, n_k = diff.shape
    lim = float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 1.0
    lim = max(lim, 1e-3)
    fig, ax = new_figure(min(18.0, max(6.5, 0.55 * n_k + 3.0)), min(14.0, max(3.2, 0.32 * n_est + 2.4)))
    im = ax.imshow(np.ma.masked_invalid(diff), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(n_k), [_kind_label(k) for k in kinds], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n_est), [f"{label(n, 30)} ({c})" for n, c in zip(names, n_pairs)], fontsize=7)
    if n_est * n_k <= 900:
        for i in range(n_est):
            for j in range(n_k):
                v = diff[i, j]
                if math.isfinite(v):
                    ax.text(j, i, f"{v:+.2f}".replace("+0.", "+.").replace("-0.", "-."), ha="center",
                            va="center", fontsize=5.5, color="white" if abs(v) > 0.6 * lim else "black")  # fmt: skip
    fig.colorbar(im, ax=ax, shrink=0.8, label="score_up - truth_up")
    ax.set_title(f"{ctx.space} vs {ctx.truth}: op-level bias (red: the estimator credits the mutation more "
                 "often than the truth)", fontsize=9)  # fmt: skip
    return fig


def hist_bins(n_pairs: list[int]) -> int:
    """Bins of the histograms: about 2 sqrt(n) for the median kind (20 pairs get 8,
    18,750 the cap ``HIST_BINS``)."""
    return int(np.clip(2 * np.sqrt(np.median(n_pairs)), 8, HIST_BINS))


def _hist_grid(ctx, name, ps, pairs_of, summary, kinds, pick):
    """Histograms of d_truth and d_score per picked kind for one estimator, each
    divided by the standard deviation of the truth / score over its points."""
    from estbench.analysis import opbias

    src, dst, kind = pairs_of
    sy = float(np.std(ps.y)) or 1.0
    ss = float(np.std(ps.s)) or 1.0
    share = {int(k): (float(tu), float(su), int(n)) for k, tu, su, n in
             zip(summary["kind"], summary["truth_up"], summary["score_up"], summary["n"])}  # fmt: skip
    bins = hist_bins([share[k][2] for k in pick])
    h = opbias.histogram(src, dst, kind, ps.y / sy, ps.s / ss, len(kinds), bins)
    rows_n, cols_n = grid(len(pick), 5 if len(pick) % 5 == 0 else 4)
    fig, axes = new_figure(2.9 * cols_n, 2.2 * rows_n + 0.6, nrows=rows_n, ncols=cols_n)
    drawn = []
    for ax, k in zip(np.asarray(axes).ravel(), pick):
        at = h["kind"] == k
        lo, hi = h["bin_lo"][at], h["bin_hi"][at]
        tu, su, n = share[k]
        ax.stairs(h["n_truth"][at], np.append(lo, hi[-1]), fill=True, alpha=0.45, color=color(0),
                  label=f"truth up {tu:.0%}")  # fmt: skip
        ax.stairs(h["n_score"][at], np.append(lo, hi[-1]), color=color(3), lw=1.4, label=f"estimate up {su:.0%}")
        ax.axvline(0, color="black", lw=0.5)
        ax.set_title(f"{_kind_label(kinds[k])} ({n} pairs)", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6, loc="upper left", frameon=False)
        drawn.append([kinds[k], n, tu, su, su - tu])
    hide_unused(axes, len(pick))
    fig.supxlabel("change (end - start) / std over the points; higher is better for both", fontsize=8)
    fig.supylabel("pairs", fontsize=8)
    fig.suptitle(f"{short(name, 40)}: change of truth and estimate per mutation (in units of their std over "
                 "the points)", fontsize=9)  # fmt: skip
    return fig, h, drawn


def _hist_choice(ctx, sets, sums) -> int | None:
    """The estimator whose histograms are drawn: the space's OS score (``default_oneshot``,
    as the paper's Fig. A11 draws OS changes) when scored, else the best KD among the
    non-structural ones that have pairs (any, if all are structural)."""
    order = [i for i in _kd_order(ctx, sets) if int(sums[i]["n"].sum())]
    space = ctx.space_obj()
    os_score = space.default_oneshot if space else None
    ranked = [i for i in order if sets[i].estimator == os_score] + [
        i for i in order if not structural(sets[i].estimator)
    ]
    return next(iter(ranked), order[0] if order else None)


@section(
    "op",
    title="Op-level bias: mutations",
    paper="Fig. A11, A12, A13 (A.2.2)",
    blurb="""For every mutation kind (one edge's operation a replaced by b) and estimator, over the
    pairs of points that differ by that one mutation (under deiso: pairs of isomorphism classes):
    truth_up is the share of pairs whose truth increases, score_up the share whose estimate increases.
    The heatmap shows diff = score_up - truth_up: red = the estimator credits the mutation more often
    than the truth does (it overestimates what the mutation brings), blue = underestimates it; the
    number after each estimator is its pairs. The histograms (one estimator: the space's OS score when
    scored, os_acc or os_loss on NB301 as in the paper, else the best KD that is not structural) show
    the change of truth and of estimate of each pair per kind, in units of their standard deviation over the points, with the shares of increases in the legends (one direction of
    each a<->b kind; the reverse is the mirror image). `estbench bias op` prints the table, `--show
    pairs` every pair.""",
    fills="estbench score on a space with mutations (archs that are each other's neighbours)",
    order=65,
)
def op_section(ctx) -> Section:
    names, sets, sums, used, pairs = op_summaries(ctx)
    kinds = list(pairs.kinds)
    n_pairs = [int(d["n"].sum()) for d in sums]
    keep = [i for i, n in enumerate(n_pairs) if n]
    notes = [f"{names[i]}: no mutation pair with both ends scored (not drawn)" for i, n in enumerate(n_pairs) if not n]
    if not keep:
        raise Missing(
            f"no mutation pairs with both ends scored for {ctx.space} vs {ctx.truth}; score neighbouring archs, "
            f"e.g. `estbench score --space {ctx.space} -e params --archs all`"
        )
    diff = op_matrix([sums[i] for i in keep], len(kinds))
    fig = _heatmap(ctx, [names[i] for i in keep], diff, kinds, [n_pairs[i] for i in keep])
    figures = [Figure("op_diff", f"score_up - truth_up per estimator and mutation kind ({len(kinds)} kinds)", fig,
                      alt="heatmap of the op-level bias diff, estimators by mutation kinds")]  # fmt: skip
    rows = []
    for r, i in enumerate(keep):
        d = diff[r]
        hi, lo = int(np.nanargmax(d)), int(np.nanargmin(d))
        rows.append([names[i], n_pairs[i], kinds[hi], float(d[hi]), kinds[lo], float(d[lo]),
                     float(np.nanmean(np.abs(d)))])  # fmt: skip
    tables = [Table(["estimator", "pairs", "most overestimated kind", "max diff", "most underestimated kind", "min diff",
                     "mean |diff|"], rows, title="each estimator's extreme mutation kinds (diff = score_up - truth_up)")]  # fmt: skip
    best = _hist_choice(ctx, sets, sums)
    if best is not None:
        pick = hist_kinds(kinds, op_matrix([sums[best]], len(kinds))[0])
        if pick:
            hfig, _, drawn = _hist_grid(ctx, names[best], sets[best], used[best], sums[best], kinds, pick)
            figures.append(Figure("op_hist", f"{names[best]}: truth and estimate changes per mutation kind", hfig,
                                  alt=f"histograms of truth and estimate changes of {names[best]}"))  # fmt: skip
            tables.append(Table(["kind", "pairs", "truth_up", "score_up", "diff"], drawn,
                                title=f"{names[best]}: the kinds of the histograms"))  # fmt: skip
    return Section(figures=figures, tables=tables, notes=notes)


# ---- Pareto fronts -------------------------------------------------------------------


def pareto_rows(ctx, groups: int = N_GROUPS, levels: int = LEVELS) -> tuple[str, list[str], list, list, list]:
    """(by, names, point sets with their complexity, estimate front levels, ``pareto_gap``
    results) as `estbench bias pareto --by BY` computes them on the final points."""
    from estbench.analysis.pareto import front_levels, pareto_gap
    from estbench.analysis.points import complexity_groups

    sets = _final_sets(ctx)
    by, reps, values = complexity_values(ctx, sets)
    names, kept, lvls, gaps = [], [], [], []
    for name, ps in zip(_names(sets), sets):
        ps, c, _ = _with_complexity(ps, reps, values)
        if len(ps) < 2:
            continue
        level = front_levels(ps.s, c, levels)
        names.append(name)
        kept.append((ps, c))
        lvls.append(level)
        gaps.append(pareto_gap(ps.y, level, c, complexity_groups(c, groups), levels))
    return by, names, kept, lvls, gaps


def _crop_worst(ax, ps, q: float = 0.02) -> None:
    """Cut the truth axis at its worst ``q`` quantile when points lie beyond it (NB201's
    few 10% archs would squash every other point into a band)."""
    y = ps.truth
    worst = np.quantile(y, q if ps.truth_higher_is_better else 1 - q)
    beyond = y < worst if ps.truth_higher_is_better else y > worst
    if not beyond.any():
        return
    best = float(y.max() if ps.truth_higher_is_better else y.min())
    pad = 0.05 * abs(best - worst) or 1.0
    lo, hi = sorted((float(worst), best))
    ax.set_ylim(lo - pad, hi + pad)


def _fronts_figure(ctx, by, names, kept, lvls, show):
    from estbench.analysis.pareto import front_levels

    rows_n, cols_n = grid(len(show), 4)
    fig, axes = new_figure(3.3 * cols_n, 2.7 * rows_n + 0.5, nrows=rows_n, ncols=cols_n)
    for ax, i in zip(np.asarray(axes).ravel(), show):
        ps, c = kept[i]
        ax.scatter(c, ps.truth, s=3, color="0.78", lw=0, rasterized=True, label="points")
        true_front = np.flatnonzero(front_levels(ps.y, c, 1) == 1)
        true_front = true_front[np.argsort(c[true_front], kind="stable")]
        ax.plot(c[true_front], ps.truth[true_front], color="black", lw=1.0, drawstyle="steps-post",
                label="true front")  # fmt: skip
        on = np.flatnonzero(lvls[i] == 1)
        on = on[np.argsort(c[on], kind="stable")]
        ax.plot(c[on], ps.truth[on], "o-", color=color(3), ms=3.5, lw=0.8, label=f"estimate front ({len(on)})")
        ax.set_title(label(names[i], 44), fontsize=8)
        _crop_worst(ax, ps)
        ax.tick_params(labelsize=6)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        ax.xaxis.get_offset_text().set_fontsize(6)
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=6, loc="lower right", frameon=False)
    hide_unused(axes, len(show))
    fig.supxlabel(by, fontsize=8)
    fig.supylabel(ctx.truth, fontsize=8)
    fig.suptitle(f"{ctx.space}: truth against {by}; the estimator's first Pareto level (estimate vs {by}) "
                 "against the true front", fontsize=9)  # fmt: skip
    return fig


def _gap_figure(ctx, by, names, gaps, show, groups, levels):
    fig, axes = new_figure(2.6 * groups + 2.2, 3.3, nrows=1, ncols=groups, sharey=True)
    lv = np.arange(1, levels + 1)
    for g in range(groups):
        ax = axes[0, g]
        for r, i in enumerate(show):
            d = gaps[i]
            at = d["group"] == g
            if at.any():
                ax.plot(d["levels"][at], d["gap"][at], "o-", ms=3, lw=1, color=color(r), label=label(names[i], 34))
        ax.set_title(f"{by} group {g}" + (" (smallest)" if g == 0 else " (largest)" if g == groups - 1 else ""),
                     fontsize=8)  # fmt: skip
        ax.set_xticks(lv)
        ax.tick_params(labelsize=6)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("Pareto levels L", fontsize=7)
    axes[0, 0].set_ylabel(f"gap ({ctx.truth})", fontsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, fontsize=6, loc="outside right center", frameon=False)
    fig.suptitle("truth of the group's best minus the best the estimator's first L levels find in it", fontsize=9)
    return fig


@section(
    "pareto",
    title="Pareto fronts of estimate vs complexity",
    paper="Fig. A8, A9, A10 (A.2.1)",
    blurb="""Top: per estimator (final epoch; those with the highest KD when there are many), the truth of
    its points against their params (FLOPs when the store has no params) in grey, the true Pareto front
    (best truth for the size: black steps) and the points on the estimator's first Pareto level of
    estimate vs params (coloured): the architectures a search trading estimate for size would pick,
    drawn at their true value. Bottom (Fig. A10): per complexity group (five quantile groups, g0 = the
    smallest), the truth gap between the group's best architecture and the best one on the estimator's
    first L front levels (computed over all points, then restricted to the group; NaN = no level
    reaches the group); it shrinks as L grows. The truth axis is cut at the worst 2% of the points (NB201's
    few 10% architectures would squash the rest); structural estimators (whose estimate is the size
    itself) stay in the table but not in the figures. `estbench bias pareto` prints the gaps, `--show
    fronts` the front points.""",
    fills="estbench score --space S -e params (the complexity) and any estimator",
    order=70,
)
def pareto_section(ctx) -> Section:
    by, names, kept, lvls, gaps = pareto_rows(ctx)
    if not names:
        raise Missing(f"no estimator has two points with {by}; `estbench score --space {ctx.space}` more archs")
    sets = [ps for ps, _ in kept]
    order = _kd_order(ctx, sets)
    notes = []
    # a structural estimate is a function of size: its front against size is degenerate
    sized = [i for i in order if not structural(sets[i].estimator)]
    left_out = len(order) - len(sized) if sized else 0
    order = sized or order
    show, lines = order[:MAX_FRONT_PANELS], order[:MAX_GAP_LINES]
    if left_out or len(order) > MAX_GAP_LINES:
        notes.append(
            f"figures: the {len(show)} (fronts) and {len(lines)} (gap lines) estimators with the highest KD of "
            f"{len(names)}" + (f", structural ones ({left_out}) left out" if left_out else "") + "; the table has all"
        )
    fronts = _fronts_figure(ctx, by, names, kept, lvls, show)
    gap_fig = _gap_figure(ctx, by, names, gaps, lines, N_GROUPS, LEVELS)
    cols = ["estimator"] + [f"g{g} L={lv}" for g in range(N_GROUPS) for lv in (1, LEVELS)]
    rows = []
    for name, d in zip(names, gaps):
        row = [name]
        for g in range(N_GROUPS):
            for lv in (1, LEVELS):
                at = (d["group"] == g) & (d["levels"] == lv)
                row.append(float(d["gap"][at][0]) if at.any() else math.nan)
        rows.append(row)
    lo = [min((float(d["lo"][d["group"] == g].min()) for d in gaps if (d["group"] == g).any()), default=math.nan)
          for g in range(N_GROUPS)]  # fmt: skip
    hi = [max((float(d["hi"][d["group"] == g].max()) for d in gaps if (d["group"] == g).any()), default=math.nan)
          for g in range(N_GROUPS)]  # fmt: skip
    notes.append(f"{by} groups (over all estimators): {_range_text(lo, hi)}")
    return Section(
        figures=[
            Figure("pareto_fronts", f"truth vs {by}: the estimator's first Pareto level against the true front",
                   fronts, alt=f"scatter of truth against {by} per estimator with the fronts"),
            Figure("pareto_gap", f"gap between each {by} group's best and the best on the first L levels", gap_fig,
                   alt="line plots of the Pareto gap per complexity group"),
        ],
        tables=[Table(cols, rows, title=f"gap (truth units) per {by} group at L = 1 and L = {LEVELS} levels")],
        notes=notes,
    )  # fmt: skip
