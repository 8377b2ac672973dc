-- Per estimator group: scores that cannot enter criteria (failed or non-finite batches)
-- the cost: mean over (arch, seed) of the wall seconds summed over its batches; the
-- config's human label (e.g. a one-shot run name), if any, and its JSON.
-- Parameters: $space, $estimators, $epochs, $seeds (as in points.sql)
SELECT g.estimator, g.config_hash, g.epoch,
       sum(n_failed_rows) AS n_failed,
       sum(n_nonfinite_rows) AS n_nonfinite,
       avg(seconds) AS seconds_per_arch,
       any_value(c.label) AS label,
       any_value(c.config) AS config
FROM (
    SELECT estimator, config_hash, epoch, n_failed AS n_failed_rows, n_nonfinite AS n_nonfinite_rows,
           elapsed_s AS seconds
    FROM score_arch
    WHERE space = $space
      AND list_contains($estimators, estimator)
      AND (len($epochs) = 0 OR list_contains($epochs, epoch))
      AND (len($seeds) = 0 OR list_contains($seeds, seed))
) g
LEFT JOIN configs c ON c.config_hash = g.config_hash
GROUP BY g.estimator, g.config_hash, g.epoch
