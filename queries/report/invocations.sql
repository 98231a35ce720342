-- Per agent (section `agents`) and per operating-model layer (section `layers`): invocations
-- (`invoke_agent` spans), their success rate and duration percentiles, inference tokens and
-- cost, per invocation and per successful invocation (all the cost over the invocations that
-- succeeded), and inference and tool calls per invocation.
-- One query for both: its placeholders in braces are filled per section (see `sections()` in
-- src/report/mod.rs): the grouping column, its name in the section, and what the section adds
-- about the other grouping (an agent's layer, a layer's number of agents).
WITH g AS (
  SELECT coalesce({group}, 'unknown') AS g, {other}, CAST(count(*) AS BIGINT) AS spans FROM spans GROUP BY 1
), inv AS (
  SELECT coalesce({group}, 'unknown') AS g,
         CAST(count(*) AS BIGINT) AS invocations,
         CAST(sum(CASE WHEN status_code = 'error' THEN 0 ELSE 1 END) AS BIGINT) AS successes,
         CAST(approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS DOUBLE) AS p50_ms,
         CAST(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS DOUBLE) AS p95_ms,
         CAST(approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) AS DOUBLE) AS p99_ms
  FROM spans WHERE operation = 'invoke_agent' GROUP BY 1
), inf AS (
  SELECT coalesce({group}, 'unknown') AS g,
         CAST(count(*) AS BIGINT) AS inference_calls,
         CAST(coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS BIGINT) AS tokens,
         CAST(sum(cost) AS DOUBLE) AS cost_usd
  FROM inference GROUP BY 1
), tools AS (
  SELECT coalesce({group}, 'unknown') AS g, CAST(count(*) AS BIGINT) AS tool_calls FROM calls GROUP BY 1
)
SELECT g.g AS {name}, g.* EXCLUDE (g),
       coalesce(inv.invocations, 0) AS invocations,
       CAST(inv.successes AS DOUBLE) / inv.invocations AS success_rate,
       inv.p50_ms, inv.p95_ms, inv.p99_ms,
       coalesce(inf.tokens, 0) AS tokens,
       coalesce(inf.cost_usd, 0) AS cost_usd,
       CAST(inf.tokens AS DOUBLE) / inv.invocations AS tokens_per_invocation,
       inf.cost_usd / inv.invocations AS cost_per_invocation,
       inf.cost_usd / nullif(inv.successes, 0) AS cost_per_success,
       CAST(coalesce(inf.inference_calls, 0) AS DOUBLE) / inv.invocations AS inference_calls_per_invocation,
       CAST(coalesce(tools.tool_calls, 0) AS DOUBLE) / inv.invocations AS tool_calls_per_invocation
FROM g
LEFT JOIN inv ON inv.g = g.g
LEFT JOIN inf ON inf.g = g.g
LEFT JOIN tools ON tools.g = g.g
ORDER BY invocations DESC, {name}
