"""The variance sections: validation batches and intra-level KD (Fig. 3), ranking
stability between checkpoints (Fig. 7), temporal ensembles (Fig. 8), multi-model
forgetting (Fig. A14) and gradient similarity per layer (Fig. A15).

Every plotted number is the library's (``analysis.batches``, ``analysis.stability``,
``analysis.forgetting``, ``analysis.gradsim``), the values ``estbench variance ...``
prints."""

from __future__ import annotations

import numpy as np

from estbench.report.html.base import Figure, Missing, Section, Table, section
from estbench.report.html.plot import color, grid, hide_unused, new_figure, short
from estbench.report.html.sections.training import panels

KS = (0.05,)
PTOP = "p_top@5%"
MAX_PANELS = 8
MAX_LINES = 12
MIN_LEVELS = 3  # levels of 2+ points with a finite KD for a histogram


def _config_names(ctx, items) -> dict[tuple[str, str], str]:
    """(estimator, config) -> its name without the epoch (``variance epochs``'s), for the
    (estimator, config) of every item."""
    from estbench.report.html.sections.training import config_names

    known = config_names(ctx)
    return {(x.estimator, x.config_hash): known.get((x.estimator, x.config_hash), x.estimator) for x in items}


def _epoch_colors(epochs: list[int]) -> dict[int, tuple]:
    """A viridis colour per epoch, early dark to late light."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    n = max(1, len(epochs) - 1)
    return {e: cmap(0.85 * i / n) for i, e in enumerate(sorted(epochs))}


# ---- batches ----------------------------------------------------------------------------
def batch_groups(ctx) -> list:
    from estbench.analysis.batches import load_batch_points

    return ctx.cached(
        "batch_groups",
        lambda: load_batch_points(
            ctx.st, ctx.space, ctx.truth, ctx.protocol, ctx.estimators, ctx.epochs, ctx.seeds, ctx.post_deiso
        ),
    )


@section(
    "batches",
    title="Validation batches and intra-level KD",
    paper="Fig. 3, A3",
    blurb="""Left: KD of each estimator group against the number b of validation batches its score
    averages (the mean of the first b stored batches; b = B is the criteria's value), one panel per
    estimator config and a line per checkpoint epoch. Right: the intra-level KDs: a level is the set of
    points tied under the 1-batch score (one batch of 128 images gives at most 129 accuracy values); within
    each level of 2+ points, Kendall's tau-b of truth against the B-batch score. A mass below 0 means more
    data orders the tied architectures worse than chance (an under-trained supernet). `estbench variance
    batches` (--show levels) prints both.""",
    fills="estbench score --ose RUN --epoch E --batches 5 (or any estimator with --batches B)",
    order=90,
)
def batches_section(ctx) -> Section:
    from estbench.analysis.batches import batch_criteria, levels

    groups = batch_groups(ctx)
    if not groups:
        raise Missing(
            "no scores with 2 or more stored validation batches; `estbench score --space "
            f"{ctx.space} --ose RUN --epoch E --batches 5` adds them"
        )
    from estbench.analysis.points import group_names

    names = _config_names(ctx, groups)
    full = group_names(groups)
    configs = list(dict.fromkeys((g.estimator, g.config_hash) for g in groups))
    notes = []
    if len(configs) > MAX_PANELS:
        notes.append(f"first {MAX_PANELS} of {len(configs)} estimator configs drawn (all in the table)")
    drawn = configs[:MAX_PANELS]
    nr, nc = grid(len(drawn), 3)
    fig, axes = panels(4.0 * nc, 3.0 * nr, nr, nc)
    crit_rows, level_rows, level_kds, few = [], [], [], []
    for name, g in zip(full, groups):
        crit = batch_criteria(g, KS)
        for c in crit:
            crit_rows.append([name, g.epoch, c["b"], g.n_batches, c["points"], c["distinct"], c["kd"], c[PTOP]])
        key = (g.estimator, g.config_hash)
        if key in drawn:
            ax = axes.ravel()[drawn.index(key)]
            eps = sorted(x.epoch for x in groups if (x.estimator, x.config_hash) == key)
            col = _epoch_colors(eps)[g.epoch]
            ax.plot([c["b"] for c in crit], [c["kd"] for c in crit], marker="o", ms=3, color=col,
                    label=f"epoch {g.epoch}")  # fmt: skip
        lv = levels(g)
        s = lv.summary()
        kd = lv.kd[lv.multi]
        kd = kd[np.isfinite(kd)]
        level_rows.append([name, g.epoch, lv.batches, lv.points, s["levels"], s["multi_levels"], s["positive"],
                           s["negative"], s["mean_kd"]])  # fmt: skip
        if len(kd) >= MIN_LEVELS:
            level_kds.append((name, g, kd))
        elif s["kd_levels"]:
            few.append(name)
    for j, key in enumerate(drawn):
        ax = axes.ravel()[j]
        ax.set_title(short(names[key], 40), fontsize=9)
        ax.set_xlabel("validation batches b")
        ax.set_ylabel(f"KD vs {ctx.truth}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    hide_unused(axes, len(drawn))
    fig.suptitle(f"{ctx.space}: KD against the number of validation batches averaged")
    figures = [Figure("batches_kd", "KD against the number of validation batches b, per estimator config", fig,
                      alt="KD against number of batches")]  # fmt: skip
    if few:
        notes.append(f"intra-level KD not drawn for groups with under {MIN_LEVELS} levels of 2+ points: "
                     + ", ".join(few[:6]) + (f" and {len(few) - 6} more" if len(few) > 6 else ""))  # fmt: skip
    if level_kds:
        figures.append(_levels_figure(ctx, level_kds, notes))
    else:
        notes.append("no group has 1-batch levels of 2 or more points (continuous scores): no intra-level KD")
    crit_cols = ["group", "epoch", "b", "of B", "points", "distinct", "KD", "P@top5%"]
    lvl_cols = ["group", "epoch", "B", "points", "levels", "multi-point levels", "KD > 0", "KD < 0", "mean KD"]
    return Section(
        figures=figures,
        tables=[Table(crit_cols, crit_rows, title="Criteria per number of batches b"),
                Table(lvl_cols, level_rows, title="1-batch levels and their intra-level KD (B-batch score)")],
        notes=notes,
    )  # fmt: skip


def _levels_figure(ctx, level_kds: list, notes: list[str]) -> Figure:
    if len(level_kds) > MAX_PANELS:
        notes.append(f"intra-level KD: first {MAX_PANELS} of {len(level_kds)} groups drawn")
    shown = level_kds[:MAX_PANELS]
    nr, nc = grid(len(shown), 4)
    fig, axes = panels(3.3 * nc, 2.6 * nr, nr, nc)
    edges = np.linspace(-1, 1, 21)
    for j, (name, _, kd) in enumerate(shown):
        ax = axes.ravel()[j]
        ax.hist(kd, bins=edges, color=color(0 if kd.mean() >= 0 else 3), alpha=0.8)
        ax.axvline(0, color="black", lw=0.7)
        ax.axvline(kd.mean(), color="black", ls="--", lw=0.9)
        neg = int((kd < 0).sum())
        ax.set_title(f"{short(name, 44)}\n{len(kd)} levels, {neg} < 0, mean {kd.mean():.2f}", fontsize=8)
        ax.set_xlabel("intra-level KD")
        ax.set_ylabel("levels")
    hide_unused(axes, len(shown))
    fig.suptitle(f"{ctx.space}: intra-level KD of the 1-batch levels (dashed: mean)")
    return Figure("batches_levels", "Histograms of the intra-level KDs of the 1-batch levels", fig,
                  alt="histograms of intra-level Kendall tau")  # fmt: skip


# ---- stability ----------------------------------------------------------------------------
@section(
    "stability",
    title="Ranking stability between checkpoints",
    paper="Fig. 7",
    blurb="""Relative KD (and P@top5%) between consecutive checkpoints of each estimator config scored at
    several epochs: the scores at one epoch judged against those at the next as the truth, on the points
    both have, drawn at the later epoch. 1 = the ranking did not move. One-shot rankings should settle
    as the supernet trains; the scores are the seed mean (`estbench variance stability`).""",
    fills="estbench score --ose RUN --epoch E at several epochs",
    order=95,
)
def stability_section(ctx) -> Section:
    from estbench.analysis.stability import class_ids, epoch_stability

    sets = ctx.points()
    cls = ctx.cached(("class_ids", ctx.protocol), lambda: class_ids(ctx.st, ctx.space, ctx.protocol))
    out, _ = epoch_stability(sets, cls, KS)
    if not out:
        raise Missing(
            "no estimator config is scored at 2 or more checkpoint epochs; `estbench score --space "
            f"{ctx.space} --ose RUN --epoch E` at several E adds them"
        )
    names = _config_names(ctx, sets)
    keys = list(dict.fromkeys((t.estimator, t.config_hash) for t in out))
    notes = [f"first {MAX_LINES} of {len(keys)} configs drawn (all in the table)"] if len(keys) > MAX_LINES else []
    fig, axes = new_figure(11.0, 4.2, 1, 2)
    for i, key in enumerate(keys[:MAX_LINES]):
        ts = [t for t in out if (t.estimator, t.config_hash) == key]
        x = [t.epoch_to for t in ts]
        style = {"color": color(i), "marker": "o", "ms": 3.5}
        axes[0, 0].plot(x, [t.values["kd"] for t in ts], label=short(names[key], 36), **style)
        axes[0, 1].plot(x, [t.values[PTOP] for t in ts], **style)
    for ax, label in ((axes[0, 0], "relative KD (previous vs this checkpoint)"), (axes[0, 1], "relative P@top5%")):
        ax.set_xlabel("checkpoint epoch (the later of the pair)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{ctx.space}: ranking stability between consecutive checkpoints (seed mean)")
    rows = [[names[(t.estimator, t.config_hash)], t.epoch_from, t.epoch_to, t.n, t.values["kd"], t.values[PTOP]]
            for t in out]  # fmt: skip
    return Section(
        figures=[
            Figure(
                "stability_relative",
                "Relative criteria between consecutive checkpoints",
                fig,
                alt="relative KD against epoch",
            )
        ],  # fmt: skip
        tables=[Table(["estimator", "from epoch", "to epoch", "points", "relative KD", "relative P@top5%"], rows)],
        notes=notes,
    )


# ---- ensembles ----------------------------------------------------------------------------
@section(
    "ensembles",
    title="Temporal ensembles",
    paper="Fig. 8",
    blurb="""True KD (and P@top5%) of one-shot configs that differ only in their temporal ensemble (the
    weights of the last K checkpoints averaged, `score --ensemble K`) at every epoch where two or more
    settings were scored, one panel per config family, a line per setting (`estbench variance stability
    --show ensembles`). An ensemble above the plain line reduces the variance of the one-shot ranking.""",
    fills="estbench score --ose RUN --ensemble 3 --epoch E next to the plain scores",
    order=100,
)
def ensembles_section(ctx) -> Section:
    from estbench.analysis.stability import ensemble_families

    out = ensemble_families(ctx.points(), KS)
    if not out:
        raise Missing(
            "no two ensemble settings of one one-shot config at one epoch; `estbench score --space "
            f"{ctx.space} --ose RUN --ensemble 3 --epoch E` next to the plain scores adds them"
        )
    sets = ctx.points()
    names = _config_names(ctx, sets)
    families = sorted({r.family for r in out})
    notes = []
    if len(families) > MAX_PANELS:
        notes.append(f"first {MAX_PANELS} of {len(families)} config families drawn")
    drawn = families[:MAX_PANELS]
    fig, axes = new_figure(9.0, 3.4 * len(drawn), len(drawn), 2)
    for j, fam in enumerate(drawn):
        rows = [r for r in out if r.family == fam]
        plain = next((r for r in rows if r.ensemble == min(x.ensemble for x in rows)), rows[0])
        settings = sorted({r.ensemble for r in rows})
        one_epoch = len({r.epoch for r in rows}) == 1
        for i, k in enumerate(settings):
            rs = sorted((r for r in rows if r.ensemble == k), key=lambda r: r.epoch)
            lab = "no ensemble" if k == 1 else f"ensemble of {k} checkpoints"
            for ax, crit in ((axes[j, 0], "kd"), (axes[j, 1], PTOP)):
                ys = [r.values[crit] for r in rs]
                if one_epoch:  # a bar per setting reads better than lone markers
                    ax.bar(i, ys[0], color=color(i), label=lab)
                else:
                    ax.plot([r.epoch for r in rs], ys, color=color(i), marker="o", ms=5,
                            ls="-" if k == 1 else "--", label=lab)  # fmt: skip
        title = short(names[(plain.estimator, plain.config_hash)], 40)
        for ax, label in ((axes[j, 0], f"KD vs {ctx.truth}"), (axes[j, 1], "P@top5%")):
            ax.set_title(title + (f" @ epoch {rows[0].epoch}" if one_epoch else ""), fontsize=9)
            if one_epoch:
                ax.set_xticks(range(len(settings)), [f"K = {k}" for k in settings])
                ax.set_xlabel("temporal ensemble (checkpoints averaged)")
            else:
                ax.set_xlabel("checkpoint epoch")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
        axes[j, 0].legend(fontsize=7)
    fig.suptitle(f"{ctx.space}: temporal ensembles (true criteria)")
    rows = [[names[(r.estimator, r.config_hash)], r.family, r.epoch, r.ensemble, r.n, r.values["kd"],
             r.values["spearman"], r.values[PTOP]] for r in out]  # fmt: skip
    return Section(
        figures=[
            Figure(
                "ensembles_kd",
                "True criteria per temporal-ensemble setting against epoch",
                fig,
                alt="KD of temporal ensembles against epoch",
            )
        ],  # fmt: skip
        tables=[Table(["estimator", "family", "epoch", "ensemble K", "points", "KD", "SpearmanR", "P@top5%"], rows)],
        notes=notes,
    )


# ---- forgetting ---------------------------------------------------------------------------
def forgetting_runs(ctx) -> list[str]:
    """The training runs of the space that have forgetting probes."""
    return [r for r in ctx.st.train_run_names(ctx.space) if ctx.st.forgetting_epochs(ctx.space, r)]


@section(
    "forgetting",
    title="Multi-model forgetting",
    paper="Fig. A14",
    blurb="""The forgetting value FV = accuracy after the epoch's last step minus right after the probed
    architecture's own step, on the run's fixed probe batch, per training epoch of each run trained with
    probes: the median, the 10-90% band (dark) and the min-max band (light) of the probes, and the mean
    (black). FV < 0: training the other architectures undid what the step taught (forgetting); the paper
    sees a negative mean early that turns positive with a shrinking spread (`estbench variance
    forgetting`).""",
    fills="estbench train --probe-forgetting N",
    order=105,
)
def forgetting_section(ctx) -> Section:
    from estbench.analysis.forgetting import load_forgetting, summarize

    runs = forgetting_runs(ctx)
    if not runs:
        raise Missing(
            f"no training run has forgetting probes; `estbench train --space {ctx.space} --run RUN "
            "--probe-forgetting 50` records them"
        )
    notes = [f"first {MAX_PANELS} of {len(runs)} runs drawn"] if len(runs) > MAX_PANELS else []
    drawn = runs[:MAX_PANELS]
    nr, nc = grid(len(drawn), 2)
    fig, axes = panels(5.5 * nc, 3.6 * nr, nr, nc)
    rows = []
    for j, run in enumerate(drawn):
        data = load_forgetting(ctx.st, ctx.space, run)
        s = summarize(data["epoch"], data["acc_after_step"], data["acc_after_epoch"])
        ax = axes.ravel()[j]
        e = s["epoch"]
        ax.fill_between(e, s["min_fv"], s["max_fv"], color=color(0), alpha=0.15, lw=0, label="min-max")
        ax.fill_between(e, s["q10_fv"], s["q90_fv"], color=color(0), alpha=0.35, lw=0, label="10-90%")
        ax.plot(e, s["median_fv"], color=color(0), lw=1.0, label="median")
        ax.plot(e, s["mean_fv"], color="black", marker="o", ms=3, lw=1.2, label="mean")
        ax.axhline(0, color="black", lw=0.6, ls=":")
        ax.set_title(f"run {short(run, 36)}", fontsize=9)
        ax.set_xlabel("training epoch")
        ax.set_ylabel("forgetting value FV")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        for i in range(len(e)):
            rows.append([run, int(e[i]), int(s["probes"][i]), float(s["mean_fv"][i]), float(s["q10_fv"][i]),
                         float(s["median_fv"][i]), float(s["q90_fv"][i]), float(s["neg_share"][i])])  # fmt: skip
    hide_unused(axes, len(drawn))
    fig.suptitle(f"{ctx.space}: forgetting value per training epoch")
    cols = ["run", "epoch", "probes", "mean FV", "q10 FV", "median FV", "q90 FV", "share FV < 0"]
    return Section(
        figures=[
            Figure(
                "forgetting_fv",
                "Forgetting-value distribution per training epoch",
                fig,
                alt="forgetting value quantile bands per epoch",
            )
        ],  # fmt: skip
        tables=[Table(cols, rows, title="Forgetting values per epoch", digits=4)],
        notes=notes,
    )


# ---- gradient similarity --------------------------------------------------------------------
@section(
    "gradsim",
    title="Gradient similarity per layer",
    paper="Fig. A15",
    blurb="""The mean cosine between the CE gradients of random architecture pairs on the parameters both
    use, per supernet layer in network order (stem, cells S{s}C{c}, reductions S{s}R, classifier), a line
    per checkpoint epoch (dark early, light late) and the 10-90% band of the pairs; one panel per run and
    config. The paper sees similarity rise with training and the middle cells least similar (`estbench
    variance gradsim --show trend`).""",
    fills="estbench score --ose RUN --epoch E --gradsim P",
    order=110,
)
def gradsim_section(ctx) -> Section:
    from estbench.analysis.gradsim import ALL_LAYERS, summary, trend

    have = ctx.st.gradsim_epochs(ctx.space)
    if not have:
        raise Missing(
            f"no gradient-similarity rows; `estbench score --space {ctx.space} --ose RUN --epoch E --gradsim 50` "
            "adds them"
        )
    data = ctx.st.gradsim_rows(ctx.space, runs=None, epochs=ctx.epochs or None)
    if not len(data["cosine"]):
        raise Missing(
            f"no gradient-similarity rows at epoch {', '.join(map(str, ctx.epochs))}; `estbench score --space "
            f"{ctx.space} --ose RUN --epoch E --gradsim 50` adds them"
        )
    epochs, trows = trend(data)
    stats = summary(data)
    keys = list(dict.fromkeys((r["run_name"], r["config_hash"], r["label"]) for r in trows))
    several = len({k[1] for k in keys}) > 1
    notes = [f"first {MAX_PANELS} of {len(keys)} runs / configs drawn"] if len(keys) > MAX_PANELS else []
    drawn = keys[:MAX_PANELS]
    nr, nc = grid(len(drawn), 2)
    fig, axes = panels(6.0 * nc, 3.8 * nr, nr, nc)
    colors = _epoch_colors(epochs)
    for j, (run, chash, label) in enumerate(drawn):
        ax = axes.ravel()[j]
        layers = [r["layer"] for r in trows if (r["run_name"], r["config_hash"]) == (run, chash)]
        layers = [x for x in layers if x != ALL_LAYERS]
        x = np.arange(len(layers))
        for e in epochs:
            at = {r["layer"]: r for r in stats if (r["run_name"], r["config_hash"], r["epoch"]) == (run, chash, e)}
            if not at:
                continue
            mean = np.array([np.nan if at.get(L, {}).get("mean") is None else at[L]["mean"] for L in layers])
            lo = np.array([np.nan if at.get(L, {}).get("q10") is None else at[L]["q10"] for L in layers])
            hi = np.array([np.nan if at.get(L, {}).get("q90") is None else at[L]["q90"] for L in layers])
            ax.fill_between(x, lo, hi, color=colors[e], alpha=0.12, lw=0)
            ax.plot(x, mean, marker="o", ms=3, color=colors[e], label=f"epoch {e}")
        ax.set_xticks(x, layers, rotation=60, ha="right", fontsize=7)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_ylabel("gradient cosine")
        ax.set_title(f"run {short(run, 30)}" + (f" ({short(label or chash[:10], 24)})" if several else ""), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    hide_unused(axes, len(drawn))
    fig.suptitle(f"{ctx.space}: gradient similarity of architecture pairs per layer")
    cols = ["run", "layer", *[f"mean ep{e}" for e in epochs], "change"]
    rows = [[r["run_name"] + (f" ({r['label'] or r['config_hash'][:10]})" if several else ""), r["layer"],
             *[r["means"].get(e) for e in epochs], r["change"]] for r in trows]  # fmt: skip
    return Section(
        figures=[
            Figure(
                "gradsim_layers",
                "Mean gradient cosine per layer and checkpoint epoch",
                fig,
                alt="gradient cosine similarity per layer",
            )
        ],  # fmt: skip
        tables=[Table(cols, rows, title="Mean cosine per layer at each epoch; change = last - first")],
        notes=notes,
    )
