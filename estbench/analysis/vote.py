"""``vote``: the paper's ensemble of the best zero-shot experts, as a per-architecture
score. Defined here as a Borda count: the mean over experts of the architecture's
percent rank among the architectures all experts scored (ties share a rank). The
paper's vote [Abdelfattah et al.] takes a majority over experts for each pair of
architectures; the Borda count is its per-architecture form (an expert's percent rank
is the fraction of pairwise comparisons the architecture wins under that expert), so
it can be stored and ranked like any other estimator.

Expert sets per space follow the paper's Table A9 (the three best ZSEs there)."""

from __future__ import annotations

from estbench.config import config_hash
from estbench.errors import BadInput
from estbench.store.sql import load_sql
from estbench.store.store import Store

EXPERTS: dict[str, tuple[str, ...]] = {
    "nb201": ("relu_logdet", "jacob_cov", "synflow"),
    "nb101": ("relu_logdet", "grasp", "plain"),
    "nb301": ("plain", "grasp", "relu_logdet"),
    "toy": ("relu_logdet", "jacob_cov", "synflow"),
}


def compute_vote(store: Store, space: str, expert_hashes: dict[str, str], run_id: str | None = None) -> tuple[str, int]:
    """Recompute the vote of every (arch, seed) the experts cover; returns (config hash,
    rows). The rows of this config are replaced: a vote depends on the population."""
    experts = sorted(f"{n}:{h}" for n, h in expert_hashes.items())
    chash = config_hash({"estimator": "vote", "space": space, "experts": experts})
    _, rows = store.query(load_sql("vote"), {"space": space, "experts": experts, "n_experts": len(experts)})
    if not rows:
        raise BadInput(
            f"vote needs scores of all its experts ({', '.join(expert_hashes)}) for the same archs and seeds; "
            f"score them first with `estbench score --space {space} --zse ...`"
        )
    store.put_config(chash, "vote", {"space": space, "experts": experts})
    score_rows = [(space, a, "vote", chash, 0, seed, 0, float(v), "ok", None, 0.0, run_id) for a, seed, v in rows]

    def replace() -> None:
        store.con.execute(
            "DELETE FROM scores WHERE space = ? AND estimator = 'vote' AND config_hash = ?", [space, chash]
        )
        from estbench.store.store import SCORE_COLUMNS

        data = {c: [r[i] for r in score_rows] for i, c in enumerate(SCORE_COLUMNS)}
        store.insert_columns("scores", SCORE_COLUMNS, data)

    store.transaction(replace)
    return chash, len(score_rows)
