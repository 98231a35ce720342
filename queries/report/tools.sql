-- The top tools by calls, with errors and p95 latency per call.
SELECT tool_name AS tool,
       coalesce(max(integration_id), max(integration_target)) AS integration,
       CAST(count(*) AS BIGINT) AS calls,
       CAST(sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors,
       CAST(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS DOUBLE) AS p95_ms
FROM calls
WHERE tool_name IS NOT NULL
GROUP BY tool_name
ORDER BY calls DESC, tool
LIMIT 20
