//! Acceptance 4, 5 and 7: retries deliver everything exactly once, permanent errors are not
//! retried and are counted, a stalled destination does not hold up another, and SIGTERM
//! drains what was acknowledged; routing across replicas (issue 30).

#[path = "delivery/disk.rs"]
mod disk;
#[path = "delivery/memory.rs"]
mod memory;
#[path = "delivery/routing.rs"]
mod routing;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use support::sink::{Behaviour, Sink};
use support::{
    Fleetpipe, fixtures, forwarding_to, grpc_send, grpc_send_retrying, otlp_exporter, pipeline_config, spans_by_id,
    spans_of,
};
use tonic::Code;

async fn send_traces(fleetpipe: &Fleetpipe, requests: usize, spans: usize) -> Vec<Payload> {
    let mut sent = Vec::new();
    for _ in 0..requests {
        let payload = Payload::Traces(fixtures::agent_trace("retry-agent", spans));
        grpc_send_retrying(&fleetpipe.grpc_endpoint(), payload.clone()).await;
        sent.push(payload);
    }
    sent
}

/// Scenario: the sink answers UNAVAILABLE to every other request.
/// Guarantees: every span still arrives exactly once, unchanged, and retries are counted.
#[tokio::test]
async fn retries_until_delivered() {
    let sink = Sink::start().await;
    sink.set(Behaviour::FailEveryOther(Code::Unavailable));
    let fleetpipe = forwarding_to(&sink, true).await;
    let sent = send_traces(&fleetpipe, 50, 20).await;
    sink.wait_for(Signal::Traces, 1000, Duration::from_secs(30)).await;
    assert_eq!(spans_by_id(&sink), spans_of(&sent));
    assert!(
        sink.attempts() >= 2 * sink.received().len() - 1,
        "half the attempts failed"
    );
    assert!(
        fleetpipe
            .metric("fleetpipe_exporter_retries_total", &["exporter=\"otlp\""])
            .await
            >= 1.0
    );
}

/// Scenario: the sink is down for 10 s while data arrives, then comes back.
/// Guarantees: everything sent meanwhile arrives exactly once, unchanged.
#[tokio::test]
async fn survives_a_destination_outage() {
    let sink = Sink::start().await;
    let fleetpipe = forwarding_to(&sink, true).await;
    sink.stop();
    let started = tokio::time::Instant::now();
    let sent = send_traces(&fleetpipe, 30, 10).await;
    tokio::time::sleep_until(started + Duration::from_secs(10)).await;
    assert_eq!(sink.item_count(Signal::Traces), 0, "the sink was down");
    sink.serve().await;
    sink.wait_for(Signal::Traces, 300, Duration::from_secs(30)).await;
    assert_eq!(spans_by_id(&sink), spans_of(&sent));
}

/// Scenario: the sink answers INVALID_ARGUMENT to everything.
/// Guarantees: no batch is retried, and the dropped spans are counted as permanent failures.
#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let sink = Sink::start().await;
    sink.set(Behaviour::Fail(Code::InvalidArgument));
    let fleetpipe = forwarding_to(&sink, false).await;
    send_traces(&fleetpipe, 5, 4).await;
    let labels = ["exporter=\"otlp\"", "reason=\"permanent\""];
    for _ in 0..200 {
        if fleetpipe
            .metric("fleetpipe_exporter_send_failed_items_total", &labels)
            .await
            >= 20.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fleetpipe
            .metric("fleetpipe_exporter_send_failed_items_total", &labels)
            .await,
        20.0
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.attempts(), 5, "one attempt per batch, no retries");
    assert_eq!(fleetpipe.metric("fleetpipe_exporter_retries_total", &[]).await, 0.0);
    assert!(
        fleetpipe.log().contains("sink told to refuse"),
        "the destination's message is logged"
    );
}

