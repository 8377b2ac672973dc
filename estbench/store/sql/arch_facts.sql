-- Per architecture of a space: its string, its class key under $protocol ('iso' keeps
-- every arch apart, 'deiso' the benchmark's isomorphism key, 'deiso-computational' the
-- strict computational key) and the size of that class (how many archs share it).
-- Parameters: $space, $protocol
WITH keyed AS (
    SELECT arch_id, arch_str, degenerate,
           CASE $protocol WHEN 'iso' THEN CAST(arch_id AS VARCHAR)
                          WHEN 'deiso' THEN iso_key
                          ELSE comp_key END AS grp,
           iso_key
    FROM archs WHERE space = $space
)
SELECT arch_id, arch_str, degenerate, grp,
       count(*) OVER (PARTITION BY grp) AS class_size,
       count(*) OVER (PARTITION BY iso_key) AS iso_size
FROM keyed ORDER BY arch_id
