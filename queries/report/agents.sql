-- Per agent: its layer and its invocations.
SELECT
  agent AS name,
  max(layer) AS layer,
  CAST(sum(CASE WHEN operation = 'invoke_agent' THEN 1 ELSE 0 END) AS BIGINT) AS invocations,
  CAST(count(*) AS BIGINT) AS spans
FROM spans
WHERE agent IS NOT NULL
GROUP BY agent
ORDER BY invocations DESC, name
