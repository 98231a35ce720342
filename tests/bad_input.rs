//! Acceptance 3: every kind of bad input gets the status the OTLP specification prescribes,
//! with a message naming the problem, and the next good request still succeeds.

#[path = "bad_input/connections.rs"]
mod connections;
#[path = "bad_input/fuzz.rs"]
mod fuzz;
// The libFuzzer targets' library (fuzz/Cargo.toml), whose items are public there.
#[allow(unreachable_pub)]
#[path = "../fuzz/checks.rs"]
mod fuzz_checks;
#[path = "bad_input/hostile.rs"]
mod hostile;
#[path = "bad_input/security.rs"]
mod security;
mod support;

use std::time::Duration;

use bytes::Bytes;
use fleetpipe::grpc_codec::RawCodec;
use fleetpipe::otlp::{Payload, Signal};
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use support::sink::{Behaviour, Sink};
use support::{Body, Fleetpipe, fixtures, grpc_send, http_client, http_send, otlp_exporter, pipeline_config};
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic_types::StatusExt;

/// fleetpipe with a 1 MiB request limit in front of a working sink.
async fn start_small_limit() -> (Sink, Fleetpipe) {
    let sink = Sink::start().await;
    let config = pipeline_config(&otlp_exporter("otlp", &sink.endpoint()), &["otlp"], false)
        .replace("    protocols:\n", "    max_request_size_mib: 1\n    protocols:\n");
    (sink.clone(), Fleetpipe::start(&config).await)
}

async fn raw_grpc(endpoint: &str, path: &str, body: Bytes, gzip: bool) -> Result<Bytes, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(endpoint.to_owned())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = tonic::client::Grpc::new(channel);
    if gzip {
        client = client.send_compressed(CompressionEncoding::Gzip);
    }
    client.ready().await.expect("ready");
    client
        .unary(
            tonic::Request::new(body),
            PathAndQuery::try_from(path).expect("path"),
            RawCodec,
        )
        .await
        .map(|r| r.into_inner())
}

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A body that inflates to `size` zero bytes: gzip makes 64 MiB of zeros about 64 KiB.
fn zeros(size: usize) -> Bytes {
    Bytes::from(vec![0u8; size])
}

async fn good_request_still_works(sink: &Sink, fleetpipe: &Fleetpipe) {
    let before = sink.item_count(Signal::Traces);
    grpc_send(
        &fleetpipe.grpc_endpoint(),
        Payload::Traces(fixtures::agent_trace("after", 3)),
        None,
    )
    .await
    .expect("good gRPC request");
    let response = http_send(
        fleetpipe.http,
        &Payload::Traces(fixtures::agent_trace("after", 3)),
        Body::Protobuf,
        false,
    )
    .await;
    assert_eq!(response.status(), 200);
    sink.wait_for(Signal::Traces, before + 6, Duration::from_secs(10)).await;
}

/// Scenario: garbage protobuf, an oversized message, a decompression bomb and an unknown
/// method over gRPC.
/// Guarantees: INVALID_ARGUMENT, RESOURCE_EXHAUSTED (twice) and UNIMPLEMENTED; fleetpipe
/// keeps serving.
#[tokio::test]
async fn grpc_bad_input_statuses() {
    let (sink, fleetpipe) = start_small_limit().await;
    let endpoint = fleetpipe.grpc_endpoint();

    let status = raw_grpc(
        &endpoint,
        TRACE_EXPORT,
        Bytes::from_static(&[0x0a, 0xff, 0xff, 0x01]),
        false,
    )
    .await
    .expect_err("garbage");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("malformed traces protobuf"),
        "{}",
        status.message()
    );

    let status = raw_grpc(&endpoint, TRACE_EXPORT, zeros(2 << 20), false)
        .await
        .expect_err("oversized");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    let status = raw_grpc(&endpoint, TRACE_EXPORT, zeros(64 << 20), true)
        .await
        .expect_err("bomb");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    let status = raw_grpc(
        &endpoint,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Nope",
        Bytes::new(),
        false,
    )
    .await
    .expect_err("unknown method");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");

    assert_eq!(
        fleetpipe
            .metric(
                "fleetpipe_receiver_refused_requests_total",
                &["transport=\"grpc\"", "reason=\"invalid\""]
            )
            .await,
        1.0
    );

    // Two messages in a unary call, and a body that says it is not gRPC: both refused
    // (neither half-taken nor guessed at).
    let message = Payload::Traces(fixtures::agent_trace("one", 1)).encode_protobuf();
    let one = [&[0][..], &(message.len() as u32).to_be_bytes(), &message].concat();
    let two = [one.clone(), one.clone()].concat();
    for (content_type, body, problem) in [
        ("application/grpc", two, "a unary call carries one message"),
        ("text/plain", one, "is not application/grpc"),
    ] {
        let (code, message) = h2_post(&fleetpipe, TRACE_EXPORT, content_type, body).await;
        assert_eq!(code.as_deref(), Some("3"), "{content_type}: {message}");
        assert!(message.contains(problem), "{message}");
    }
    assert_eq!(
        sink.item_count(Signal::Traces),
        0,
        "nothing of a refused call is forwarded"
    );
    good_request_still_works(&sink, &fleetpipe).await;
}

