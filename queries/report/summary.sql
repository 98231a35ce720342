-- The fleet summary: spans, traces, agents, invocations (`invoke_agent` spans), errors, and
-- the tokens of inference spans only, so that an `invoke_agent` span repeating its children's
-- counts is not counted twice.
SELECT
  CAST(count(*) AS BIGINT) AS spans,
  CAST(count(DISTINCT trace_id) AS BIGINT) AS traces,
  CAST(count(DISTINCT agent) AS BIGINT) AS agents,
  CAST(sum(CASE WHEN operation = 'invoke_agent' THEN 1 ELSE 0 END) AS BIGINT) AS invocations,
  CAST(sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors,
  CAST(coalesce(sum(CASE WHEN operation IN ('chat', 'text_completion', 'generate_content', 'embeddings') THEN input_tokens END), 0) AS BIGINT) AS input_tokens,
  CAST(coalesce(sum(CASE WHEN operation IN ('chat', 'text_completion', 'generate_content', 'embeddings') THEN output_tokens END), 0) AS BIGINT) AS output_tokens
FROM spans
