-- name: shadow-integration
-- description: Agents call a tool or host that the integration registry does not list.
-- severity: high
-- every: 1 window
-- window: 1 window
-- key: target, agent
-- The value is the count of calls, scaled to an estimate of all when the window sampled.
SELECT integration_target AS target,
       agent,
       max(layer) AS "operating_model.layer",
       CAST(count(*) AS DOUBLE) * 100.0 / (SELECT max(sampling_percentage) FROM windows) AS value
FROM spans
WHERE integration_registered = false AND integration_target IS NOT NULL
GROUP BY integration_target, agent