/// Scenario: two exporters; the first destination never answers.
/// Guarantees: the second receives everything while the first is stalled, and the first's
/// overflow is counted as dropped for it alone.
#[tokio::test]
async fn stalled_exporter_does_not_hold_up_another() {
    let stalled = Sink::start().await;
    stalled.set(Behaviour::Stall);
    let healthy = Sink::start().await;
    let exporters = format!(
        "{}  sending_queue: {{queue_size: 5, num_consumers: 1, when_full: drop}}\n{}",
        otlp_exporter("otlp/stalled", &stalled.endpoint()),
        otlp_exporter("otlp/healthy", &healthy.endpoint())
    );
    let fleetpipe = Fleetpipe::start(&pipeline_config(&exporters, &["otlp/stalled", "otlp/healthy"], false)).await;
    let sent = send_traces(&fleetpipe, 200, 10).await;
    healthy.wait_for(Signal::Traces, 2000, Duration::from_secs(20)).await;
    assert_eq!(spans_by_id(&healthy), spans_of(&sent));
    assert_eq!(stalled.item_count(Signal::Traces), 0);
    let dropped = fleetpipe
        .metric(
            "fleetpipe_exporter_dropped_items_total",
            &["exporter=\"otlp/stalled\"", "reason=\"queue_full\""],
        )
        .await;
    assert!(
        dropped >= 1900.0,
        "overflow of the stalled exporter is counted ({dropped})"
    );
    assert_eq!(
        fleetpipe
            .metric("fleetpipe_exporter_dropped_items_total", &["exporter=\"otlp/healthy\""])
            .await,
        0.0
    );
}

/// Scenario: a destination that never answers, a queue of 1,000 batches but 1 MB of bytes.
/// Guarantees: the byte budget fills first; what does not fit is counted as dropped, and
/// what was taken (about 1 MB) is still owed, not lost from the counts.
#[tokio::test]
async fn byte_budget_bounds_a_stalled_queue() {
    let stalled = Sink::start().await;
    stalled.set(Behaviour::Stall);
    let exporter = format!(
        "{}  sending_queue: {{queue_size: 1000, num_consumers: 1, max_megabytes: 1, when_full: drop}}\n",
        otlp_exporter("otlp/stalled", &stalled.endpoint())
    );
    let fleetpipe = Fleetpipe::start(&pipeline_config(&exporter, &["otlp/stalled"], false)).await;
    let sent = send_traces(&fleetpipe, 100, 100).await;
    let bytes: usize = sent.iter().map(|p| p.encode_protobuf().len()).sum();
    assert!(bytes > 2 << 20, "the load is larger than the budget ({bytes} bytes)");
    // The batch step hands requests on asynchronously: wait until the count settles.
    let labels = ["exporter=\"otlp/stalled\"", "reason=\"queue_full\""];
    let mut dropped = -1.0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = fleetpipe
            .metric("fleetpipe_exporter_dropped_items_total", &labels)
            .await;
        if now == dropped {
            break;
        }
        dropped = now;
    }
    let taken = 10_000.0 - dropped;
    let per_span = bytes as f64 / 10_000.0;
    assert!(dropped > 0.0, "overflow past 1 MB is dropped and counted");
    assert!(
        taken * per_span <= 1.2 * (1 << 20) as f64,
        "at most the budget is held: {taken} spans of {per_span:.0} bytes"
    );
}

/// Scenario: SIGTERM while four clients send continuously to a live sink.
/// Guarantees: fleetpipe exits 0, and every span it acknowledged is at the sink.
#[tokio::test]
async fn sigterm_drains_everything_acknowledged() {
    let sink = Sink::start().await;
    let fleetpipe = forwarding_to(&sink, true).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let endpoint = fleetpipe.grpc_endpoint();
        let stop = Arc::clone(&stop);
        clients.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let payload = Payload::Traces(fixtures::agent_trace("load", 20));
                match grpc_send(&endpoint, payload, None).await {
                    Ok(sent) => acknowledged.push(sent),
                    Err(_) => break,
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, log) = fleetpipe.terminate().await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.expect("client task"));
    }
    assert!(status.success(), "exit status {status}\n{log}");
    assert!(
        acknowledged.len() > 10,
        "load was running ({} requests)",
        acknowledged.len()
    );
    let received = spans_by_id(&sink);
    let want = spans_of(&acknowledged);
    let missing = want.keys().filter(|id| !received.contains_key(*id)).count();
    assert_eq!(
        missing,
        0,
        "{missing} acknowledged spans missing of {}\n{log}",
        want.len()
    );
}

