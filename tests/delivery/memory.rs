//! Issue 27's memory budget over the running binary: `service.memory_limit_mib` holds under
//! concurrent inflating requests, a flood against a stalled destination and a large OTLP/JSON
//! body, read from `/proc` while it happens; refused clients get retry hints; memory comes back.

use std::collections::BTreeSet;

use futures::future::join_all;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic_types::StatusExt;

use super::*;
use support::{Body, http_send};

const MIB: usize = 1 << 20;

/// [`pipeline_config`] with `service.memory_limit_mib` and the receiver's request size limit.
fn budgeted(exporter: &str, names: &[&str], batch: bool, limit_mib: usize, request_mib: usize) -> String {
    pipeline_config(exporter, names, batch).replace(
        "    protocols:\n",
        &format!("    max_request_size_mib: {request_mib}\n    protocols:\n"),
    ) + &format!("  memory_limit_mib: {limit_mib}\n")
}

/// One span carrying an attribute of `bytes` repeated letters: a request that gzips to a few
/// tens of KiB and inflates to `bytes`.
fn inflating_request(bytes: usize) -> Payload {
    let mut request = fixtures::agent_trace("bomb-agent", 1);
    let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
    span.attributes.push(fixtures::string("blob", &"a".repeat(bytes)));
    Payload::Traces(request)
}

/// How a client was answered: taken, or refused with a retry hint; anything else fails.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Taken,
    RetryLater,
}

async fn send_over_grpc(fleetpipe: &Fleetpipe, payload: Payload) -> Answer {
    match grpc_send(&fleetpipe.grpc_endpoint(), payload, Some(CompressionEncoding::Gzip)).await {
        Ok(_) => Answer::Taken,
        Err(status) if status.code() == Code::Unavailable => {
            assert!(status.get_details_retry_info().is_some(), "RetryInfo: {status:?}");
            Answer::RetryLater
        }
        Err(status) => panic!("unexpected answer {status:?}"),
    }
}

async fn send_over_http(fleetpipe: &Fleetpipe, payload: Payload) -> Answer {
    let response = http_send(fleetpipe.http, &payload, Body::Protobuf, true).await;
    match response.status().as_u16() {
        200 => Answer::Taken,
        503 => {
            assert!(response.headers().contains_key("retry-after"), "Retry-After");
            Answer::RetryLater
        }
        other => panic!("unexpected answer {other}: {:?}", response.text().await),
    }
}

