-- Stored gradient similarities of one space (``score --gradsim``), optionally only some
-- runs / checkpoint epochs; a NULL cosine (no parameter both archs use, or a zero
-- gradient) comes back as NaN so that numpy keeps it apart from the values.
SELECT g.run_name,
       g.config_hash,
       coalesce(c.label, g.config_hash) AS label,
       g.epoch,
       g.pair,
       g.arch_a,
       g.arch_b,
       g.layer,
       coalesce(g.cosine, 'NaN'::DOUBLE) AS cosine
FROM gradsim g
LEFT JOIN configs c USING (config_hash)
WHERE g.space = $space
  AND ($runs::VARCHAR[] IS NULL OR list_contains($runs::VARCHAR[], g.run_name))
  AND ($epochs::INTEGER[] IS NULL OR list_contains($epochs::INTEGER[], g.epoch))
ORDER BY g.run_name, g.config_hash, g.epoch, g.pair, g.layer
