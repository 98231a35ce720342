-- The fleet summary: spans, traces, agents, invocations (`invoke_agent` spans), errors, the
-- tokens and cost of inference calls (cache and reasoning tokens apart), the tokens no price
-- covered, and the anomalies found.
WITH s AS (
  SELECT CAST(count(*) AS BIGINT) AS spans,
         CAST(count(DISTINCT trace_id) AS BIGINT) AS traces,
         CAST(count(DISTINCT agent) AS BIGINT) AS agents,
         CAST(coalesce(sum(CASE WHEN operation = 'invoke_agent' THEN 1 ELSE 0 END), 0) AS BIGINT) AS invocations,
         CAST(coalesce(sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors
  FROM spans
), i AS (
  SELECT CAST(count(*) AS BIGINT) AS inference_calls,
         CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
         CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
         CAST(coalesce(sum(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
         CAST(coalesce(sum(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens,
         CAST(coalesce(sum(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens,
         CAST(coalesce(sum(cost), 0) AS DOUBLE) AS cost_usd,
         CAST(coalesce(sum(CASE WHEN cost IS NULL
                                THEN coalesce(input_tokens, 0) + coalesce(output_tokens, 0) END), 0) AS BIGINT) AS unpriced_tokens
  FROM inference
), a AS (
  SELECT CAST(count(DISTINCT concat(detector, '/', key)) AS BIGINT) AS anomalies FROM findings
)
SELECT s.*, i.*,
       CAST(CASE WHEN s.invocations > 0 THEN i.cost_usd / s.invocations END AS DOUBLE) AS cost_per_invocation,
       CAST(CASE WHEN s.spans > 0 THEN CAST(s.errors AS DOUBLE) / s.spans END AS DOUBLE) AS error_rate,
       a.anomalies
FROM s CROSS JOIN i CROSS JOIN a
