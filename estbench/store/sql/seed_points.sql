-- Point sets per seed for `variance stability --show seeds` (paper Sec. 5.3, Fig. 7): one
-- row per (estimator group, seed, point). The points of points.sql with the seed as one
-- more partition key instead of averaged over: per seed, a score is its mean over
-- batches (score_mean), a point is an architecture ('iso') or an isomorphism class
-- ('deiso', 'deiso-computational'), class truth = mean over all members with truth,
-- score = the representative's (the smallest arch id the seed scored) or, with
-- $post_deiso, the mean over the seed's scored members. So the rows of seed S are those
-- of points.sql with $seeds = [S].
-- cls: the smallest arch id of the point's class among ALL archs (the same point id for
-- every seed, while rep can differ when the seeds scored different members).
-- Parameters: as points.sql ($space, $metric, $protocol, $post_deiso, $estimators,
--             $epochs, $seeds).
WITH grouped AS (
    SELECT arch_id,
           CASE $protocol WHEN 'iso' THEN CAST(arch_id AS VARCHAR)
                          WHEN 'deiso' THEN iso_key
                          ELSE comp_key END AS grp
    FROM archs WHERE space = $space
),
classes AS (
    SELECT arch_id, grp, min(arch_id) OVER (PARTITION BY grp) AS cls FROM grouped
),
class_truth AS (
    SELECT g.grp, list_avg(list(t.value ORDER BY t.arch_id)) AS truth
    FROM grouped g JOIN truth t ON t.space = $space AND t.arch_id = g.arch_id AND t.metric = $metric
    WHERE t.value IS NOT NULL
    GROUP BY g.grp
),
sel AS (
    SELECT estimator, config_hash, epoch, seed, arch_id, value AS score
    FROM score_mean
    WHERE space = $space
      AND list_contains($estimators, estimator)
      AND (len($epochs) = 0 OR list_contains($epochs, epoch))
      AND (len($seeds) = 0 OR list_contains($seeds, seed))
),
points AS (
    SELECT sel.estimator, sel.config_hash, sel.epoch, sel.seed, c.grp, min(c.cls) AS cls,
           CASE WHEN $post_deiso THEN list_avg(list(sel.score ORDER BY sel.arch_id))
                ELSE arg_min(sel.score, sel.arch_id) END AS score,
           min(sel.arch_id) AS rep, count(*) AS members
    FROM sel JOIN classes c ON c.arch_id = sel.arch_id
    WHERE sel.score IS NOT NULL AND isfinite(sel.score)
    GROUP BY sel.estimator, sel.config_hash, sel.epoch, sel.seed, c.grp
)
SELECT p.estimator, p.config_hash, p.epoch, p.seed, p.rep, p.cls, p.members, c.truth, p.score,
       e.higher_is_better,
       row_number() OVER (PARTITION BY p.estimator, p.config_hash, p.epoch, p.seed
                          ORDER BY CASE WHEN m.higher_is_better THEN -c.truth ELSE c.truth END, p.rep) AS truth_rank,
       row_number() OVER (PARTITION BY p.estimator, p.config_hash, p.epoch, p.seed
                          ORDER BY CASE WHEN e.higher_is_better THEN -p.score ELSE p.score END, p.rep) AS score_rank,
       m.higher_is_better AS truth_higher_is_better
FROM points p
JOIN class_truth c ON c.grp = p.grp
JOIN estimators e ON e.name = p.estimator
JOIN metrics m ON m.space = $space AND m.metric = $metric
ORDER BY p.estimator, p.config_hash, p.epoch, p.seed, p.rep
