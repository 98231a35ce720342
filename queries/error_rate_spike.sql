-- name: error-rate-spike
-- description: An integration's calls fail far more often than in its own recent history.
-- severity: high
-- every: 1 window
-- window: 1 window
-- key: integration.id
-- The current window's counts come from its history rollup (made once when it closed) rather
-- than from a scan of its spans. The minimums of evidence count the spans windows kept
-- (`kept_spans`); the rates use the counts, estimates of all spans when windows sampled.
WITH current_window AS (
    SELECT integration_id, max(layer) AS layer, sum(spans) AS calls, sum(kept_spans) AS kept, sum(errors) AS errors
    FROM history
    WHERE integration_id IS NOT NULL AND window_start >= (SELECT min(window_start) FROM windows)
    GROUP BY integration_id
), baseline AS (
    SELECT integration_id, sum(spans) AS calls, sum(kept_spans) AS kept, sum(errors) AS errors
    FROM history
    WHERE integration_id IS NOT NULL AND window_start < (SELECT min(window_start) FROM windows)
    GROUP BY integration_id
)
SELECT c.integration_id AS "integration.id",
       c.layer AS "operating_model.layer",
       CAST(c.errors AS DOUBLE) / c.calls AS value,
       CAST(b.errors AS DOUBLE) / b.calls AS baseline,
       c.calls AS calls
FROM current_window c
JOIN baseline b ON c.integration_id = b.integration_id
WHERE c.kept >= 10
  AND b.kept >= 20
  AND CAST(c.errors AS DOUBLE) / c.calls >= 0.2
  AND CAST(c.errors AS DOUBLE) / c.calls > 3 * CAST(b.errors AS DOUBLE) / b.calls + 0.05
