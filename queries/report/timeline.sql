-- Throughput over time: per hour (UTC), spans, invocations, errors and the cost of inference.
WITH s AS (
  SELECT date_bin(INTERVAL '1 hour', start_time) AS hour,
         CAST(count(*) AS BIGINT) AS spans,
         CAST(sum(CASE WHEN operation = 'invoke_agent' THEN 1 ELSE 0 END) AS BIGINT) AS invocations,
         CAST(sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors
  FROM spans WHERE start_time IS NOT NULL GROUP BY 1
), i AS (
  SELECT date_bin(INTERVAL '1 hour', start_time) AS hour, sum(cost) AS cost FROM inference GROUP BY 1
)
SELECT s.hour, s.spans, s.invocations, s.errors, CAST(coalesce(i.cost, 0) AS DOUBLE) AS cost_usd
FROM s LEFT JOIN i ON i.hour = s.hour
ORDER BY s.hour
