//! Acceptance 1: what goes in over any transport and encoding comes out at an OTLP sink
//! exactly as sent, every field compared; and through Kafka (issue 30).

#[path = "roundtrip/kafka.rs"]
mod kafka;
mod support;

use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use support::sink::Sink;
use support::{Body, Fleetpipe, fixtures, forwarding_to, grpc_send, hex, http_send, otlp_exporter, pipeline_config};
use tonic::codec::CompressionEncoding;

fn requests() -> Vec<Payload> {
    vec![
        Payload::Traces(fixtures::agent_trace("triage-agent", 25)),
        Payload::Metrics(fixtures::all_metric_kinds("triage-agent")),
        Payload::Logs(fixtures::agent_logs("triage-agent", 7)),
    ]
}

async fn start() -> (Sink, Fleetpipe) {
    let sink = Sink::start().await;
    let fleetpipe = forwarding_to(&sink, false).await;
    (sink, fleetpipe)
}

/// Waits until the sink holds `sent` (one request of each signal) and compares them exactly.
async fn assert_arrived_unchanged(sink: &Sink, sent: &[Payload]) {
    for payload in sent {
        sink.wait_for(payload.signal(), payload.item_count(), Duration::from_secs(10))
            .await;
    }
    let mut received = sink.received();
    received.sort_by_key(Payload::signal);
    assert_eq!(received.len(), sent.len(), "one request out per request in");
    for (got, want) in received.iter().zip(sent) {
        assert_eq!(got, want, "{} changed on the way", want.signal());
    }
}

/// Scenario: one request of each signal over OTLP/gRPC, uncompressed, gzip and zstd.
/// Guarantees: each arrives at the sink unchanged, field for field.
#[tokio::test]
async fn grpc_round_trip_is_exact() {
    for compression in [None, Some(CompressionEncoding::Gzip), Some(CompressionEncoding::Zstd)] {
        let (sink, fleetpipe) = start().await;
        let sent = requests();
        for payload in &sent {
            grpc_send(&fleetpipe.grpc_endpoint(), payload.clone(), compression)
                .await
                .expect("accepted");
        }
        assert_arrived_unchanged(&sink, &sent).await;
    }
}

/// Scenario: the exporter sends uncompressed, zstd at level 3 and gzip at level 9 (fleetpipe
/// frames and compresses the gRPC message itself).
/// Guarantees: the sink decodes each signal's request exactly as it was sent to fleetpipe.
#[tokio::test]
async fn exporter_compression_round_trip_is_exact() {
    for (compression, level) in [("none", ""), ("zstd", "3"), ("gzip", "9")] {
        let sink = Sink::start().await;
        let params = if level.is_empty() {
            String::new()
        } else {
            format!("  compression_params: {{level: {level}}}\n")
        };
        let exporter = format!(
            "{}  compression: {compression}\n{params}",
            otlp_exporter("otlp", &sink.endpoint())
        );
        let fleetpipe = Fleetpipe::start(&pipeline_config(&exporter, &["otlp"], false)).await;
        let sent = requests();
        for payload in &sent {
            grpc_send(&fleetpipe.grpc_endpoint(), payload.clone(), None)
                .await
                .expect("accepted");
        }
        assert_arrived_unchanged(&sink, &sent).await;
    }
}

/// Scenario: the same over OTLP/HTTP with protobuf and JSON bodies, plain and gzip.
/// Guarantees: each arrives unchanged and the response has the request's content type.
#[tokio::test]
async fn http_round_trip_is_exact() {
    for (body, gzip) in [
        (Body::Protobuf, false),
        (Body::Protobuf, true),
        (Body::Json, false),
        (Body::Json, true),
    ] {
        let (sink, fleetpipe) = start().await;
        let sent = requests();
        for payload in &sent {
            let response = http_send(fleetpipe.http, payload, body, gzip).await;
            assert_eq!(response.status(), 200, "{body:?} gzip={gzip}");
            let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
            let want = match body {
                Body::Protobuf => "application/x-protobuf",
                Body::Json => "application/json",
            };
            assert_eq!(content_type, want);
        }
        assert_arrived_unchanged(&sink, &sent).await;
    }
}

