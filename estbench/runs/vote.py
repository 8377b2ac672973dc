"""``vote`` and ``vote_borda``: the paper's ensemble of the best zero-shot experts as a
per-architecture score, recomputed from the store alone (no network, no dataset, no
torch). A space's default experts are its ``vote_experts`` (the paper's Table A9: its
three best ZSEs; NB101: relu_logdet, grasp, plain; NB301: plain, grasp, relu_logdet).

Both rules read the same rows (``sql/vote_experts.sql``): per seed, the experts'
mean-over-batches values at epoch 0 over the archs that every expert scored with a
finite value, each expert oriented by its ``higher_is_better``.

- ``vote`` is the paper's rule (Sec. 4.2, after Abdelfattah et al., "Zero-cost
  proxies"): a majority vote between the experts for every pair of architectures, as a
  Copeland score. Architecture a beats b when strictly more experts prefer a to b than
  b to a (an expert whose two values are equal prefers neither); a's score is the number
  of other architectures it beats. Ties (as many experts for a as for b) count for
  neither: wins only, no half points. O(n^2) pairs, computed in numpy by row chunks
  (:func:`copeland_wins`).
- ``vote_borda`` is a Borda count: the mean over experts of the architecture's percent
  rank (``sql/vote_borda.sql``), i.e. of the fraction of the others that each expert
  ranks below it. It was this project's ``vote`` before schema 5; migration 5 renamed
  the stored rows (see ``store/schema.py``).

The experts' configs are looked up in the ``configs`` table: a vote family is one
config per expert whose shared settings agree (synflow's config has fewer settings than
relu_logdet's, so "agree" means on the keys both have), restricted to the settings of
the request. For every family, each requested rule is recomputed over the archs all its
experts scored and written, with its run id, in place of that family's previous rows of
that rule (it depends on the whole population). A rule's config settings are
``{"space", "experts"}`` plus, for ``vote``, ``"rule": "copeland"``, so the two rules'
configs never share settings (their hashes also differ by the estimator name).

Trained weights (``--weights supernet:RUN@EPOCH``) are refused with one line: the rules
read epoch 0 only, and voting at another epoch would need an epoch parameter in
``Store.vote_values`` / ``vote_ranks`` and a replace of one epoch's rows (``replace_scores``
replaces every epoch of a config)."""

from __future__ import annotations

import time

import numpy as np

from estbench.errors import BadInput
from estbench.runs.loop import ScoreSummary, record_config, recorded_run
from estbench.store import ScoreKey, ScoreRow, Store

# The derived estimators computed here, and the settings each adds to the family's.
RULES: dict[str, dict] = {"vote": {"rule": "copeland"}, "vote_borda": {}}
CHUNK_CELLS = 1 << 20  # pairs per numpy chunk: two (rows x n) int8/bool buffers of ~1 MB each


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


