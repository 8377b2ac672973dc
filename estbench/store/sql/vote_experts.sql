-- The input of both vote rules: per (seed, arch_id, expert), the expert's mean-over-batches
-- value at epoch 0, oriented so that higher is better (negated when the expert's
-- higher_is_better is false), for the archs that every expert scored with a finite value
-- in that seed. vote (Copeland, numpy: runs/vote.py) reads these rows; vote_borda
-- (vote_borda.sql) ranks them, so both rules see the same experts and archs.
-- Rows: ordered by seed, arch_id, estimator (exactly one per expert of each (seed, arch)).
-- Parameters: $space, $experts (VARCHAR[] of 'estimator:config_hash'), $n_experts
WITH e AS (
    SELECT s.arch_id, s.seed, s.estimator,
           CASE WHEN est.higher_is_better THEN s.value ELSE -s.value END AS oriented
    FROM score_mean s JOIN estimators est ON est.name = s.estimator
    WHERE s.space = $space AND s.epoch = 0
      AND list_contains($experts, s.estimator || ':' || s.config_hash)
      AND s.value IS NOT NULL AND isfinite(s.value)
),
complete AS (
    SELECT arch_id, seed FROM e GROUP BY arch_id, seed HAVING count(DISTINCT estimator) = $n_experts
)
SELECT e.seed, e.arch_id, e.estimator, e.oriented
FROM e JOIN complete USING (arch_id, seed)
ORDER BY e.seed, e.arch_id, e.estimator
