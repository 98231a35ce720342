//! Acceptance 2: the OpenTelemetry Python SDK from PyPI, configured through the standard
//! environment variables, exports traces, metrics and logs through fleetpipe to a sink.
//!
//! The test makes its own virtualenv under cargo's target folder on first use, so that
//! `cargo test` needs nothing installed beforehand but python3 with venv and pip.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use support::python::python;
use support::sink::Sink;
use support::{forwarding_to, hex};

const SPANS: usize = 300;
const LOGS: usize = 40;

fn run_agent(python: &Path, endpoint: &str, protocol: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/agent.py");
    let output = Command::new(python)
        .arg(script)
        .args([SPANS.to_string(), LOGS.to_string()])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_SERVICE_NAME", "python-planner")
        .output()
        .expect("run agent.py");
    assert!(
        output.status.success(),
        "agent.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("agent.py prints JSON")
}

/// Scenario: the Python SDK exports through fleetpipe over gRPC, then over HTTP/protobuf.
/// Guarantees: every span arrives (by span id), with the SDK's resource, plus the counter,
/// the histogram and every log record.
#[tokio::test]
async fn python_sdk_exports_through_fleetpipe() {
    let python = python();
    for protocol in ["grpc", "http/protobuf"] {
        let sink = Sink::start().await;
        let fleetpipe = forwarding_to(&sink, true).await;
        let endpoint = match protocol {
            "grpc" => format!("http://{}", fleetpipe.grpc),
            _ => format!("http://{}", fleetpipe.http),
        };
        let report = run_agent(&python, &endpoint, protocol);
        assert_eq!(report["flushed"], true, "{protocol}: the SDK flushed successfully");
        let sent: BTreeSet<String> = report["span_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_str().expect("id").to_owned())
            .collect();
        assert_eq!(sent.len(), SPANS);

        sink.wait_for(Signal::Traces, SPANS, Duration::from_secs(20)).await;
        sink.wait_for(Signal::Logs, LOGS, Duration::from_secs(20)).await;
        sink.wait_for(Signal::Metrics, 2, Duration::from_secs(20)).await;
        let mut received = BTreeSet::new();
        let mut metric_names = BTreeSet::new();
        let mut log_bodies = 0;
        for payload in sink.received() {
            match payload {
                Payload::Traces(r) => {
                    for rs in r.resource_spans {
                        let service = rs
                            .resource
                            .iter()
                            .flat_map(|r| &r.attributes)
                            .find(|kv| kv.key == "service.name")
                            .cloned();
                        assert!(
                            format!("{service:?}").contains("python-planner"),
                            "resource kept: {service:?}"
                        );
                        received.extend(
                            rs.scope_spans
                                .into_iter()
                                .flat_map(|ss| ss.spans)
                                .map(|s| hex(&s.span_id)),
                        );
                    }
                }
                Payload::Metrics(r) => {
                    for metric in r
                        .resource_metrics
                        .into_iter()
                        .flat_map(|rm| rm.scope_metrics)
                        .flat_map(|sm| sm.metrics)
                    {
                        if let Some(Data::Sum(sum)) = &metric.data {
                            assert_eq!(
                                format!("{:?}", sum.data_points[0].value),
                                format!(
                                    "{:?}",
                                    Some(
                                        opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(
                                            SPANS as i64 - 1
                                        )
                                    )
                                )
                            );
                        }
                        metric_names.insert(metric.name);
                    }
                }
                Payload::Logs(r) => {
                    log_bodies += r
                        .resource_logs
                        .iter()
                        .flat_map(|rl| &rl.scope_logs)
                        .flat_map(|sl| &sl.log_records)
                        .filter(|l| format!("{:?}", l.body).contains("tool call"))
                        .count();
                }
            }
        }
        assert_eq!(received, sent, "{protocol}: every span arrived");
        assert!(
            metric_names.contains("agent.tool.calls") && metric_names.contains("agent.tool.latency"),
            "{protocol}: {metric_names:?}"
        );
        assert_eq!(log_bodies, LOGS, "{protocol}: every log record arrived");
    }
}
