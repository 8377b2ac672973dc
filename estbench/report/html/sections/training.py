"""The sections about estimators over supernet training: one-shot criteria against the
checkpoint epoch with the spread over seeds (Fig. 1, A1), the one-shot score
distributions (Fig. 2) and zero-shot estimators on trained weights (Table A11).

The per-epoch criteria are ``variance epochs``'s (``analysis.epochs.epoch_rows`` of the
report's criteria groups: scores averaged over batches and the selected seeds); the seed
bands are the true criteria of every single seed (``analysis.stability``, as
``variance stability --show seeds`` computes them)."""

from __future__ import annotations

import numpy as np

from estbench.report.html.base import Figure, Missing, Section, Table, section
from estbench.report.html.plot import color, grid, hide_unused, new_figure, short, spans_orders

K = 0.05
KD, PTOP = "kd", "p_top@5%"
MAX_LINES = 12  # configs drawn per figure
MAX_PANELS = 8


def panels(width: float, height: float, nrows: int, ncols: int):
    """``new_figure`` with a 2-D array of axes even for one panel."""
    if nrows == 1 and ncols == 1:
        fig, ax = new_figure(width, height)
        return fig, np.array([[ax]])
    return new_figure(width, height, nrows, ncols)


def is_oneshot(ctx, estimator: str) -> bool:
    """Whether ``estimator`` is a one-shot estimator: the kind the store recorded with its
    scores (so a plugin's estimator this install lacks is told apart too)."""
    return ctx.cached("estimator_kinds", ctx.st.estimator_kinds).get(estimator) == "oneshot"


def trained_rows(ctx, oneshot: bool) -> tuple[list[int], list]:
    """(epochs, ``EpochRow``s) of the configs scored at 2 or more epochs, one-shot or
    not: ``variance epochs``'s rows of the report's criteria groups."""
    epochs, rows = _epoch_rows(ctx)
    keep = [r for r in rows if len(r.cells) >= 2 and is_oneshot(ctx, r.estimator) == oneshot]
    used = sorted({e for r in keep for e in r.cells})
    return [e for e in epochs if e in used], keep


def _epoch_rows(ctx) -> tuple[list[int], list]:
    from estbench.analysis.epochs import epoch_rows

    return ctx.cached(("epoch_rows", K), lambda: epoch_rows(ctx.groups(), K))


def config_names(ctx) -> dict[tuple[str, str], str]:
    """(estimator, config) -> its name without the epoch, as ``variance epochs`` prints it."""
    return {(r.estimator, r.config_hash): r.name for r in _epoch_rows(ctx)[1]}


def seed_criteria(ctx, estimators: list[str]) -> dict[tuple[str, str, int], dict[int, dict[str, float]]]:
    """(estimator, config, epoch) -> seed -> true kd and p_top@5% of that seed's scores
    alone (``stability.load_seed_points`` + ``true_criteria``, one query)."""
    from estbench.analysis.stability import load_seed_points, true_criteria

    def make():
        per_seed = load_seed_points(
            ctx.st, ctx.space, ctx.truth, ctx.protocol, estimators, ctx.epochs, ctx.seeds, ctx.post_deiso
        )
        return {
            key: {s: true_criteria(p, [KD, PTOP], (K,)) for s, (p, _) in seeds.items()}
            for key, seeds in per_seed.items()
        }

    return ctx.cached(("seed_criteria", tuple(sorted(estimators))), make)


def _style(i: int, higher: bool) -> dict:
    """Line style of config ``i``: its own colour; accuracy-like solid, loss-like dashed."""
    return {"color": color(i), "ls": "-" if higher else "--", "marker": "o" if higher else "s", "ms": 3.5}


def _higher(ctx, estimator: str, config_hash: str) -> bool:
    for g in ctx.groups():
        if (g.estimator, g.config_hash) == (estimator, config_hash) and g.points is not None:
            return g.points.higher_is_better
    return True


