-- Calls to tools and hosts the registry does not list (see `calls` in views.sql), with the
-- agents and layers that made them, and when.
SELECT integration_target AS target,
       max(tool_name) AS tool_name,
       max(server_address) AS server_address,
       bool_or(coalesce(mcp_method = 'tools/call', false)) AS mcp,
       CAST(count(*) AS BIGINT) AS calls,
       CAST(count(DISTINCT agent) AS BIGINT) AS agents,
       array_to_string(array_sort(array_agg(DISTINCT agent)), ', ') AS agent_names,
       array_to_string(array_sort(array_agg(DISTINCT layer)), ', ') AS layers,
       min(start_time) AS first_seen,
       max(start_time) AS last_seen
FROM calls
WHERE integration_registered = false AND integration_target IS NOT NULL
GROUP BY integration_target
ORDER BY calls DESC, target
