-- Scorecards of the governed (registered) integrations: calls (see `calls` in views.sql),
-- errors, error rate, p50/p95/p99 latency per call, the agents and layers that use it, and
-- the model spend of the traces that called it. Percentiles are DataFusion's
-- approx_percentile_cont (a t-digest: exact up to a few hundred values, within about 1 % of
-- the rank beyond).
WITH c AS (
  SELECT * FROM calls WHERE integration_id IS NOT NULL
), spend AS (
  SELECT t.integration_id, CAST(sum(s.cost) AS DOUBLE) AS model_spend_usd
  FROM (SELECT DISTINCT integration_id, trace_id FROM c) t
  JOIN trace_spend s ON s.trace_id = t.trace_id
  GROUP BY t.integration_id
)
SELECT c.integration_id AS id,
       max(c.integration_name) AS name,
       max(c.integration_connection) AS connection,
       CAST(count(*) AS BIGINT) AS calls,
       CAST(sum(CASE WHEN c.status_code = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors,
       CAST(sum(CASE WHEN c.status_code = 'error' THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS error_rate,
       CAST(approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY c.duration_ms) AS DOUBLE) AS p50_ms,
       CAST(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY c.duration_ms) AS DOUBLE) AS p95_ms,
       CAST(approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY c.duration_ms) AS DOUBLE) AS p99_ms,
       array_to_string(array_sort(array_agg(DISTINCT c.agent)), ', ') AS agents,
       array_to_string(array_sort(array_agg(DISTINCT c.layer)), ', ') AS layers,
       max(spend.model_spend_usd) AS model_spend_usd
FROM c
LEFT JOIN spend ON spend.integration_id = c.integration_id
GROUP BY c.integration_id
ORDER BY calls DESC, id
