"""`estbench bias arch`: architecture-level bias, the best and worst architectures of each
estimator (paper Sec. 5.2, Fig. 6, A25-A28, B.2). Library code: ``estbench/analysis/archbias.py``."""

from __future__ import annotations

from typing import Any

import typer

from estbench.cli.analyze import Rows, analysis
from estbench.cli.options import (
    BIAS_HELP,
    protocol_title,
)

STRUCTURAL = ("params", "flops")


def _check(k: int = 5, which: str = "both", **_: Any) -> None:
    from estbench.analysis.archbias import WHICH
    from estbench.errors import BadInput

    if k < 1:
        raise BadInput(f"--k {k}: must be at least 1")
    if which not in WHICH:
        raise BadInput(f"--which {which!r}: expected one of {', '.join(WHICH)}")


@analysis("arch", group="bias", group_help=BIAS_HELP, check=_check)
def bias_arch(
    st,
    space,
    truth,
    protocol,
    post_deiso,
    estimator,
    epoch,
    seed,
    k: int = typer.Option(5, "--k", help="How many architectures from each end (clipped to the points)."),
    which: str = typer.Option("both", "--which", help="top (best by the estimator), bottom (worst) or both."),
) -> Rows:
    """Architecture-level bias (paper Sec. 5.2, Fig. 6, A25-A28, B.2): the architectures
    each estimator ranks best and worst, with what they truly are, so a preference
    (for large cells, for cells without skip connections, for 1x1 over 3x3 kernels)
    can be read off.

    Per estimator (and config / epoch): the --k points it ranks best (which = top,
    est_rank 1 .. k, best first) and/or worst (bottom, est_rank M .. M-k+1, worst
    first), each with its representative architecture (arch_id, arch_str: the
    smallest scored arch id of the point), the estimator's score, true_rank (1 = best,
    among the same M points) and truth, params and flops (the representative's stored
    structural scores; NaN with a note in the title where the store has none), the
    count of every operation of the space in the cell (one column per op), iso_size
    (archs in its isomorphism class) and, under the deiso protocols, class_size (archs
    in its class under --protocol) and scored (how many of them the estimator scored;
    the point's score is the representative's, or their mean with --post-deiso). A
    top architecture with a poor true_rank is one the estimator overestimates.
    No matching scores: one line, exit code 2."""
    import numpy as np

    from estbench.analysis.archbias import extremes, op_count_table
    from estbench.analysis.points import arch_values, group_names, load_points
    from estbench.cli.analyses.criteria import no_rows
    from estbench.errors import BadInput
    from estbench.spaces import get_space

    sets = load_points(st, space, truth, protocol, list(estimator or []), epoch, seed, post_deiso)
    if not sets:
        raise no_rows(st, space, truth, list(estimator or []), list(epoch or []), list(seed or []))
    names = group_names(sets)
    picks = [extremes(ps.score_rank, k, which) for ps in sets]
    chosen = np.unique(np.concatenate([ps.rep[pos] for ps, (pos, _) in zip(sets, picks)]))
    facts = st.arch_facts(space, protocol)
    ids = facts["arch_id"].astype(np.int64)
    at = np.searchsorted(ids, chosen)
    strs = [str(facts["arch_str"][i]) for i in at]
    notes = []
    try:
        ops, counts = op_count_table(get_space(space), strs)
    except BadInput as e:  # a space of the store that is not registered here (a plugin not loaded)
        ops, counts = [], np.zeros((len(chosen), 0), dtype=np.int64)
        notes.append(f"no op counts ({e})")
    structural = {}
    for name in STRUCTURAL:
        try:
            structural[name] = arch_values(st, space, name, chosen)
        except BadInput:
            structural[name] = np.full(len(chosen), np.nan)
            notes.append(f"no stored {name} scores (NaN; `estbench score --space {space} -e {name}`)")
    info = {
        "arch_str": np.asarray(strs, dtype=object),
        "iso_size": facts["iso_size"][at].astype(np.int64),
        "class_size": facts["class_size"][at].astype(np.int64),
    }
    deiso = protocol != "iso"
    op_cols = [op if op not in ("estimator", "which", "score", "truth", "points") else f"op:{op}" for op in ops]
    tail = op_cols + ["iso_size"] + (["class_size", "scored"] if deiso else [])
    mid = ["est_rank", "arch_id", "arch_str", "score", "true_rank", "truth", "params", "flops"]
    cols = ["estimator", "config_hash", "epoch", "points", "which"] + mid + tail
    out: list[list] = []
    brief: list[list] = []
    for name, ps, (pos, labels) in zip(names, sets, picks):
        reps = ps.rep[pos]
        j = np.searchsorted(chosen, reps)
        for i, p in enumerate(pos):
            r = int(reps[i])
            body = [
                int(ps.score_rank[p]), r, info["arch_str"][j[i]], float(ps.score[p]), int(ps.truth_rank[p]),
                float(ps.truth[p]), float(structural["params"][j[i]]), float(structural["flops"][j[i]]),
            ]  # fmt: skip
            body += [int(x) for x in counts[j[i]]] + [int(info["iso_size"][j[i]])]
            if deiso:
                body += [int(info["class_size"][j[i]]), int(ps.members[p])]
            out.append([ps.estimator, ps.config_hash, ps.epoch, len(ps), str(labels[i])] + body)
            brief.append([name, len(ps), str(labels[i])] + body[:1] + body[2:])
    title = (
        f"{space} vs {truth} ({protocol_title(protocol, post_deiso)}): architecture-level bias, "
        f"{'top' if which == 'top' else 'bottom' if which == 'bottom' else 'top and bottom'} {k} by each estimator "
        "(est_rank / true_rank: 1 = best among the estimator's points)" + (f"; {'; '.join(notes)}" if notes else "")
    )
    brief_cols = ["estimator", "points", "which", "est_rank"] + mid[2:] + tail
    return Rows(cols, out, title=title, brief=Rows(brief_cols, brief, title=title))
