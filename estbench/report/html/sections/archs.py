"""Architecture-level bias as pictures (paper Fig. 6, A25, A27, A28): the top-3
architectures of every estimator drawn as cells by the space's own drawing
(``SearchSpace.cell_graphs``), and the histogram of each estimator's scores between
its 0.1 and 0.9 quantiles (Fig. A25 bottom)."""

from __future__ import annotations

import numpy as np

from estbench.report.html.base import Figure, Missing, Section, Table, section
from estbench.report.html.plot import color, grid, hide_unused, new_figure, short, spans_orders

TOP_K = 3
MAX_ESTIMATORS = 24  # rows of the cell figure (besides the truth row)
MAX_HISTS = 30
QUANTILES = (0.1, 0.9)
BLOCKS_PER_ROW = 2  # estimators side by side in the cell figure (3 panels each)
FIG_WIDTH = 11.5  # inches: the page is 1180 px wide at 100 dpi


def _final_sets(ctx) -> tuple[list, list[str]]:
    from estbench.analysis.points import group_names
    from estbench.report.html.sections.overview import no_scores

    sets = [ps for ps in ctx.final_points() if len(ps)]
    if not sets:
        raise no_scores(ctx)
    return sets, group_names(sets)


def _num(v: float) -> str:
    return f"{v:.4g}" if np.isfinite(v) else "nan"


# ---- top architectures -----------------------------------------------------------------


@section(
    "top_archs",
    title="Top architectures of each estimator",
    paper="Fig. 6, A25 (top), A27, A28",
    blurb="""The three architectures each estimator ranks best (at its last scored epoch), drawn as
    cells: nodes left to right from the input to the output, each edge coloured and labelled by its
    operation (edges of the zero op `none` are left out). The first row is the truth's own top-3 for
    reference. Each panel names the estimator's rank (#1 = its best), the true rank among the same
    points and the truth value, and the score: a top architecture with a poor true rank is one the
    estimator overestimates, and a pattern shared by an estimator's panels (no skip connections,
    only 1x1 convolutions, the largest cells) is its bias. The table lists the drawn architectures;
    `estbench bias arch` prints more of them (--k) with their op counts.""",
    fills="estbench score (any estimator); the space must have a drawing (SearchSpace.cell_graphs)",
    order=80,
)
def top_archs_section(ctx) -> Section:
    from estbench.analysis.archbias import extremes
    from estbench.report.html.cells import op_colors

    space = ctx.space_obj()
    if space is None:
        raise Missing(f"space {ctx.space} is not registered in this install, so its cells cannot be drawn")
    sets, names = _final_sets(ctx)
    facts = ctx.cached(("arch_facts", ctx.protocol), lambda: ctx.st.arch_facts(ctx.space, ctx.protocol))
    ids = facts["arch_id"].astype(np.int64)

    def arch_str(rep: int) -> str:
        return str(facts["arch_str"][np.searchsorted(ids, rep)])

    if not space.cell_graphs(arch_str(int(sets[0].rep[0]))):
        raise Missing(f"the {ctx.space} space has no cell drawing (SearchSpace.cell_graphs returns none)")
    shown = list(range(min(len(sets), MAX_ESTIMATORS)))
    ref = max(range(len(sets)), key=lambda i: len(sets[i]))  # the truth's top among the most points
    pos, _ = extremes(sets[ref].truth_rank, TOP_K, "top")
    blocks = [("truth", f"truth {ctx.truth} (best of {len(sets[ref])} points)",
               [_pick(sets[ref], p, arch_str, truth=True) for p in pos])]  # fmt: skip
    for i in shown:
        pos, _ = extremes(sets[i].score_rank, TOP_K, "top")
        blocks.append((names[i], f"{names[i]} ({len(sets[i])} points)", [_pick(sets[i], p, arch_str) for p in pos]))
    keys = ("points", "rank", "arch_id", "arch_str", "score", "true_rank", "truth")
    rows = [[name, *(d[k] for k in keys)] for name, _, picks in blocks for d in picks]
    graphs = {d["arch_str"]: space.cell_graphs(d["arch_str"]) for _, _, picks in blocks for d in picks}
    first = space.parse(next(iter(graphs)))  # the space's own op order first, for stable colours
    colors = op_colors([*space.op_counts(first), *(op for gs in graphs.values() for g in gs for _, _, op in g.edges)])
    fig = _draw_blocks([(title, picks) for _, title, picks in blocks], graphs, colors)
    notes = []
    if len(sets) > len(shown):
        rest = ", ".join(names[len(shown) :])
        notes.append(f"first {len(shown)} of {len(sets)} estimators drawn; not drawn: {rest} (`estbench bias arch`)")
    notes.append(
        "ranks are among each estimator's own points (an estimator that scored fewer architectures ranks "
        f"fewer); the truth row ranks the {len(sets[ref])} points of {names[ref]}"
    )
    caption = f"Top-{TOP_K} architectures of the truth and {len(shown)} estimators ({ctx.space}, {ctx.truth})"
    title = "The drawn architectures (rank: the estimator's, 1 = its best; the truth row's: the true rank)"
    return Section(
        figures=[Figure("top_archs", caption, fig, alt="cells of the top architectures of each estimator")],
        tables=[Table(["estimator", *keys], rows, title=title)],
        notes=notes,
    )