@section(
    "epochs",
    title="One-shot estimators over training",
    paper="Fig. 1, A1",
    blurb="""KD and P@top5% of each one-shot estimator config (os_acc solid, os_loss dashed; a colour per
    config) at every checkpoint epoch it was scored at. The line is the criterion of the seed-mean scores
    (multi-supernet averaging over the supernets trained with different seeds, `estbench variance epochs`);
    the band spans the criteria of the single seeds (min to max, `estbench variance stability --show
    seeds`). A rising line: the estimator improves as the supernet trains; a wide band: one supernet is
    not enough.""",
    fills="estbench train, then estbench score --ose RUN --epoch E at several epochs (and seeds)",
    order=40,
)
def epochs_section(ctx) -> Section:
    epochs, rows = trained_rows(ctx, oneshot=True)
    if not rows:
        raise Missing(
            "no one-shot estimator config is scored at 2 or more epochs; `estbench train --space "
            f"{ctx.space} --run RUN` then `estbench score --space {ctx.space} --ose RUN --epoch E` at several E"
        )
    notes = []
    if len(rows) > MAX_LINES:
        notes.append(f"first {MAX_LINES} of {len(rows)} configs shown")
    shown = rows[:MAX_LINES]
    per_seed = seed_criteria(ctx, sorted({r.estimator for r in shown}))
    fig, axes = new_figure(11.0, 4.2, 1, 2)
    table = []
    for i, r in enumerate(shown):
        es = sorted(r.cells)
        style = _style(i, _higher(ctx, r.estimator, r.config_hash))
        for ax, crit, cell in ((axes[0, 0], KD, "kd"), (axes[0, 1], PTOP, "p_top")):
            ax.plot(es, [r.cells[e][cell] for e in es], label=short(r.name, 36), **style)
            band = [(e, [v[crit] for v in per_seed.get((r.estimator, r.config_hash, e), {}).values()]) for e in es]
            band = [(e, v) for e, v in band if len(v) >= 2]
            if band:
                ax.fill_between([e for e, _ in band], [min(v) for _, v in band], [max(v) for _, v in band],
                                color=style["color"], alpha=0.15, lw=0)  # fmt: skip
        for e in es:
            seeds = per_seed.get((r.estimator, r.config_hash, e), {})
            kds = [v[KD] for v in seeds.values()]
            pts = [v[PTOP] for v in seeds.values()]
            table.append([r.name, e, r.cells[e]["points"], len(seeds), r.cells[e]["kd"],
                          min(kds) if kds else None, max(kds) if kds else None, r.cells[e]["p_top"],
                          min(pts) if pts else None, max(pts) if pts else None])  # fmt: skip
    for ax, label in ((axes[0, 0], f"KD vs {ctx.truth}"), (axes[0, 1], "P@top5%")):
        ax.set_xlabel("checkpoint epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{ctx.space}: one-shot criteria over training (line: seed mean; band: single seeds)")
    cols = ["estimator", "epoch", "points", "seeds", "KD", "KD min seed", "KD max seed", "P@top5%",
            "P@top5% min seed", "P@top5% max seed"]  # fmt: skip
    return Section(
        figures=[
            Figure(
                "epochs_criteria",
                f"KD and P@top5% against checkpoint epoch ({len(shown)} configs)",
                fig,
                alt="one-shot KD and P@top5% against training epoch",
            )
        ],  # fmt: skip
        tables=[Table(cols, table, title="Criteria per epoch: seed mean and the range over single seeds")],
        notes=notes,
    )


