-- The anomaly timeline: each finding (detector and key) of the period, first and last seen.
SELECT detector,
       max(severity) AS severity,
       key,
       max(integration_id) AS integration,
       min(time) AS first_seen,
       max(time) AS last_seen,
       CAST(count(*) AS BIGINT) AS reports
FROM findings
GROUP BY detector, key
ORDER BY first_seen, detector, key