def _pick(ps, p: int, arch_str, truth: bool = False) -> dict:
    rep = int(ps.rep[p])
    return {
        "points": len(ps),
        "rank": int(ps.truth_rank[p] if truth else ps.score_rank[p]),
        "arch_id": rep,
        "arch_str": arch_str(rep),
        "score": None if truth else float(ps.score[p]),
        "true_rank": int(ps.truth_rank[p]),
        "truth": float(ps.truth[p]),
    }


def _panel_title(d: dict) -> str:
    if d["score"] is None:
        return f"true #{d['true_rank']}\ntruth {_num(d['truth'])}"
    return f"#{d['rank']}  true #{d['true_rank']}\ntruth {_num(d['truth'])}  score {_num(d['score'])}"


def _draw_blocks(blocks, graphs: dict, colors: dict[str, str]):
    """The cell figure: ``BLOCKS_PER_ROW`` estimators per row, each a header over its
    panels, every cell drawn into one axes whose data units are inches (one axes per
    cell would cost seconds for 75 cells)."""
    from estbench.report.html.cells import cell_extent, draw_cell, op_legend

    ext = np.array([cell_extent(g) for gs in graphs.values() for g in gs])
    left, right, lo, hi = ext[:, 0].min(), ext[:, 1].max(), ext[:, 2].min(), ext[:, 3].max()
    per_arch = max(len(gs) for gs in graphs.values())
    gap, pad = 0.2, 0.12  # inches between blocks, figure margin
    slot_w = (FIG_WIDTH - 2 * pad - gap * (BLOCKS_PER_ROW - 1)) / (BLOCKS_PER_ROW * TOP_K)
    scale = min(0.9 * slot_w / (right - left), 1.4 / (hi - lo))  # inches per node step
    cell_h = (hi - lo) * scale
    head, ptitle, legend_h, sub = 0.26, 0.3, 0.3, 0.12 if per_arch > 1 else 0.0
    block_h = head + ptitle + per_arch * (cell_h + sub) + 0.14
    n_rows = (len(blocks) + BLOCKS_PER_ROW - 1) // BLOCKS_PER_ROW
    height = legend_h + n_rows * block_h + pad
    fig, _ = new_figure(FIG_WIDTH, height)
    fig.clear()
    fig.set_layout_engine("none")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, FIG_WIDTH)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_axis_off()
    for b, (title, picks) in enumerate(blocks):
        row, col = divmod(b, BLOCKS_PER_ROW)
        x0 = pad + col * (TOP_K * slot_w + gap)
        top = height - legend_h - row * block_h
        ax.text(x0 + 0.05, top - head / 2, short(title, 64), fontsize=8.5, fontweight="bold", va="center",
                color="#8b0000" if b == 0 else "black")  # fmt: skip
        if col:
            ax.plot([x0 - gap / 2] * 2, [top - block_h + 0.08, top - 0.04], color="#cccccc", lw=0.8)
        for k, d in enumerate(picks):
            cx = x0 + (k + 0.5) * slot_w
            ax.text(cx, top - head, _panel_title(d), fontsize=7, ha="center", va="top", linespacing=1.15)
            y = top - head - ptitle
            for g in graphs[d["arch_str"]]:
                if per_arch > 1:
                    ax.text(cx, y, g.name, fontsize=6.5, ha="center", va="top", style="italic", color="#555555")
                    y -= sub
                draw_cell(ax, g, colors, at=(cx - (left + right) / 2 * scale, y - hi * scale), scale=scale)
                y -= cell_h
    op_legend(fig, colors, loc="upper center", bbox_to_anchor=(0.5, 1.0))
    return fig


