-- One estimator's value per architecture (mean over batches, then over seeds), for every
-- arch it scored with a finite value, per config: complexity groups and Pareto fronts
-- read params / flops this way.
-- Parameters: $space, $estimator, $epoch
SELECT config_hash, arch_id, list_avg(list(value ORDER BY seed)) AS value
FROM score_mean
WHERE space = $space AND estimator = $estimator AND epoch = $epoch
  AND value IS NOT NULL AND isfinite(value)
GROUP BY config_hash, arch_id
ORDER BY config_hash, arch_id