/// Eight requests of one span with a 20 MiB attribute each, sent to fleetpipe with a batch step
/// that waits 3 s and has `byte_cap`, towards a destination that takes 64 MiB at most; returns
/// the sink, fleetpipe and what was sent.
async fn send_eight_large_requests(byte_cap: &str) -> (Sink, Fleetpipe, Vec<Payload>) {
    let sink = Sink::start().await;
    // A 20 MiB export can take longer than the usual 2 s on a busy machine; one that times out
    // is sent again (at least once), which would show here as a span arriving twice.
    let config = pipeline_config(&otlp_exporter("otlp", &sink.endpoint()), &["otlp"], true)
        .replace(
            "batch: {send_batch_size: 500, timeout: 50ms}",
            &format!("batch: {{send_batch_size: 500, timeout: 3s{byte_cap}}}"),
        )
        .replace("timeout: 2s", "timeout: 60s");
    let fleetpipe = Fleetpipe::start(&config).await;
    let blob = "x".repeat(20 << 20);
    let mut sent = Vec::new();
    for _ in 0..8 {
        let span = fixtures::span(
            "large",
            opentelemetry_proto::tonic::trace::v1::span::SpanKind::Internal,
            &[("blob", &blob)],
        );
        let payload = Payload::Traces(fixtures::traces(&[("service.name", "large-agent")], vec![span]));
        grpc_send(&fleetpipe.grpc_endpoint(), payload.clone(), None)
            .await
            .expect("accepted");
        sent.push(payload);
    }
    (sink, fleetpipe, sent)
}

/// Scenario: eight requests of one span with a 20 MiB attribute each, sent together through a
/// batch step that would wait 3 s, to a destination that takes messages of at most 64 MiB.
/// Guarantees: the batch step's byte cap keeps every export under the destination's limit (each
/// request goes alone), so all eight spans arrive, none retried or dropped as too large.
#[tokio::test]
async fn batches_stay_under_the_byte_cap() {
    let (sink, fleetpipe, sent) = send_eight_large_requests("").await;
    sink.wait_for(Signal::Traces, 8, Duration::from_secs(30)).await;
    assert_eq!(spans_by_id(&sink), spans_of(&sent));
    let largest = sink
        .received()
        .iter()
        .map(|p| p.encode_protobuf().len())
        .max()
        .unwrap_or(0);
    assert!(largest <= 21 << 20, "each export holds one request ({largest} bytes)");
    assert_eq!(
        fleetpipe
            .metric("fleetpipe_exporter_send_failed_items_total", &[])
            .await,
        0.0
    );
}

/// Scenario: as above, with the byte cap lifted, so the eight requests become one 160 MiB batch.
/// Guarantees: the destination refuses it as too large; fleetpipe sends it again in halves, and
/// halves of those, until each fits: all eight spans arrive, none counted as failed.
#[tokio::test]
async fn an_export_refused_as_too_large_is_sent_in_parts() {
    let (sink, fleetpipe, sent) = send_eight_large_requests(", send_batch_max_bytes: 1000000000").await;
    sink.wait_for(Signal::Traces, 8, Duration::from_secs(60)).await;
    assert_eq!(spans_by_id(&sink), spans_of(&sent));
    assert_eq!(
        fleetpipe
            .metric("fleetpipe_exporter_send_failed_items_total", &[])
            .await,
        0.0
    );
    assert!(
        fleetpipe.log().contains("sending it in two halves"),
        "{}",
        fleetpipe.log()
    );
}
