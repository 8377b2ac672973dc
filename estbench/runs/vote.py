"""``vote``: the paper's ensemble of the best zero-shot experts as a per-architecture
score, recomputed from the store alone (no network, no dataset).

Defined as a Borda count: the mean over experts of the architecture's percent rank
among the architectures all experts scored (``sql/vote.sql``). The paper's vote
[Abdelfattah et al.] takes a majority over experts for each pair of architectures; the
Borda count is its per-architecture form (an expert's percent rank is the fraction of
pairwise comparisons the architecture wins under that expert), so it can be stored and
ranked like any other estimator. A space's default experts are its ``vote_experts``
(the paper's Table A9: its three best ZSEs; NB101: relu_logdet, grasp, plain; NB301:
plain, grasp, relu_logdet).

The experts' configs are looked up in the ``configs`` table: a vote family is one
config per expert whose shared settings agree (synflow's config has fewer settings than
relu_logdet's, so "agree" means on the keys both have), restricted to the settings of
the request. For every family, vote is recomputed over the archs all its experts scored
and written, with its run id, in place of that family's previous vote (it depends on
the whole population)."""

from __future__ import annotations

import time

from estbench.errors import BadInput
from estbench.runs.loop import ScoreSummary, record_config, recorded_run
from estbench.store import ScoreKey, ScoreRow, Store


def _agree(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def _wanted(settings: dict, want: dict) -> bool:
    for k, v in settings.items():
        if k == "input" and "input" in want:
            kind, seed = want["input"]
            ok = v == f"{kind}@{seed}" or (v.startswith(f"{kind}-train[") and v.endswith(f"]@{seed}"))
            if not ok:
                return False
        elif k in want and want[k] != v:
            return False
    return True


def vote_families(store: Store, space: str, experts: list[str], want: dict) -> list[dict[str, str]]:
    """Families {expert: config hash} of recorded expert configs matching ``want``
    (settings to match; ``input`` as (kind, data seed))."""
    configs = store.configs_of(space, experts)
    by_expert = {e: [(h, s) for n, h, s in configs if n == e and _wanted(s, want)] for e in experts}
    missing = [e for e, cs in by_expert.items() if not cs]
    if missing:
        raise BadInput(
            f"vote needs scores of all its experts ({', '.join(experts)}); no matching config of {', '.join(missing)} "
            f"for {space} in the store: score them first with `estbench score --space {space} --zse ...`"
        )
    anchor = max(experts, key=lambda e: max(len(s) for _, s in by_expert[e]))
    families = []
    for h0, s0 in by_expert[anchor]:
        family = {anchor: h0}
        for e in experts:
            if e != anchor:
                matches = [h for h, s in by_expert[e] if _agree(s, s0)]
                if len(matches) != 1:
                    break
                family[e] = matches[0]
        else:
            families.append(family)
    return families


def score_vote(store: Store, space: str, experts: list[str], want: dict) -> list[ScoreSummary]:
    """(Re)compute vote for every matching family of expert configs."""
    summaries = []
    for family in vote_families(store, space, experts, want):
        start = time.perf_counter()
        listed = sorted(f"{n}:{h}" for n, h in family.items())
        settings = {"space": space, "experts": listed}
        chash = record_config(store, "vote", settings)
        ranks = store.vote_ranks(space, listed)
        if not ranks:
            raise BadInput(
                f"vote needs scores of all its experts ({', '.join(experts)}) for the same archs and seeds; "
                f"score them first with `estbench score --space {space} --zse ...`"
            )
        with recorded_run(store, "score", space, "vote", {**settings, "config_hash": chash}) as run:
            rows = [
                ScoreRow.of(ScoreKey(space, "vote", chash, 0, seed), a, 0, v, 0.0, run.run_id) for a, seed, v in ranks
            ]
            store.replace_scores(space, "vote", chash, rows)
            run.written = len(rows)
        summaries.append(ScoreSummary("vote", chash, len(rows), 0, len(rows), 0, 0, time.perf_counter() - start))
    return summaries
