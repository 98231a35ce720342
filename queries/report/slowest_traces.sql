-- The slowest traces: from their first span's start to their last span's end.
SELECT trace_id,
       max(agent) AS agent,
       min(start_time) AS started,
       CAST(arrow_cast(max(end_time), 'Int64') - arrow_cast(min(start_time), 'Int64') AS DOUBLE) / 1e6 AS duration_ms,
       CAST(count(*) AS BIGINT) AS spans,
       CAST(sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors
FROM spans
WHERE trace_id IS NOT NULL
GROUP BY trace_id
ORDER BY duration_ms DESC, trace_id
LIMIT 10
