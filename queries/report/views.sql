-- The tables and views the report's sections read, created in this order over the archive's
-- `spans` and `logs` (the records of the report's period). `inference` and `calls` are
-- computed once (CREATE TABLE … AS), with the columns the sections read, as most of them
-- read those. Statements end with `;` on a
-- line of its own.

-- The inference calls (chat, completions, embeddings): the only spans whose tokens are summed,
-- so an `invoke_agent` span repeating its children's counts is not counted twice; each with
-- its cost at the report's price table. `cost_usd` gives null where no price covers the
-- model, so unpriced tokens are counted as such, never as free.
CREATE TABLE inference AS
SELECT trace_id, start_time, agent, layer, input_tokens, output_tokens, cache_read_tokens,
       cache_write_tokens, reasoning_tokens,
       cost_usd(coalesce(response_model, model), start_time, input_tokens, output_tokens,
                cache_read_tokens, cache_write_tokens) AS cost
FROM spans
WHERE operation IN ('chat', 'text_completion', 'generate_content', 'embeddings')
;
-- The inference tokens and cost of each trace: the spend a call, a loop or a failure is set
-- against.
CREATE TABLE trace_spend AS
SELECT trace_id,
       coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS tokens,
       sum(cost) AS cost
FROM inference
GROUP BY trace_id
;
-- Calls to integrations, registered or shadow. A call is one tool invocation: the MCP or HTTP
-- client span under an attributed `execute_tool` span is the same call as its parent, so a
-- span counts only when no such parent covers it. The parent is found by its span id alone
-- (64 random bits: unique in practice), which is three times faster than by trace and span;
-- as NOT EXISTS rather than NOT IN, whose null-aware anti join was a third slower and held a
-- quarter more memory over 10 million spans (benches/report.sh).
CREATE TABLE calls AS
SELECT c.trace_id, c.start_time, c.duration_ms, c.status_code, c.operation, c.tool_name,
       c.mcp_method, c.server_address, c.error_type, c.http_status_code, c.grpc_status_code,
       c.agent, c.layer, c.integration_id, c.integration_name, c.integration_connection,
       c.integration_registered, c.integration_target
FROM spans c
WHERE (c.integration_id IS NOT NULL OR c.integration_target IS NOT NULL)
  AND NOT EXISTS (
        SELECT 1 FROM spans p
        WHERE p.span_id = c.parent_span_id AND p.operation = 'execute_tool'
          AND (p.integration_id IS NOT NULL OR p.integration_target IS NOT NULL))
;
-- The anomaly findings fleetpipe's analytics emitted (`fleetpipe.anomaly` log records).
CREATE VIEW findings AS
SELECT time,
       attributes['fleetpipe.detector'] AS detector,
       attributes['fleetpipe.severity'] AS severity,
       attributes['fleetpipe.key'] AS key,
       integration_id,
       body
FROM logs
WHERE event_name = 'fleetpipe.anomaly'
;
