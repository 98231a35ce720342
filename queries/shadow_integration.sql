-- name: shadow-integration
-- description: Agents call a tool or host that the integration registry does not list.
-- severity: high
-- every: 1 window
-- window: 1 window
-- key: target, agent
SELECT integration_target AS target,
       agent,
       max(layer) AS "operating_model.layer",
       CAST(count(*) AS DOUBLE) AS value
FROM spans
WHERE integration_registered = false AND integration_target IS NOT NULL
GROUP BY integration_target, agent
