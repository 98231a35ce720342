-- Failed calls per integration (registered or shadow) by `error.type` (else the HTTP or gRPC
-- status code, else `unknown`).
SELECT coalesce(integration_id, integration_target) AS integration,
       coalesce(error_type, CAST(http_status_code AS VARCHAR), 'grpc ' || CAST(grpc_status_code AS VARCHAR), 'unknown') AS error_type,
       CAST(count(*) AS BIGINT) AS calls
FROM calls
WHERE status_code = 'error'
GROUP BY 1, 2
ORDER BY calls DESC, integration, error_type
