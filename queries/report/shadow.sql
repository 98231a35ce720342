-- Calls to tools and hosts the registry does not list, with the agents that made them.
SELECT
  integration_target AS target,
  CAST(count(*) AS BIGINT) AS calls,
  CAST(count(DISTINCT agent) AS BIGINT) AS agents,
  min(start_time) AS first_seen,
  max(start_time) AS last_seen
FROM spans
WHERE integration_registered = false AND integration_target IS NOT NULL
GROUP BY integration_target
ORDER BY calls DESC, target
