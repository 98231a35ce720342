//! Issue 30, the routing tier: a fleetpipe with the `loadbalancing` exporter in front of
//! three replicas keeps every trace on one replica.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::support::sink::Sink;
use crate::support::{Fleetpipe, fixtures, grpc_send, hex, otlp_exporter, pipeline_config};

/// The trace ids of the spans a sink received, with their span counts.
fn traces_at(sink: &Sink) -> BTreeMap<String, usize> {
    let mut traces = BTreeMap::new();
    for payload in sink.received() {
        if let Payload::Traces(request) = payload {
            for span in request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
            {
                *traces.entry(hex(&span.trace_id)).or_default() += 1;
            }
        }
    }
    traces
}

/// Requests whose spans belong to traces spread over many of them: span `i` of request `r`
/// belongs to trace `(r + i) % traces`, so every trace has spans in many requests.
fn interleaved(requests: usize, spans: usize, traces: usize) -> Vec<ExportTraceServiceRequest> {
    let ids: Vec<Vec<u8>> = (0..traces).map(|t| format!("{t:016}").into_bytes()).collect();
    (0..requests)
        .map(|r| {
            let mut request = fixtures::agent_trace(&format!("agent-{}", r % 5), spans);
            let all = request
                .resource_spans
                .iter_mut()
                .flat_map(|rs| &mut rs.scope_spans)
                .flat_map(|s| &mut s.spans);
            for (i, span) in all.enumerate() {
                span.trace_id = ids[(r + i) % traces].clone();
                span.parent_span_id.clear();
            }
            request
        })
        .collect()
}

/// Three replicas, each forwarding to a sink of its own, and a router in front of them with
/// `extra` settings of its `loadbalancing` exporter.
async fn three_replicas_and_a_router(extra: &str) -> (Vec<Sink>, Vec<Fleetpipe>, Fleetpipe) {
    let mut sinks = Vec::new();
    let mut replicas = Vec::new();
    for n in 0..3 {
        let sink = Sink::start().await;
        let name = format!("otlp/{n}");
        let config = pipeline_config(&otlp_exporter(&name, &sink.endpoint()), &[&name], false);
        replicas.push(Fleetpipe::start(&config).await);
        sinks.push(sink);
    }
    let hostnames: Vec<String> = replicas.iter().map(|r| format!("'{}'", r.grpc)).collect();
    let router_exporter = format!(
        "loadbalancing:\n  routing_key: traceID\n{extra}  protocol:\n    otlp: {{timeout: 2s, compression: gzip, \
         retry_on_failure: {{initial_interval: 100ms, max_interval: 200ms, max_elapsed_time: 60s}}}}\n  \
         resolver:\n    static: {{hostnames: [{}]}}\n",
        hostnames.join(", ")
    );
    let router = Fleetpipe::start(&pipeline_config(&router_exporter, &["loadbalancing"], true)).await;
    (sinks, replicas, router)
}

async fn send(router: &Fleetpipe, requests: &[ExportTraceServiceRequest]) -> usize {
    for request in requests {
        grpc_send(&router.grpc_endpoint(), Payload::Traces(request.clone()), None)
            .await
            .expect("accepted");
    }
    requests.iter().map(|r| Payload::Traces(r.clone()).item_count()).sum()
}

/// Waits up to `seconds` until the sinks hold `total` spans between them; how many they hold.
async fn arrived(sinks: &[Sink], total: usize, seconds: u64) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let count = || sinks.iter().map(|s| s.item_count(Signal::Traces)).sum::<usize>();
    while count() < total && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    count()
}

/// Scenario: the router of three replicas (`reroute_after: 1s`); 30 requests, then one
/// replica is killed (SIGKILL), then 30 more.
/// Guarantees: every span the router acknowledged arrives: those whose keys the dead replica
/// owned go to the others once it has been unreachable for a second.
#[tokio::test]
async fn a_replica_killed_mid_run_loses_no_acknowledged_span() {
    let (sinks, mut replicas, router) = three_replicas_and_a_router("  reroute_after: 1s\n").await;
    let requests = interleaved(60, 20, 40);
    let first = send(&router, &requests[..30]).await;
    assert_eq!(arrived(&sinks, first, 20).await, first);
    drop(replicas.remove(1));
    let second = send(&router, &requests[30..]).await;
    assert_eq!(
        arrived(&sinks, first + second, 30).await,
        first + second,
        "{}",
        router.log()
    );
    assert!(router.log().contains("backend unreachable"), "{}", router.log());
}

/// Scenario: three replicas, each forwarding to a sink of its own, behind a router with
/// `routing_key: traceID` and a static list of them; 60 requests of 20 spans from 5 agents,
/// whose 40 traces each have spans in many requests.
/// Guarantees: every span arrives once; every trace's spans are all at one replica; each
/// replica gets some traces.
#[tokio::test]
async fn every_trace_lands_on_one_replica() {
    let (sinks, _replicas, router) = three_replicas_and_a_router("").await;
    let total = send(&router, &interleaved(60, 20, 40)).await;
    arrived(&sinks, total, 20).await;
    let per_replica: Vec<BTreeMap<String, usize>> = sinks.iter().map(traces_at).collect();
    let arrived: usize = per_replica.iter().flat_map(|t| t.values()).sum();
    assert_eq!(arrived, total, "every span once");
    let mut seen = BTreeSet::new();
    for traces in &per_replica {
        assert!(!traces.is_empty(), "a replica got no trace: {per_replica:?}");
        for trace in traces.keys() {
            assert!(seen.insert(trace.clone()), "trace {trace} is on two replicas");
        }
    }
    assert_eq!(seen.len(), 40);
}

/// Scenario: a router whose backends come from DNS (`resolver.dns`, `localhost` at a replica's
/// port), looked up every 200 ms.
/// Guarantees: the spans arrive at the replica (an address of the name nobody listens at, such
/// as `::1`, hands its batches on after `reroute_after`).
#[tokio::test]
async fn backends_come_from_dns() {
    let sink = Sink::start().await;
    let replica = Fleetpipe::start(&pipeline_config(
        &otlp_exporter("otlp", &sink.endpoint()),
        &["otlp"],
        false,
    ))
    .await;
    let exporter = format!(
        "loadbalancing:\n  reroute_after: 500ms\n  protocol:\n    otlp: {{timeout: 1s, retry_on_failure: {{initial_interval: 100ms, max_interval: 200ms}}}}\n  \
         resolver:\n    dns: {{hostname: localhost, port: {}, interval: 200ms}}\n",
        replica.grpc.port()
    );
    let router = Fleetpipe::start(&pipeline_config(&exporter, &["loadbalancing"], false)).await;
    let total = send(&router, &interleaved(10, 10, 7)).await;
    assert_eq!(
        arrived(std::slice::from_ref(&sink), total, 20).await,
        total,
        "{}",
        router.log()
    );
}
