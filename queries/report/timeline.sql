-- Throughput over time: per hour, spans, invocations, errors and the cost of inference.
SELECT date_trunc('hour', start_time) AS hour,
       CAST(count(*) AS BIGINT) AS spans,
       CAST(sum(CASE WHEN operation = 'invoke_agent' THEN 1 ELSE 0 END) AS BIGINT) AS invocations,
       CAST(sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors,
       CAST(coalesce(sum(cost), 0) AS DOUBLE) AS cost_usd
FROM priced_spans
WHERE start_time IS NOT NULL
GROUP BY 1
ORDER BY 1
