-- The top MCP servers by calls: the MCP client spans (those with an MCP method), by server
-- address, else the integration.
SELECT coalesce(server_address, integration_id, integration_target, 'unknown') AS server,
       coalesce(max(integration_id), max(integration_target)) AS integration,
       CAST(count(*) AS BIGINT) AS calls,
       CAST(sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors,
       CAST(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS DOUBLE) AS p95_ms
FROM spans
WHERE mcp_method IS NOT NULL
GROUP BY 1
ORDER BY calls DESC, server
LIMIT 20
