-- The input of the rank aggregates (az_nas, tenas, vkdnw_agg; runs/aggregate.py): per
-- (expert, seed, arch_id), the expert's mean over its ok batches at epoch 0 (NULL when no
-- batch is ok: a non-finite or failed value, which the aggregates rank lowest), oriented so
-- that higher is better. Structural experts (flops) have one seed; the aggregate uses their
-- value for every seed of the zero-shot experts.
-- Parameters: $space, $experts (VARCHAR[] of 'estimator:config_hash')
SELECT s.estimator, est.kind, s.seed, s.arch_id,
       CASE WHEN est.higher_is_better THEN s.value ELSE -s.value END AS oriented
FROM score_mean s JOIN estimators est ON est.name = s.estimator
WHERE s.space = $space AND s.epoch = 0 AND list_contains($experts, s.estimator || ':' || s.config_hash)
ORDER BY s.estimator, s.seed, s.arch_id