/// Posts `body` to fleetpipe's gRPC port over HTTP/2 as a client that frames the call
/// itself; the `grpc-status` and `grpc-message` of the (trailers-only) answer.
async fn h2_post(fleetpipe: &Fleetpipe, path: &str, content_type: &str, body: Vec<u8>) -> (Option<String>, String) {
    fleetpipe::export::install_crypto_provider();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let response = client
        .post(format!("http://{}{path}", fleetpipe.grpc))
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(body)
        .send()
        .await
        .expect("POST");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let message = header("grpc-message").unwrap_or_default();
    (header("grpc-status"), percent_decoded(&message))
}

/// `grpc-message` is percent-encoded.
fn percent_decoded(message: &str) -> String {
    let mut bytes = Vec::new();
    let mut rest = message.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        match (
            first,
            tail.get(..2)
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()),
        ) {
            (b'%', Some(byte)) => {
                bytes.push(byte);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(first);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn post(
    fleetpipe: &Fleetpipe,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = http_client()
        .post(format!("http://{}{path}", fleetpipe.http))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.send().await.expect("POST")
}

/// A `google.rpc.Status` protobuf body.
fn rpc_status(body: &[u8]) -> tonic_types::Status {
    tonic_types::Status::decode(body).expect("google.rpc.Status body")
}

/// Scenario: each bad OTLP/HTTP request the specification names.
/// Guarantees: 400, 413, 404, 405 and 415 with a `google.rpc.Status` body naming the problem.
#[tokio::test]
async fn http_bad_input_statuses() {
    let (sink, fleetpipe) = start_small_limit().await;
    let protobuf = "application/x-protobuf";

    let response = post(&fleetpipe, "/v1/traces", protobuf, None, vec![0x0a, 0xff, 0xff, 0x01]).await;
    assert_eq!(response.status(), 400);
    let status = rpc_status(&response.bytes().await.expect("body"));
    assert_eq!(status.code, Code::InvalidArgument as i32);
    assert!(
        status.message.contains("malformed traces protobuf"),
        "{}",
        status.message
    );

    let response = post(
        &fleetpipe,
        "/v1/logs",
        "application/json",
        None,
        b"{\"resourceLogs\": 7}".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/json");
    let status: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON status");
    assert_eq!(status["code"], 3);
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("malformed logs OTLP/JSON")),
        "{status}"
    );

    // A metric whose data does not decode is refused naming it, not taken without its data.
    let enum_name = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":
        {"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA","dataPoints":[{"count":"1"}]}}]}]}]}"#;
    let response = post(&fleetpipe, "/v1/metrics", "application/json", None, enum_name.to_vec()).await;
    assert_eq!(response.status(), 400);
    let status: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON status");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("at resourceMetrics[0].scopeMetrics[0].metrics[0].histogram: ")
            && message.contains("AGGREGATION_TEMPORALITY_DELTA"),
        "{status}"
    );

    // Found by fuzzing: a string left open at the end of the text panicked the doubles scan.
    let unterminated = br#"{"resourceMetrics":[{"sum":"NaN"#;
    let response = post(
        &fleetpipe,
        "/v1/metrics",
        "application/json",
        None,
        unterminated.to_vec(),
    )
    .await;
    assert_eq!(response.status(), 400);

    let response = post(
        &fleetpipe,
        "/v1/traces",
        protobuf,
        Some("gzip"),
        b"not gzip at all".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 400);

    let response = post(&fleetpipe, "/v1/traces", protobuf, None, vec![0; 2 << 20]).await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        rpc_status(&response.bytes().await.expect("body")).code,
        Code::ResourceExhausted as i32
    );

    let bomb = fleetpipe::compression::gzip(&vec![0; 64 << 20]).expect("gzip");
    let response = post(&fleetpipe, "/v1/traces", protobuf, Some("gzip"), bomb).await;
    assert_eq!(response.status(), 413);
    let status = rpc_status(&response.bytes().await.expect("body"));
    assert!(status.message.contains("after decompression"), "{}", status.message);

    assert_eq!(
        post(&fleetpipe, "/v1/spans", protobuf, None, vec![]).await.status(),
        404
    );
    assert_eq!(
        post(&fleetpipe, "/v1/traces", "text/plain", None, vec![])
            .await
            .status(),
        415
    );
    assert_eq!(
        post(&fleetpipe, "/v1/traces", protobuf, Some("br"), vec![])
            .await
            .status(),
        415
    );
    let response = http_client()
        .get(format!("http://{}/v1/traces", fleetpipe.http))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 405);

    good_request_still_works(&sink, &fleetpipe).await;
}

