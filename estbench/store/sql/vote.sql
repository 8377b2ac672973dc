-- The vote ensemble: per (arch, seed), the mean over experts of the arch's percent rank
-- (0 = worst, 1 = best, oriented by each expert's higher_is_better) among the archs
-- that every expert scored (finite mean-over-batches values). A Borda count: an
-- expert's percent rank is the fraction of the population it ranks below this arch.
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
),
ranked AS (
    SELECT e.arch_id, e.seed, e.estimator,
           percent_rank() OVER (PARTITION BY e.seed, e.estimator ORDER BY e.oriented) AS pr
    FROM e JOIN complete USING (arch_id, seed)
)
SELECT arch_id, seed, list_avg(list(pr ORDER BY estimator)) AS vote FROM ranked GROUP BY arch_id, seed ORDER BY seed, arch_id
