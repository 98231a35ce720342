-- name: tool-call-loop
-- description: An agent calls the same tool more than 10 times within one trace.
-- severity: medium
-- every: 1 window
-- window: 1 window
-- key: agent, trace_id, tool
SELECT agent,
       max(layer) AS "operating_model.layer",
       trace_id,
       tool_name AS tool,
       max(integration_id) AS "integration.id",
       CAST(count(*) AS DOUBLE) AS value
FROM spans
WHERE tool_name IS NOT NULL
GROUP BY agent, trace_id, tool_name
HAVING count(*) > 10
