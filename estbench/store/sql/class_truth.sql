-- Class truth of every metric in $metrics: per point (one architecture under 'iso', one
-- isomorphism class under 'deiso' / 'deiso-computational') the mean over its members
-- with a value, computed exactly as points.sql computes it (list_avg over the values
-- ordered by arch id, so the same doubles), with the metric's orientation. The
-- agreement analysis reads the truth columns this way.
-- Parameters: $space, $protocol, $metrics (VARCHAR[])
WITH grouped AS (
    SELECT arch_id,
           CASE $protocol WHEN 'iso' THEN CAST(arch_id AS VARCHAR)
                          WHEN 'deiso' THEN iso_key
                          ELSE comp_key END AS grp
    FROM archs WHERE space = $space
)
SELECT t.metric, g.grp, list_avg(list(t.value ORDER BY t.arch_id)) AS truth,
       any_value(m.higher_is_better) AS higher_is_better
FROM grouped g
JOIN truth t ON t.space = $space AND t.arch_id = g.arch_id
JOIN metrics m ON m.space = $space AND m.metric = t.metric
WHERE list_contains($metrics, t.metric) AND t.value IS NOT NULL
GROUP BY t.metric, g.grp
ORDER BY t.metric, g.grp
