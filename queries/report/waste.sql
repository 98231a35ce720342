-- The waste ledger: what went round in circles or failed, and the inference tokens and cost
-- of the traces it happened in (the spend it put at risk).
--  - tool-call loop: one tool called more than 10 times in a trace (as the tool-call-loop
--    detector); counted per trace and tool;
--  - retried tool call: a call to a tool that already failed in the same trace;
--  - failed tool call: a call that ended in error;
--  - failed invocation: an `invoke_agent` span that ended in error.
WITH loops AS (
  SELECT trace_id, count(*) - 10 AS extra FROM calls WHERE tool_name IS NOT NULL
  GROUP BY trace_id, tool_name HAVING count(*) > 10
), first_failures AS (
  SELECT trace_id, tool_name, min(start_time) AS failed_at FROM calls
  WHERE status_code = 'error' AND tool_name IS NOT NULL GROUP BY trace_id, tool_name
), retries AS (
  SELECT c.trace_id FROM calls c
  JOIN first_failures f ON f.trace_id = c.trace_id AND f.tool_name = c.tool_name AND c.start_time > f.failed_at
), failed_calls AS (
  SELECT trace_id FROM calls WHERE status_code = 'error'
), failed_invocations AS (
  SELECT trace_id FROM spans WHERE operation = 'invoke_agent' AND status_code = 'error'
), ledger AS (
  SELECT 1 AS n, 'tool-call loop' AS kind, trace_id FROM loops
  UNION ALL SELECT 2, 'retried tool call', trace_id FROM retries
  UNION ALL SELECT 3, 'failed tool call', trace_id FROM failed_calls
  UNION ALL SELECT 4, 'failed invocation', trace_id FROM failed_invocations
), kinds AS (
  SELECT n, kind, count(*) AS occurrences FROM ledger GROUP BY n, kind
), burnt AS (
  SELECT t.n, CAST(coalesce(sum(spend.tokens), 0) AS BIGINT) AS tokens, CAST(coalesce(sum(spend.cost), 0) AS DOUBLE) AS cost_usd,
         CAST(count(*) AS BIGINT) AS traces
  FROM (SELECT DISTINCT n, trace_id FROM ledger) t
  LEFT JOIN trace_spend spend ON spend.trace_id = t.trace_id
  GROUP BY t.n
)
SELECT kinds.kind, CAST(kinds.occurrences AS BIGINT) AS occurrences, burnt.traces, burnt.tokens, burnt.cost_usd
FROM kinds JOIN burnt ON burnt.n = kinds.n
ORDER BY kinds.n
