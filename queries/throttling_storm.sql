-- name: throttling-storm
-- description: A rising share of an integration's calls is throttled (HTTP 429 or RESOURCE_EXHAUSTED).
-- severity: high
-- every: 1 window
-- window: 1 window
-- key: integration.id
-- Throttled: HTTP 429, gRPC RESOURCE_EXHAUSTED (8), or an error.type of '429',
-- 'RESOURCE_EXHAUSTED' or 'rate_limited', as counted in each window's history rollup. The
-- current window's counts come from its rollup (made once when it closed). The minimum of
-- evidence counts the spans the window kept (`kept_spans`); the shares use the counts,
-- estimates of all spans when windows sampled.
WITH current_window AS (
    SELECT integration_id, max(layer) AS layer, sum(spans) AS calls, sum(kept_spans) AS kept, sum(throttled) AS throttled
    FROM history
    WHERE integration_id IS NOT NULL AND window_start >= (SELECT min(window_start) FROM windows)
    GROUP BY integration_id
), baseline AS (
    SELECT integration_id, sum(spans) AS calls, sum(throttled) AS throttled
    FROM history
    WHERE integration_id IS NOT NULL AND window_start < (SELECT min(window_start) FROM windows)
    GROUP BY integration_id
)
SELECT c.integration_id AS "integration.id",
       c.layer AS "operating_model.layer",
       CAST(c.throttled AS DOUBLE) / c.calls AS value,
       coalesce(CAST(b.throttled AS DOUBLE) / b.calls, 0.0) AS baseline,
       c.calls AS calls
FROM current_window c
LEFT JOIN baseline b ON c.integration_id = b.integration_id
WHERE c.kept >= 10
  AND CAST(c.throttled AS DOUBLE) / c.calls >= 0.25
  AND CAST(c.throttled AS DOUBLE) / c.calls > 2 * coalesce(CAST(b.throttled AS DOUBLE) / b.calls, 0.0)
