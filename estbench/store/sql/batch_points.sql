-- Point sets of `variance batches` (paper Sec. 4.1, Fig. 3, A3): one row per (estimator
-- group, b, point), where the score is the mean over the first b batches, for every
-- b = 1..B at once. B = the most batch rows any (arch, seed) of the group has; groups
-- with B < 2 are left out. Batch order is the `batch` column; an (arch, seed) enters at
-- b only when its first b batches are all 'ok' (a failed or non-finite batch ends its
-- prefix). The rest is points.sql with b as one more partition key: the b-batch means
-- are averaged over the selected seeds that have them, a point is an architecture
-- ('iso') or an isomorphism class ('deiso', 'deiso-computational'), class truth = mean
-- over all members with truth, score = the representative's (smallest arch id with a
-- b-batch score) or, with $post_deiso, the mean over those members. So at b = B the
-- points are criteria's wherever every arch has all B batches 'ok'.
-- The means are list_avg over lists in batch / seed / arch order, as in score_mean and
-- points.sql (the same sums in the same order, so b = B gives criteria's bits).
-- cls: the smallest arch id of the point's class among ALL archs (a stable point id
-- across b, while rep can change when a member lacks later batches).
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
seed_batches AS (
    SELECT estimator, config_hash, epoch, seed, arch_id,
           list(value ORDER BY batch) AS vals,
           list(status = 'ok' ORDER BY batch) AS oks,
           count(*) AS n_rows
    FROM scores
    WHERE space = $space
      AND list_contains($estimators, estimator)
      AND (len($epochs) = 0 OR list_contains($epochs, epoch))
      AND (len($seeds) = 0 OR list_contains($seeds, seed))
    GROUP BY estimator, config_hash, epoch, seed, arch_id
),
group_b AS (
    SELECT estimator, config_hash, epoch, max(n_rows) AS n_batches
    FROM seed_batches
    GROUP BY estimator, config_hash, epoch
    HAVING max(n_rows) >= 2
),
prefix AS (
    SELECT s.estimator, s.config_hash, s.epoch, s.seed, s.arch_id, s.vals,
           coalesce(list_position(s.oks, false) - 1, s.n_rows) AS n_ok
    FROM seed_batches s
    SEMI JOIN group_b g USING (estimator, config_hash, epoch)
),
expanded AS (
    SELECT estimator, config_hash, epoch, seed, arch_id, vals, unnest(generate_series(1, n_ok)) AS b
    FROM prefix
    WHERE n_ok >= 1
),
sel AS (
    SELECT estimator, config_hash, epoch, b, arch_id, list_avg(list(score ORDER BY seed)) AS score
    FROM (SELECT estimator, config_hash, epoch, seed, arch_id, b, list_avg(list_slice(vals, 1, b)) AS score
          FROM expanded)
    GROUP BY estimator, config_hash, epoch, b, arch_id
),
points AS (
    SELECT sel.estimator, sel.config_hash, sel.epoch, sel.b, c.grp, min(c.cls) AS cls,
           CASE WHEN $post_deiso THEN list_avg(list(sel.score ORDER BY sel.arch_id))
                ELSE arg_min(sel.score, sel.arch_id) END AS score,
           min(sel.arch_id) AS rep, count(*) AS members
    FROM sel JOIN classes c ON c.arch_id = sel.arch_id
    WHERE sel.score IS NOT NULL AND isfinite(sel.score)
    GROUP BY sel.estimator, sel.config_hash, sel.epoch, sel.b, c.grp
)
SELECT p.estimator, p.config_hash, p.epoch, g.n_batches, p.b, p.rep, p.cls, p.members, c.truth, p.score,
       e.higher_is_better,
       row_number() OVER (PARTITION BY p.estimator, p.config_hash, p.epoch, p.b
                          ORDER BY CASE WHEN m.higher_is_better THEN -c.truth ELSE c.truth END, p.rep) AS truth_rank,
       row_number() OVER (PARTITION BY p.estimator, p.config_hash, p.epoch, p.b
                          ORDER BY CASE WHEN e.higher_is_better THEN -p.score ELSE p.score END, p.rep) AS score_rank,
       m.higher_is_better AS truth_higher_is_better
FROM points p
JOIN group_b g USING (estimator, config_hash, epoch)
JOIN class_truth c ON c.grp = p.grp
JOIN estimators e ON e.name = p.estimator
JOIN metrics m ON m.space = $space AND m.metric = $metric
ORDER BY p.estimator, p.config_hash, p.epoch, p.b, p.rep
