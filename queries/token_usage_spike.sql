-- name: token-usage-spike
-- description: An agent uses far more tokens than in its recent windows (z-score above 4).
-- severity: medium
-- every: 1 window
-- window: 1 window
-- key: agent
-- The current window's tokens come from its history rollup (made once when it closed) rather
-- than from a scan of its spans.
WITH current_window AS (
    SELECT agent, max(layer) AS layer, CAST(sum(input_tokens + output_tokens) AS DOUBLE) AS tokens
    FROM history
    WHERE agent IS NOT NULL AND window_start >= (SELECT min(window_start) FROM windows)
    GROUP BY agent
), per_window AS (
    SELECT agent, window_start, CAST(sum(input_tokens + output_tokens) AS DOUBLE) AS tokens
    FROM history
    WHERE agent IS NOT NULL AND window_start < (SELECT min(window_start) FROM windows)
    GROUP BY agent, window_start
), baseline AS (
    SELECT agent, avg(tokens) AS mean, stddev_pop(tokens) AS deviation, count(*) AS windows
    FROM per_window
    GROUP BY agent
)
SELECT c.agent,
       c.layer AS "operating_model.layer",
       c.tokens AS value,
       b.mean AS baseline,
       (c.tokens - b.mean) / greatest(b.deviation, 0.5 * b.mean, 1.0) AS z_score
FROM current_window c
JOIN baseline b ON c.agent = b.agent
WHERE b.windows >= 3
  AND b.mean > 0
  AND (c.tokens - b.mean) / greatest(b.deviation, 0.5 * b.mean, 1.0) > 4
