-- name: silent-agent
-- description: An agent that reported steadily has sent nothing for the last 3 windows.
-- severity: medium
-- every: 1 window
-- window: 3 windows
-- key: agent
WITH recent AS (
    SELECT DISTINCT agent FROM spans WHERE agent IS NOT NULL
), span_start AS (
    SELECT min(window_start) AS start, count(*) AS windows FROM windows
), baseline AS (
    SELECT agent, max(layer) AS layer, count(DISTINCT window_start) AS windows, max(window_start) AS last_seen
    FROM history
    WHERE agent IS NOT NULL AND window_start < (SELECT start FROM span_start)
    GROUP BY agent
)
SELECT b.agent,
       b.layer AS "operating_model.layer",
       0.0 AS value,
       CAST(b.windows AS DOUBLE) AS baseline,
       CAST(b.last_seen AS VARCHAR) AS last_seen
FROM baseline b
WHERE b.windows >= 3
  AND (SELECT windows FROM span_start) >= 3
  AND b.agent NOT IN (SELECT agent FROM recent)
