-- Point sets for criteria: one row per (estimator group, point).
-- Scores are averaged over batches (score_mean), then over the selected seeds. A point
-- is one architecture (protocol 'iso') or one isomorphism class ('deiso': the
-- benchmark's key, 'deiso-computational': the strict computational key). A class's
-- truth is the mean over ALL its members that have truth (as the paper's deiso
-- evaluation does). Its score is the representative's: the score of the smallest
-- scored arch id of the class (the paper scores one representative per class, so an
-- estimator scored on every member, e.g. params, is judged like one scored on
-- representatives only); with $post_deiso the mean over its scored members (the
-- paper's "post-deiso" variant, Sec. 6.2).
-- Averages are list_avg over ordered lists: the same sum in the same order on every run
-- (avg() sums in whatever order DuckDB's threads meet the rows, and last-bit differences
-- of class truths flip tied ranks). Ranks are 1-based ordinal ranks, 1 = best, ties broken by the point's smallest
-- scored arch id (rep).
-- Parameters: $space, $metric, $protocol, $post_deiso (BOOLEAN), $estimators (VARCHAR[]),
--             $epochs (INTEGER[], empty = all), $seeds (INTEGER[], empty = all)
WITH grouped AS (
    SELECT arch_id,
           CASE $protocol WHEN 'iso' THEN CAST(arch_id AS VARCHAR)
                          WHEN 'deiso' THEN iso_key
                          ELSE comp_key END AS grp
    FROM archs WHERE space = $space
),
class_truth AS (
    SELECT g.grp, list_avg(list(t.value ORDER BY t.arch_id)) AS truth
    FROM grouped g JOIN truth t ON t.space = $space AND t.arch_id = g.arch_id AND t.metric = $metric
    WHERE t.value IS NOT NULL
    GROUP BY g.grp
),
sel AS (
    SELECT estimator, config_hash, epoch, arch_id, list_avg(list(value ORDER BY seed)) AS score
    FROM score_mean
    WHERE space = $space
      AND list_contains($estimators, estimator)
      AND (len($epochs) = 0 OR list_contains($epochs, epoch))
      AND (len($seeds) = 0 OR list_contains($seeds, seed))
    GROUP BY estimator, config_hash, epoch, arch_id
),
points AS (
    SELECT sel.estimator, sel.config_hash, sel.epoch, g.grp,
           CASE WHEN $post_deiso THEN list_avg(list(sel.score ORDER BY sel.arch_id))
                ELSE arg_min(sel.score, sel.arch_id) END AS score,
           min(sel.arch_id) AS rep, count(*) AS members
    FROM sel JOIN grouped g ON g.arch_id = sel.arch_id
    WHERE sel.score IS NOT NULL AND isfinite(sel.score)
    GROUP BY sel.estimator, sel.config_hash, sel.epoch, g.grp
)
SELECT p.estimator, p.config_hash, p.epoch, p.rep, p.members, c.truth, p.score,
       e.higher_is_better,
       row_number() OVER (PARTITION BY p.estimator, p.config_hash, p.epoch
                          ORDER BY CASE WHEN m.higher_is_better THEN -c.truth ELSE c.truth END, p.rep) AS truth_rank,
       row_number() OVER (PARTITION BY p.estimator, p.config_hash, p.epoch
                          ORDER BY CASE WHEN e.higher_is_better THEN -p.score ELSE p.score END, p.rep) AS score_rank,
       m.higher_is_better AS truth_higher_is_better
FROM points p
JOIN class_truth c ON c.grp = p.grp
JOIN estimators e ON e.name = p.estimator
JOIN metrics m ON m.space = $space AND m.metric = $metric
ORDER BY p.estimator, p.config_hash, p.epoch, p.rep