/// Waits up to a minute for the resident size to come back within `ceiling`; the last reading.
async fn settled_rss(fleetpipe: &Fleetpipe, ceiling: usize) -> usize {
    let mut rss = fleetpipe.rss();
    for _ in 0..120 {
        if rss <= ceiling {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss = fleetpipe.rss();
    }
    rss
}

/// Scenario: `memory_limit_mib: 160`, requests up to 24 MiB; sixteen clients (half gRPC,
/// half HTTP, gzip) each send at once a request inflating to just under 24 MiB.
/// Guarantees: the resident size stays under 160 MiB throughout; the clients fleetpipe could
/// not hold are told to retry (UNAVAILABLE + RetryInfo, 503 + Retry-After), counted as
/// refused for memory; the ones taken arrive; within a minute the resident size is back
/// within twice its resting size.
#[tokio::test]
async fn inflating_requests_stay_within_the_memory_limit() {
    let sink = Sink::start().await;
    let config = budgeted(&otlp_exporter("otlp", &sink.endpoint()), &["otlp"], false, 160, 24);
    let fleetpipe = Fleetpipe::start(&config).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resting = fleetpipe.rss();
    let watch = fleetpipe.watch_rss();
    let payload = inflating_request(24 * MIB - 4096);
    let answers = join_all((0..16).map(|i| {
        let payload = payload.clone();
        let fleetpipe = &fleetpipe;
        async move {
            if i % 2 == 0 {
                send_over_grpc(fleetpipe, payload).await
            } else {
                send_over_http(fleetpipe, payload).await
            }
        }
    }))
    .await;
    let taken = answers.iter().filter(|a| **a == Answer::Taken).count();
    sink.wait_for(Signal::Traces, taken, Duration::from_secs(60)).await;
    let peak = watch.peak();
    assert!(peak < 160 * MIB, "peak resident size {} MiB", peak / MIB);
    assert!((1..16).contains(&taken), "{answers:?}");
    let refused = fleetpipe
        .metric("fleetpipe_receiver_refused_requests_total", &["reason=\"memory\""])
        .await;
    assert_eq!(refused as usize, 16 - taken);
    let rss = settled_rss(&fleetpipe, 2 * resting).await;
    assert!(
        rss <= 2 * resting,
        "a minute later {} MiB against {} MiB resting",
        rss / MIB,
        resting / MIB
    );
}

/// Scenario: `memory_limit_mib: 96` with the defaults otherwise (a 256 MiB memory queue that
/// pushes back when full); the destination stalls while eight clients send 100-span requests
/// as fast as they are taken for five seconds, retrying what is refused; then it answers again.
/// Guarantees: the resident size stays under 96 MiB; clients are told to retry with a hint;
/// every span fleetpipe acknowledged is delivered.
#[tokio::test]
async fn a_flood_against_a_stalled_destination_stays_within_the_memory_limit() {
    let sink = Sink::start().await;
    sink.set(Behaviour::Stall);
    let config = budgeted(&otlp_exporter("otlp", &sink.endpoint()), &["otlp"], true, 96, 64);
    let fleetpipe = Fleetpipe::start(&config).await;
    let watch = fleetpipe.watch_rss();
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let clients = (0..8).map(|_| {
        let fleetpipe = &fleetpipe;
        async move {
            let (mut acknowledged, mut refused) = (Vec::new(), 0);
            while tokio::time::Instant::now() < until {
                let payload = Payload::Traces(fixtures::agent_trace("flood-agent", 100));
                match send_over_grpc(fleetpipe, payload.clone()).await {
                    Answer::Taken => acknowledged.push(payload),
                    Answer::RetryLater => refused += 1,
                }
            }
            (acknowledged, refused)
        }
    });
    let results = join_all(clients).await;
    let peak = watch.peak();
    let refused: usize = results.iter().map(|(_, refused)| refused).sum();
    let acknowledged: Vec<Payload> = results.into_iter().flat_map(|(sent, _)| sent).collect();
    assert!(peak < 96 * MIB, "peak resident size {} MiB", peak / MIB);
    assert!(refused > 0, "clients were pushed back");
    sink.set(Behaviour::Accept);
    let expected: BTreeSet<Vec<u8>> = spans_of(&acknowledged).into_keys().collect();
    sink.wait_for(Signal::Traces, expected.len(), Duration::from_secs(120))
        .await;
    let delivered: BTreeSet<Vec<u8>> = sink
        .received()
        .iter()
        .flat_map(|p| spans_of(std::slice::from_ref(p)).into_keys())
        .collect();
    assert!(delivered.is_superset(&expected), "every acknowledged span arrives");
}

/// Scenario (found on main: each tiny request queued kept its 64 KiB gRPC read buffer
/// alive): the destination is down while 20,000 one-span requests are acknowledged.
/// Guarantees: the resident size grows by far less than 20,000 read buffers (1.25 GiB), and
/// the budget's `queues` part shows what the queue holds.
#[tokio::test]
async fn queued_small_requests_hold_only_their_own_bytes() {
    let sink = Sink::start().await;
    sink.stop();
    let config = budgeted(&otlp_exporter("otlp", &sink.endpoint()), &["otlp"], true, 512, 64);
    let fleetpipe = Fleetpipe::start(&config).await;
    let resting = fleetpipe.rss();
    let payload = Payload::Traces(fixtures::agent_trace("tiny-agent", 1));
    let bytes = payload.encode_protobuf().len();
    let channel = tonic::transport::Channel::from_shared(fleetpipe.grpc_endpoint())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let Payload::Traces(request) = payload else {
        unreachable!()
    };
    let mut client =
        opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::new(channel);
    for _ in 0..20_000 {
        client.export(request.clone()).await.expect("acknowledged");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = fleetpipe.rss().saturating_sub(resting);
    assert!(
        grown < 64 * MIB,
        "grew by {} MiB for {} KiB of spans",
        grown / MIB,
        20_000 * bytes / 1024
    );
    let held = fleetpipe
        .metric("fleetpipe_memory_held_bytes", &["part=\"queues\""])
        .await as usize;
    assert!(
        held >= 20_000 * bytes && held < 2 * 20_000 * bytes,
        "the queue holds {held} bytes for {} bytes of requests",
        20_000 * bytes
    );
}

/// A sink, and fleetpipe forwarding to it with `memory_limit_mib: 256` and requests up to 64 MiB.
async fn within_256_mib() -> (Sink, Fleetpipe) {
    let sink = Sink::start().await;
    let config = budgeted(&otlp_exporter("otlp", &sink.endpoint()), &["otlp"], false, 256, 64);
    let fleetpipe = Fleetpipe::start(&config).await;
    (sink, fleetpipe)
}

/// Adds `count` string attributes to `span`; returns how many it had before.
fn add_attributes(span: &mut opentelemetry_proto::tonic::trace::v1::Span, count: usize) -> usize {
    let base = span.attributes.len();
    for i in 0..count {
        span.attributes
            .push(fixtures::string(&format!("attribute.{i}"), "a value of some length"));
    }
    base
}

/// Scenario (found on main: a 38 MiB OTLP/JSON body took 1.5 GiB to decode, on the async
/// threads): `memory_limit_mib: 256`, a 24 MiB JSON body of 400,000 attributes.
/// Guarantees: it is taken and its attributes arrive, and the resident size stays under the
/// limit while it is decoded.
#[tokio::test]
async fn a_large_json_body_is_decoded_within_the_memory_limit() {
    let (sink, fleetpipe) = within_256_mib().await;
    let mut request = fixtures::agent_trace("json-agent", 1);
    let base = add_attributes(&mut request.resource_spans[0].scope_spans[0].spans[0], 400_000);
    let payload = Payload::Traces(request);
    let body = payload.encode_json();
    assert!(body.len() > 20 * MIB, "{} bytes", body.len());
    let watch = fleetpipe.watch_rss();
    let response = http_send(fleetpipe.http, &payload, Body::Json, false).await;
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text().await);
    sink.wait_for(Signal::Traces, 1, Duration::from_secs(30)).await;
    let peak = watch.peak();
    let Payload::Traces(received) = &sink.received()[0] else {
        panic!("traces")
    };
    let attributes = received.resource_spans[0].scope_spans[0].spans[0].attributes.len();
    assert!(attributes >= base + 400_000, "{attributes} attributes arrived");
    assert!(peak < 256 * MIB, "peak resident size {} MiB", peak / MIB);
}

/// Scenario (found on main: a protobuf request with a few spans of wrong-length ids was decoded
/// whole into objects to leave them out, 821 MiB for one request): `memory_limit_mib: 256`, a
/// 46 MiB protobuf request of one span with 1,000,000 attributes and one span whose trace id
/// is 8 bytes.
/// Guarantees: the bad span is rejected through partial success, the other arrives with every
/// attribute, and the resident size stays under the limit while the request is checked.
#[tokio::test]
async fn a_large_request_with_a_bad_id_is_checked_within_the_memory_limit() {
    let (sink, fleetpipe) = within_256_mib().await;
    let mut request = fixtures::agent_trace("bad-id-agent", 2);
    let spans = &mut request.resource_spans[0].scope_spans[0].spans;
    spans[1].trace_id.truncate(8);
    let base = add_attributes(&mut spans[0], 1_000_000);
    let payload = Payload::Traces(request);
    assert!(payload.encode_protobuf().len() > 40 * MIB);
    let watch = fleetpipe.watch_rss();
    let response = http_send(fleetpipe.http, &payload, Body::Protobuf, false).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.expect("body")).expect("response");
    assert_eq!(answer.partial_success.expect("partial success").rejected_spans, 1);
    sink.wait_for(Signal::Traces, 1, Duration::from_secs(30)).await;
    let peak = watch.peak();
    let Payload::Traces(received) = &sink.received()[0] else {
        panic!("traces")
    };
    let spans = &received.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].attributes.len(), base + 1_000_000);
    assert!(peak < 256 * MIB, "peak resident size {} MiB", peak / MIB);
}