def vote_families(store: Store, space: str, experts: list[str], want: dict, what: str = "vote") -> list[dict[str, str]]:
    """Families {expert: config hash} of recorded expert configs matching ``want``
    (settings to match; ``input`` as (kind, data seed)); ``what`` names the estimator
    that needs them in the error."""
    configs = store.configs_of(space, experts)
    by_expert = {e: [(h, s) for n, h, s in configs if n == e and _wanted(s, want)] for e in experts}
    missing = [e for e, cs in by_expert.items() if not cs]
    if missing:
        raise BadInput(
            f"{what} needs scores of all its experts ({', '.join(experts)}); no matching config of {', '.join(missing)} "
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


def _dense_ranks(values: np.ndarray) -> np.ndarray:
    """Per column, the rank of each value among the column's distinct values (equal
    values share a rank, order kept), in the smallest integer type that holds them."""
    n = values.shape[0]
    out = np.empty(values.shape, dtype=np.int16 if n < 2**15 else np.int32)
    for e in range(values.shape[1]):
        out[:, e] = np.unique(values[:, e], return_inverse=True)[1].reshape(-1)
    return out


def copeland_wins(values: np.ndarray, chunk_cells: int = CHUNK_CELLS) -> np.ndarray:
    """Copeland scores of the rows of ``values`` (n archs x k experts, finite, higher is
    better in every column): for each arch, the number of other archs it beats, where a
    beats b when strictly more experts have a's value above b's than below it (equal
    values: that expert abstains; a tied majority: neither wins).

    All n^2 ordered pairs are compared, ``chunk_cells`` of them at a time (rows of a
    chunk x all n archs), on integer ranks: memory stays at two chunk-sized buffers
    plus the n x k ranks (~2 MB by default), and 15,625 archs x 3 experts take ~0.3 s
    on one core."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"copeland_wins needs an (archs x experts) matrix, got shape {values.shape}")
    n, k = values.shape
    wins = np.zeros(n, dtype=np.int64)
    if n == 0 or k == 0:
        return wins
    cols = np.ascontiguousarray(_dense_ranks(values).T)  # k x n
    rows = max(1, chunk_cells // n)
    margin = np.empty((min(rows, n), n), dtype=np.int8 if k < 128 else np.int32)  # (for - against) per pair
    prefer = np.empty(margin.shape, dtype=bool)
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        m, p = margin[: i1 - i0], prefer[: i1 - i0]
        m[...] = 0
        for e in range(k):
            a, b = cols[e, i0:i1, None], cols[e, None, :]
            np.greater(a, b, out=p)
            m += p
            np.less(a, b, out=p)
            m -= p
        np.greater(m, 0, out=p)  # a pair against itself has margin 0: never a win
        wins[i0:i1] = np.count_nonzero(p, axis=1)
    return wins


def _copeland_rows(store: Store, space: str, listed: list[str]) -> list[tuple[int, int, float]]:
    """(arch_id, seed, wins) per seed over the archs every expert scored."""
    seeds, arch_ids, values = store.vote_values(space, listed)
    out: list[tuple[int, int, float]] = []
    for seed in np.unique(seeds):
        sel = seeds == seed
        wins = copeland_wins(values[sel])
        out += [(int(a), int(seed), float(w)) for a, w in zip(arch_ids[sel], wins)]
    return out


def score_vote(
    store: Store, space: str, experts: list[str], want: dict, names: list[str] | tuple[str, ...] = ("vote",)
) -> list[ScoreSummary]:
    """(Re)compute the rules ``names`` (``vote``, ``vote_borda``) for every matching
    family of expert configs; both rules of one family use the same experts and archs."""
    from estbench.runs.zeroshot import TRAINED_VOTE, trained_weights

    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise BadInput(f"not a vote rule: {', '.join(unknown)} (known: {', '.join(RULES)})")
    if isinstance(want.get("init"), str) and trained_weights(want["init"]) is not None:
        raise BadInput(TRAINED_VOTE)  # its experts are read at epoch 0 only (sql/vote_experts.sql)
    summaries = []
    for family in vote_families(store, space, experts, want):
        listed = sorted(f"{n}:{h}" for n, h in family.items())
        for name in names:
            start = time.perf_counter()
            settings = {"space": space, "experts": listed, **RULES[name]}
            ranks = _copeland_rows(store, space, listed) if name == "vote" else store.vote_ranks(space, listed)
            if not ranks:
                raise BadInput(
                    f"{name} needs scores of all its experts ({', '.join(experts)}) for the same archs and seeds; "
                    f"score them first with `estbench score --space {space} --zse ...`"
                )
            summaries.append(write_derived(store, space, name, settings, ranks, start))
    return summaries


def write_derived(
    store: Store, space: str, name: str, settings: dict, values: list[tuple[int, int, float]], start: float
) -> ScoreSummary:
    """Record the config of an estimator derived from stored scores (a vote rule, a rank
    aggregate) and replace its rows by ``values`` ((arch_id, seed, value) at epoch 0,
    batch 0) under one run; it depends on the whole population, so nothing is kept."""
    chash = record_config(store, name, settings)
    with recorded_run(store, "score", space, name, {**settings, "config_hash": chash}) as run:
        rows = [
            ScoreRow.of(ScoreKey(space, name, chash, 0, int(seed)), int(a), 0, float(v), 0.0, run.run_id)
            for a, seed, v in values
        ]
        store.replace_scores(space, name, chash, rows)
        run.written = len(rows)
    return ScoreSummary(name, chash, len(rows), 0, len(rows), 0, 0, time.perf_counter() - start)
