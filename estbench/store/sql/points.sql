-- Point sets for criteria: one row per (estimator group, point).
-- Scores are averaged over batches (score_mean), then over the selected seeds; a
-- point is one architecture (protocol 'iso') or one isomorphism class ('deiso':
-- benchmark key, 'deiso-computational': strict computational key) with truth and
-- score averaged over its members that have both. Ranks are 1-based ordinal ranks,
-- 1 = best, ties broken by the smallest arch id of the point (rep).
-- Parameters: $space, $metric, $protocol, $estimators (VARCHAR[]),
--             $epochs (INTEGER[], empty = all), $seeds (INTEGER[], empty = all)
WITH sel AS (
    SELECT estimator, config_hash, epoch, arch_id, avg(value) AS score
    FROM score_mean
    WHERE space = $space
      AND list_contains($estimators, estimator)
      AND (len($epochs) = 0 OR list_contains($epochs, epoch))
      AND (len($seeds) = 0 OR list_contains($seeds, seed))
    GROUP BY estimator, config_hash, epoch, arch_id
),
joined AS (
    SELECT sel.*, t.value AS truth,
           CASE $protocol WHEN 'iso' THEN CAST(a.arch_id AS VARCHAR)
                          WHEN 'deiso' THEN a.iso_key
                          ELSE a.comp_key END AS grp
    FROM sel
    JOIN archs a ON a.space = $space AND a.arch_id = sel.arch_id
    JOIN truth t ON t.space = $space AND t.arch_id = sel.arch_id AND t.metric = $metric
    WHERE sel.score IS NOT NULL AND isfinite(sel.score) AND t.value IS NOT NULL
),
points AS (
    SELECT estimator, config_hash, epoch, grp,
           avg(score) AS score, avg(truth) AS truth, min(arch_id) AS rep, count(*) AS members
    FROM joined
    GROUP BY estimator, config_hash, epoch, grp
)
SELECT p.estimator, p.config_hash, p.epoch, p.rep, p.members, p.truth, p.score,
       e.higher_is_better,
       row_number() OVER (PARTITION BY p.estimator, p.config_hash, p.epoch
                          ORDER BY CASE WHEN m.higher_is_better THEN -p.truth ELSE p.truth END, p.rep) AS truth_rank,
       row_number() OVER (PARTITION BY p.estimator, p.config_hash, p.epoch
                          ORDER BY CASE WHEN e.higher_is_better THEN -p.score ELSE p.score END, p.rep) AS score_rank,
       m.higher_is_better AS truth_higher_is_better
FROM points p
JOIN estimators e ON e.name = p.estimator
JOIN metrics m ON m.space = $space AND m.metric = $metric
ORDER BY p.estimator, p.config_hash, p.epoch, p.rep
