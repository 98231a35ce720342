//! The gRPC names fleetpipe serves and calls are the ones the vendored OTLP protos declare.

use fleetpipe::otlp::Signal;

fn proto(path: &str) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("proto/opentelemetry/proto")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Guarantees: for each signal, `package` + `service` of its collector proto is the gRPC
/// service fleetpipe uses, and that service declares `rpc Export`.
#[test]
fn grpc_service_names_match_the_protos() {
    for (signal, file, service) in [
        (Signal::Traces, "collector/trace/v1/trace_service.proto", "TraceService"),
        (
            Signal::Metrics,
            "collector/metrics/v1/metrics_service.proto",
            "MetricsService",
        ),
        (Signal::Logs, "collector/logs/v1/logs_service.proto", "LogsService"),
    ] {
        let text = proto(file);
        let package = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("package ")?.strip_suffix(';'))
            .expect("package line");
        assert!(
            text.contains(&format!("service {service} {{")),
            "{file} declares {service}"
        );
        assert!(text.contains("rpc Export("), "{file} declares Export");
        assert_eq!(signal.grpc_service(), format!("{package}.{service}"));
    }
}