# ---- score histograms ------------------------------------------------------------------


def clipped_scores(score: np.ndarray, quantiles: tuple[float, float] = QUANTILES) -> tuple[np.ndarray, float, float]:
    """The finite scores within their ``quantiles`` (inclusive), and the two bounds."""
    s = np.asarray(score, dtype=float)
    s = s[np.isfinite(s)]
    if not len(s):
        return s, float("nan"), float("nan")
    lo, hi = (float(q) for q in np.quantile(s, quantiles))
    return s[(s >= lo) & (s <= hi)], lo, hi


@section(
    "score_hist",
    title="Score distributions",
    paper="Fig. A25 (bottom)",
    blurb="""The histogram of each estimator's scores (at its last scored epoch, one per point),
    between the scores' 0.1 and 0.9 quantiles: every estimator has outliers that would squash the
    rest into one bar. The x axis is logarithmic where the shown scores are positive and span more
    than two orders of magnitude (synflow's span tens). A narrow or lumpy distribution says the
    estimator separates few architectures (many ties); a bimodal one often splits the space by one
    decision (e.g. cells with or without a parameterised path).""",
    fills="estbench score (any estimator)",
    order=85,
)
def score_hist_section(ctx) -> Section:
    sets, names = _final_sets(ctx)
    shown = list(range(min(len(sets), MAX_HISTS)))
    nrows, ncols = grid(len(shown), 5)
    fig, axes = new_figure(FIG_WIDTH, 1.75 * nrows + 0.3, nrows, ncols)
    axes = np.asarray(axes, dtype=object).reshape(nrows, ncols)  # one Axes for a 1 x 1 grid
    rows = []
    for k, i in enumerate(shown):
        ax = axes.ravel()[k]
        vals, lo, hi = clipped_scores(sets[i].score)
        log = bool(len(vals) and vals.min() > 0 and spans_orders(vals))
        bins = int(np.clip(np.sqrt(max(len(vals), 1)) * 1.5, 8, 40))
        edges = np.geomspace(vals.min(), vals.max(), bins + 1) if log else bins
        if len(vals):
            ax.hist(vals, bins=edges, color=color(i), alpha=0.85, edgecolor="white", linewidth=0.4)
        if log:
            ax.set_xscale("log")
        left_out = int(len(sets[i]) - len(vals))
        ax.set_title(f"{short(names[i], 40)}\n{len(vals)} shown, {left_out} left out", fontsize=7)
        ax.tick_params(labelsize=6.5)
        ax.xaxis.get_offset_text().set_fontsize(6.5)
        ax.grid(True, alpha=0.25)
        rows.append([names[i], len(sets[i]), lo, hi, len(vals), left_out, "log" if log else "linear"])
    hide_unused(axes, len(shown))
    fig.supxlabel("score (between its 0.1 and 0.9 quantiles)", fontsize=8)
    fig.supylabel("points", fontsize=8)
    left = [r[5] for r in rows]
    notes = [f"each panel leaves out the points below its 0.1 or above its 0.9 quantile: {min(left)}-{max(left)} "
             "points per panel (the table says how many each)"]  # fmt: skip
    if len(sets) > len(shown):
        notes.append(f"first {len(shown)} of {len(sets)} estimators shown")
    cols = ["estimator", "points", "q0.1", "q0.9", "shown", "left out", "x axis"]
    return Section(
        figures=[Figure("score_hist", f"Scores between the 0.1 and 0.9 quantiles, {len(shown)} estimators", fig)],
        tables=[Table(cols, rows, title="What each histogram shows")],
        notes=notes,
    )