/// Scenario: a request where 2 of 5 spans have a trace id of the wrong length.
/// Guarantees: the 3 valid spans are forwarded and the response reports 2 rejected spans.
#[tokio::test]
async fn partial_success_reports_rejected_spans() {
    let (sink, fleetpipe) = start_small_limit().await;
    let mut request = fixtures::agent_trace("partial", 5);
    for span in &mut request.resource_spans[0].scope_spans[0].spans[..2] {
        span.trace_id.truncate(8);
    }
    let response = http_send(fleetpipe.http, &Payload::Traces(request), Body::Protobuf, false).await;
    assert_eq!(response.status(), 200);
    let decoded = ExportTraceServiceResponse::decode(response.bytes().await.expect("body")).expect("response");
    let partial = decoded.partial_success.expect("partial_success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(partial.error_message.contains("trace_id"), "{}", partial.error_message);
    sink.wait_for(Signal::Traces, 3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.item_count(Signal::Traces), 3);
}

/// Scenario: the only exporter's destination never answers and its queue blocks when full.
/// Guarantees: once the pipeline is full, clients get 503 with Retry-After over HTTP and
/// UNAVAILABLE with RetryInfo over gRPC, and the refusals are counted.
#[tokio::test]
async fn overload_pushes_back_with_retry_hints() {
    let sink = Sink::start().await;
    sink.set(Behaviour::Stall);
    let exporter = format!(
        "{}  sending_queue: {{queue_size: 1, num_consumers: 1, when_full: block}}\n",
        otlp_exporter("otlp", &sink.endpoint())
    );
    let config =
        pipeline_config(&exporter, &["otlp"], false).replace("exporters: [otlp]}", "exporters: [otlp], queue_size: 1}");
    let fleetpipe = Fleetpipe::start(&config).await;
    let payload = Payload::Traces(fixtures::agent_trace("flood", 2));
    let mut refused = None;
    for _ in 0..20 {
        let response = http_send(fleetpipe.http, &payload, Body::Protobuf, false).await;
        if response.status() == 503 {
            refused = Some(response);
            break;
        }
    }
    let response = refused.expect("503 once the pipeline is full");
    assert_eq!(response.headers()["retry-after"], "1");
    let status = grpc_send(&fleetpipe.grpc_endpoint(), payload, None)
        .await
        .expect_err("full");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.get_details_retry_info().and_then(|r| r.retry_delay),
        Some(Duration::from_secs(1))
    );
    assert!(
        fleetpipe
            .metric("fleetpipe_receiver_refused_items_total", &["reason=\"overloaded\""])
            .await
            >= 4.0
    );
}

/// Scenario: two clients' requests are joined in one batch; one holds a span name that is not
/// UTF-8 (fleetpipe forwards strings as received). The batch goes to a strict decoder (tonic),
/// which refuses it, and to the `file` exporter, which cannot decode it.
/// Guarantees: the batch is sent again in halves, so the good client's spans arrive at both;
/// only the bad request is dropped, counted as refused for good by each.
#[tokio::test]
async fn one_clients_bad_bytes_do_not_cost_another_clients_spans() {
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    let sink = Sink::start().await;
    let output = tempfile::tempdir().expect("tempdir");
    let file = output.path().join("spans.jsonl");
    let exporters = format!(
        "{}file:\n  path: '{}'\n",
        otlp_exporter("otlp", &sink.endpoint()),
        file.display()
    );
    let config = pipeline_config(&exporters, &["otlp", "file"], true).replace("timeout: 50ms", "timeout: 1s");
    let fleetpipe = Fleetpipe::start(&config).await;
    let good = Payload::Traces(fixtures::agent_trace("good", 3));
    let spans = fixtures::traces(
        &[("service.name", "bad")],
        vec![fixtures::span("poison-XY", SpanKind::Client, &[])],
    );
    let mut bad = Payload::Traces(spans).encode_protobuf().to_vec();
    let at = bad.windows(2).position(|w| w == b"XY").expect("the name");
    bad[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
    let endpoint = fleetpipe.grpc_endpoint();
    let (sent_good, sent_bad) = tokio::join!(
        grpc_send(&endpoint, good, None),
        raw_grpc(&endpoint, TRACE_EXPORT, Bytes::from(bad), false)
    );
    sent_good.expect("good request");
    sent_bad.expect("strings are forwarded as received");
    sink.wait_for(Signal::Traces, 3, Duration::from_secs(20)).await;
    let mut failed = 0.0;
    for _ in 0..100 {
        failed = fleetpipe
            .metric("fleetpipe_exporter_send_failed_items_total", &["reason=\"permanent\""])
            .await;
        if failed >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        failed,
        2.0,
        "the bad span counted by each exporter:\n{}",
        fleetpipe.log()
    );
    let written = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(written.contains("good") && !written.contains("poison"), "{written}");
    assert_eq!(sink.item_count(Signal::Traces), 3);
    assert!(
        fleetpipe.log().contains("sending it in two halves"),
        "{}",
        fleetpipe.log()
    );
}
