-- Scores that cannot enter criteria: failed or non-finite batches, per estimator group.
-- Parameters: $space, $estimators, $epochs, $seeds (as in points.sql)
SELECT estimator, config_hash, epoch,
       count(*) FILTER (WHERE status = 'failed') AS n_failed,
       count(*) FILTER (WHERE status = 'nonfinite') AS n_nonfinite
FROM scores
WHERE space = $space
  AND list_contains($estimators, estimator)
  AND (len($epochs) = 0 OR list_contains($epochs, epoch))
  AND (len($seeds) = 0 OR list_contains($seeds, seed))
GROUP BY estimator, config_hash, epoch