def _pick_epochs(epochs: list[int]) -> list[int]:
    """The first, middle and last of ``epochs`` (ascending, without repeats)."""
    if len(epochs) <= 3:
        return list(epochs)
    return sorted({epochs[0], epochs[len(epochs) // 2], epochs[-1]})


@section(
    "os_scores",
    title="One-shot score distributions",
    paper="Fig. 2",
    blurb="""The distribution of each one-shot estimator's scores (the points of the criteria: seed-mean
    scores averaged over validation batches) at its first, middle and last scored checkpoint epoch, one
    panel per estimator config. Early supernets squeeze the architectures into a narrow band of scores
    (one-shot accuracy of one batch has few distinct values), so many tie.""",
    fills="estbench score --ose RUN --epoch E",
    order=45,
)
def os_scores_section(ctx) -> Section:
    sets = [p for p in ctx.points() if is_oneshot(ctx, p.estimator)]
    if not sets:
        raise Missing(f"no one-shot scores; `estbench score --space {ctx.space} --ose RUN --epoch E` adds them")
    names = config_names(ctx)
    by_config: dict[tuple[str, str], list] = {}
    for p in sets:
        by_config.setdefault((p.estimator, p.config_hash), []).append(p)
    keys = list(by_config)
    notes = []
    if len(keys) > MAX_PANELS:
        notes.append(f"first {MAX_PANELS} of {len(keys)} configs shown")
        keys = keys[:MAX_PANELS]
    nr, nc = grid(len(keys), 3)
    fig, axes = panels(4.0 * nc, 3.0 * nr, nr, nc)
    rows = []
    for j, key in enumerate(keys):
        ax = axes.ravel()[j]
        sets_of = {p.epoch: p for p in by_config[key]}
        chosen = _pick_epochs(sorted(sets_of))
        scores = [np.asarray(sets_of[e].score, dtype=float) for e in chosen]
        finite = np.concatenate([s[np.isfinite(s)] for s in scores])
        log = spans_orders(finite)
        edges = (np.geomspace(finite.min(), finite.max(), 41) if log else np.linspace(finite.min(), finite.max(), 41)) \
            if len(finite) and finite.min() < finite.max() else 40  # fmt: skip
        for i, (e, s) in enumerate(zip(chosen, scores)):
            s = s[np.isfinite(s)]
            ax.hist(s, bins=edges, histtype="stepfilled", alpha=0.35, color=color(i), label=f"epoch {e}")
            ax.hist(s, bins=edges, histtype="step", color=color(i), lw=1.0)
            rows.append([names[key], e, len(s), len(np.unique(s)), float(s.min()) if len(s) else None,
                         float(np.median(s)) if len(s) else None, float(s.max()) if len(s) else None])  # fmt: skip
        if log:
            ax.set_xscale("log")
        ax.set_title(short(names[key], 40), fontsize=9)
        ax.set_xlabel(key[0] + (" (log)" if log else ""))
        ax.set_ylabel("points")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    hide_unused(axes, len(keys))
    cols = ["estimator", "epoch", "points", "distinct", "min", "median", "max"]
    return Section(
        figures=[
            Figure(
                "os_scores_hist",
                "One-shot score histograms at the first, middle and last scored epoch",
                fig,
                alt="histograms of one-shot scores per epoch",
            )
        ],  # fmt: skip
        tables=[Table(cols, rows, title="The drawn score distributions", digits=4)],
        notes=notes,
    )


@section(
    "zse_training",
    title="Zero-shot estimators on trained weights",
    paper="Table A11",
    blurb="""KD (and P@top5%) of zero-shot estimators scored on the candidates of a training run's
    supernet at several checkpoint epochs (`--weights supernet:RUN@E`; epoch 0 = the run's
    initialisation), the rows `estbench variance epochs` prints. The paper finds that ZSEs do not get
    better on trained weights, unlike one-shot estimators.""",
    fills="estbench score --zse NAME --weights supernet:RUN@0,20,40",
    order=50,
)
def zse_training_section(ctx) -> Section:
    epochs, rows = trained_rows(ctx, oneshot=False)
    if not rows:
        raise Missing(
            "no zero-shot estimator is scored at 2 or more epochs of trained weights; `estbench score --space "
            f"{ctx.space} --zse NAME --weights supernet:RUN@0,20,40` adds them"
        )
    notes = []
    if len(rows) > MAX_LINES:
        notes.append(f"first {MAX_LINES} of {len(rows)} configs drawn (all in the table)")
    fig, axes = new_figure(11.0, 4.2, 1, 2)
    for i, r in enumerate(rows[:MAX_LINES]):
        es = sorted(r.cells)
        style = _style(i, True)
        axes[0, 0].plot(es, [r.cells[e]["kd"] for e in es], label=short(r.name, 36), **style)
        axes[0, 1].plot(es, [r.cells[e]["p_top"] for e in es], **style)
    for ax, label in ((axes[0, 0], f"KD vs {ctx.truth}"), (axes[0, 1], "P@top5%")):
        ax.set_xlabel("supernet checkpoint epoch of the weights")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.axhline(0, color="black", lw=0.6)
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{ctx.space}: zero-shot estimators on trained supernet weights")
    cols = ["estimator"] + [c for e in epochs for c in (f"KD ep{e}", f"P@top5% ep{e}", f"points ep{e}")]
    table = []
    for r in rows:
        cells = [r.cells.get(e) for e in epochs]
        table.append([r.name] + [v for c in cells for v in ((None,) * 3 if c is None else (c["kd"], c["p_top"],
                                                                                          c["points"]))])  # fmt: skip
    return Section(
        figures=[
            Figure(
                "zse_training_kd",
                f"ZSE criteria against the weights' training epoch ({len(rows)} configs)",
                fig,
                alt="zero-shot KD against training epoch",
            )
        ],  # fmt: skip
        tables=[Table(cols, table, title="Table A11: criteria per epoch of the weights")],
        notes=notes,
    )