/// Scenario: OTLP/JSON written with snake_case keys and integer values as JSON numbers.
/// Guarantees: decoded the same as the lowerCamelCase form.
#[tokio::test]
async fn json_accepts_snake_case_keys() {
    let (sink, fleetpipe) = start().await;
    let body = r#"{"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"string_value":"planner"}}]},
        "scope_spans":[{"spans":[{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174",
        "parent_span_id":"eee19b7ec3c1b173","name":"execute_tool jira_search","kind":3,
        "start_time_unix_nano":1544712660000000000,"end_time_unix_nano":"1544712661000000000",
        "attributes":[{"key":"gen_ai.usage.input_tokens","value":{"int_value":"42"}}],
        "status":{"code":2,"message":"boom"}}]}]}]}"#;
    let response = support::http_client()
        .post(format!("http://{}/v1/traces", fleetpipe.http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    sink.wait_for(Signal::Traces, 1, Duration::from_secs(10)).await;
    let Payload::Traces(request) = &sink.received()[0] else {
        panic!("traces")
    };
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(hex(&span.trace_id), "5b8efff798038103d269b633813fc60c");
    assert_eq!(hex(&span.parent_span_id), "eee19b7ec3c1b173");
    assert_eq!(span.start_time_unix_nano, 1544712660000000000);
    assert_eq!(span.end_time_unix_nano, 1544712661000000000);
    assert_eq!(span.kind, 3);
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(span.attributes[0].key, "gen_ai.usage.input_tokens");
}

/// Scenario: 40 requests of 25 spans through the batch processor.
/// Guarantees: batching merges requests without losing or changing a span.
#[tokio::test]
async fn batching_keeps_every_span() {
    let sink = Sink::start().await;
    let fleetpipe = forwarding_to(&sink, true).await;
    let mut sent_spans = Vec::new();
    for _ in 0..40 {
        let request = fixtures::agent_trace("batcher", 25);
        sent_spans.extend(request.resource_spans[0].scope_spans[0].spans.clone());
        grpc_send(&fleetpipe.grpc_endpoint(), Payload::Traces(request), None)
            .await
            .expect("accepted");
    }
    sink.wait_for(Signal::Traces, 1000, Duration::from_secs(10)).await;
    let received = sink.received();
    assert!(
        received.len() < 40,
        "requests were merged into fewer batches ({})",
        received.len()
    );
    let mut got: Vec<_> = received
        .iter()
        .flat_map(|p| match p {
            Payload::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.clone()))
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    got.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    sent_spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    assert_eq!(got, sent_spans);
}

/// Scenario: the `file` exporter with 1 MB rotation receives requests of about 0.4 MB each.
/// Guarantees: one OTLP/JSON line per request, decoding to exactly what was sent, rotated
/// into `path.1` once the file passed 1 MB.
#[tokio::test]
async fn file_exporter_writes_json_lines_and_rotates() {
    let exporters = "file:\n  path: out/otlp.jsonl\n  rotation: {max_megabytes: 1, max_backups: 2}\n";
    let fleetpipe = Fleetpipe::start(&pipeline_config(exporters, &["file"], false)).await;
    let mut sent = Vec::new();
    for _ in 0..4 {
        let payload = Payload::Traces(fixtures::agent_trace("file-agent", 400));
        grpc_send(&fleetpipe.grpc_endpoint(), payload.clone(), None)
            .await
            .expect("accepted");
        sent.push(payload);
    }
    let out = fleetpipe.dir.path().join("out");
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    // Only lines whose newline is written are whole: the exporter may be halfway through one.
    let whole_lines = |name: &str| read(name).matches('\n').count();
    for _ in 0..100 {
        if whole_lines("otlp.jsonl") + whole_lines("otlp.jsonl.1") == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rotated = read("otlp.jsonl.1");
    let current = read("otlp.jsonl");
    assert!(!rotated.is_empty(), "rotated once past 1 MB");
    // Consumers write concurrently, so lines are in arrival order at the file, not send order.
    let mut written: Vec<Payload> = rotated
        .lines()
        .chain(current.lines())
        .map(|line| Payload::decode_json(Signal::Traces, line.as_bytes()).expect("OTLP/JSON line"))
        .collect();
    let first_span = |p: &Payload| match p {
        Payload::Traces(r) => r.resource_spans[0].scope_spans[0].spans[0].span_id.clone(),
        _ => Vec::new(),
    };
    written.sort_by_key(first_span);
    sent.sort_by_key(first_span);
    assert_eq!(written, sent);
}

/// Scenario: OTLP/JSON metrics whose doubles are written as the proto3 JSON mapping allows:
/// `"NaN"`, `"Infinity"`, `"-Infinity"` and numbers in strings, in every double field.
/// Guarantees: each arrives with its value; none is dropped with its metric.
#[tokio::test]
async fn json_doubles_in_strings_keep_their_values() {
    let (sink, fleetpipe) = start().await;
    let body = r#"{"resourceMetrics":[{"scopeMetrics":[{
        "scope":{"name":"s","attributes":[{"key":"ratio","value":{"doubleValue":"-Infinity"}}]},
        "metrics":[
          {"name":"g","gauge":{"dataPoints":[{"timeUnixNano":"1","asDouble":"NaN"},{"timeUnixNano":"2","asDouble":"2.5"}]}},
          {"name":"h","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"3","sum":"Infinity",
            "min":"-Infinity","max":"1e3","bucketCounts":["1","2"],"explicitBounds":["1.5"],
            "exemplars":[{"asDouble":"NaN"}]}]}},
          {"name":"q","summary":{"dataPoints":[{"count":"1","sum":"7","quantileValues":[{"quantile":"0.5","value":"NaN"}]}]}}
        ]}]}]}"#;
    let response = support::http_client()
        .post(format!("http://{}/v1/metrics", fleetpipe.http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    sink.wait_for(Signal::Metrics, 4, Duration::from_secs(10)).await;
    let Payload::Metrics(request) = &sink.received()[0] else {
        panic!("metrics")
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
    use opentelemetry_proto::tonic::metrics::v1::{exemplar, metric::Data, number_data_point::Value};
    let scope = &request.resource_metrics[0].scope_metrics[0];
    let ratio = scope
        .scope
        .as_ref()
        .and_then(|s| s.attributes[0].value.as_ref())
        .and_then(|v| v.value.clone());
    assert_eq!(ratio, Some(AnyValue::DoubleValue(f64::NEG_INFINITY)));
    let [gauge, histogram, summary] = &scope.metrics[..] else {
        panic!("three metrics: {:?}", scope.metrics)
    };
    let Some(Data::Gauge(gauge)) = &gauge.data else {
        panic!("the gauge kept its data: {gauge:?}")
    };
    assert!(matches!(gauge.data_points[0].value, Some(Value::AsDouble(v)) if v.is_nan()));
    assert_eq!(gauge.data_points[1].value, Some(Value::AsDouble(2.5)));
    let Some(Data::Histogram(histogram)) = &histogram.data else {
        panic!("the histogram kept its data: {histogram:?}")
    };
    let point = &histogram.data_points[0];
    assert_eq!(
        (
            point.sum,
            point.min,
            point.max,
            &point.explicit_bounds[..],
            &point.bucket_counts[..]
        ),
        (
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(1000.0),
            &[1.5][..],
            &[1, 2][..]
        )
    );
    assert!(matches!(point.exemplars[0].value, Some(exemplar::Value::AsDouble(v)) if v.is_nan()));
    let Some(Data::Summary(summary)) = &summary.data else {
        panic!("the summary kept its data: {summary:?}")
    };
    let point = &summary.data_points[0];
    assert_eq!((point.sum, point.quantile_values[0].quantile), (7.0, 0.5));
    assert!(point.quantile_values[0].value.is_nan());
}
