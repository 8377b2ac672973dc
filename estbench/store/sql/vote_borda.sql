-- vote_borda, a Borda count: per (arch, seed), the mean over experts of the arch's percent
-- rank (0 = worst, 1 = best; tied values share the lower rank) among the archs of
-- vote_experts.sql (every expert scored them). An expert's percent rank is the fraction
-- of the other archs it ranks strictly below this arch.
-- The placeholder line in v is replaced by the query of vote_experts.sql (Store.vote_ranks).
-- Parameters: those of vote_experts.sql
WITH v AS (
VOTE_EXPERTS
),
ranked AS (
    SELECT arch_id, seed, estimator,
           percent_rank() OVER (PARTITION BY seed, estimator ORDER BY oriented) AS pr
    FROM v
)
SELECT arch_id, seed, list_avg(list(pr ORDER BY estimator)) AS vote FROM ranked GROUP BY arch_id, seed ORDER BY seed, arch_id
