-- Calls, errors and p95 latency per governed integration. A call is one tool invocation: a
-- client span under an `execute_tool` span of the same integration is the same call, so it
-- counts only when no such parent covers it. p95 is DataFusion's approx_percentile_cont
-- (a t-digest: within about 1 % of the rank for these sizes).
SELECT
  c.integration_id AS id,
  CAST(count(*) AS BIGINT) AS calls,
  CAST(sum(CASE WHEN c.status_code = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors,
  CAST(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY c.duration_ms) AS DOUBLE) AS p95_ms
FROM spans c
LEFT JOIN spans p
  ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
 AND p.operation = 'execute_tool' AND p.integration_id = c.integration_id
WHERE c.integration_id IS NOT NULL AND p.span_id IS NULL
GROUP BY c.integration_id
ORDER BY calls DESC, id
