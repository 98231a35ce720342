-- name: latency-regression
-- description: The p95 latency of an integration's tool calls is more than twice its recent p95.
-- severity: medium
-- every: 1 window
-- window: 1 window
-- key: integration.id, tool
-- The current window's p95 comes from its history rollup (made once when it closed): the
-- calls-weighted mean of its per-agent p95s, as the baseline is a mean of per-window p95s. The
-- minimums of evidence count the spans windows kept (`kept_spans`).
WITH current_window AS (
    SELECT integration_id, tool_name, max(layer) AS layer, sum(spans) AS calls, sum(kept_spans) AS kept,
           sum(p95_duration_ms * spans) / sum(spans) AS p95
    FROM history
    WHERE integration_id IS NOT NULL AND window_start >= (SELECT min(window_start) FROM windows)
    GROUP BY integration_id, tool_name
), baseline AS (
    SELECT integration_id, tool_name, avg(p95_duration_ms) AS p95, sum(kept_spans) AS kept
    FROM history
    WHERE integration_id IS NOT NULL AND window_start < (SELECT min(window_start) FROM windows)
    GROUP BY integration_id, tool_name
)
SELECT c.integration_id AS "integration.id",
       coalesce(c.tool_name, '') AS tool,
       c.layer AS "operating_model.layer",
       c.p95 AS value,
       b.p95 AS baseline,
       c.calls AS calls
FROM current_window c
JOIN baseline b ON c.integration_id = b.integration_id AND c.tool_name IS NOT DISTINCT FROM b.tool_name
WHERE c.kept >= 5
  AND b.kept >= 20
  AND c.p95 > 2 * b.p95
  AND c.p95 - b.p95 > 50
