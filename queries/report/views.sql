-- The views and tables the report's sections read, created in this order over the archive's
-- `spans` and `logs` (the records of the report's period). `inference` and `calls` are
-- computed once (CREATE TABLE … AS) as most sections read them. Statements end with `;` on a
-- line of its own.

-- Every span, with the cost of the inference calls (chat, completions, embeddings) at the
-- report's price table: `cost_usd` gives null where no price covers the model, so
-- unpriced tokens are counted as such, never as free.
CREATE VIEW priced_spans AS
SELECT *,
       operation IN ('chat', 'text_completion', 'generate_content', 'embeddings') AS is_inference,
       CASE WHEN operation IN ('chat', 'text_completion', 'generate_content', 'embeddings')
            THEN cost_usd(coalesce(response_model, model), start_time, input_tokens, output_tokens,
                          cache_read_tokens, cache_write_tokens)
       END AS cost
FROM spans
;
-- The inference calls: the only spans whose tokens are summed, so an `invoke_agent` span
-- repeating its children's counts is not counted twice.
CREATE TABLE inference AS
SELECT * FROM priced_spans WHERE is_inference
;
-- Calls to integrations, registered or shadow. A call is one tool invocation: the MCP or HTTP
-- client span under an attributed `execute_tool` span is the same call as its parent, so a
-- span counts only when no such parent covers it.
CREATE TABLE calls AS
SELECT c.*
FROM spans c
LEFT JOIN (SELECT trace_id, span_id FROM spans
           WHERE operation = 'execute_tool'
             AND (integration_id IS NOT NULL OR integration_target IS NOT NULL)) p
  ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE (c.integration_id IS NOT NULL OR c.integration_target IS NOT NULL)
  AND p.span_id IS NULL
;
-- The anomaly findings fleetpipe's analytics emitted (`fleetpipe.anomaly` log records).
CREATE VIEW findings AS
SELECT time,
       attributes['fleetpipe.detector'] AS detector,
       attributes['fleetpipe.severity'] AS severity,
       attributes['fleetpipe.key'] AS key,
       attributes['integration.id'] AS integration_id,
       body
FROM logs
WHERE event_name = 'fleetpipe.anomaly'
;
