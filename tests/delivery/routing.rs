//! Issue 30, the routing tier: a fleetpipe with the `loadbalancing` exporter in front of
//! three replicas keeps every trace on one replica.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::support::sink::Sink;
use crate::support::{Fleetpipe, fixtures, grpc_send, hex, otlp_exporter, pipeline_config, spans_in};

/// The trace ids of the spans a sink received, with their span counts.
fn traces_at(sink: &Sink) -> BTreeMap<String, usize> {
    let mut traces = BTreeMap::new();
    for span in spans_in(&sink.received()) {
        *traces.entry(hex(&span.trace_id)).or_default() += 1;
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

/// Three replicas, each forwarding to a sink of its own with the exporters `replica(n, sink)`
/// gives (YAML and their names; a plain `otlp` exporter when `None`), and a router in front
/// of them with `extra` settings of its `loadbalancing` exporter.
async fn three_replicas_and_a_router(
    extra: &str,
    replica: impl Fn(usize, &Sink) -> Option<String>,
) -> (Vec<Sink>, Vec<Fleetpipe>, Fleetpipe) {
    let mut sinks = Vec::new();
    let mut replicas = Vec::new();
    for n in 0..3 {
        let sink = Sink::start().await;
        let config = replica(n, &sink).unwrap_or_else(|| plain_replica(&sink));
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

fn plain_replica(sink: &Sink) -> String {
    pipeline_config(&otlp_exporter("otlp", &sink.endpoint()), &["otlp"], false)
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

/// Spans the replicas have accepted between them.
async fn accepted(replicas: &[Fleetpipe]) -> usize {
    let mut total = 0.0;
    for replica in replicas {
        total += replica
            .metric("fleetpipe_receiver_accepted_items_total", &["signal=\"traces\""])
            .await;
    }
    total as usize
}

/// Scenario: the router of three replicas (`reroute_after: 1s`), each with a disk queue
/// (`fsync: always`) in front of its sink; replica 1's sink is down. 30 requests, taken by the
/// replicas; replica 1 is killed (SIGKILL) with its share in its queue; 30 more requests;
/// replica 1 starts again from its configuration and its sink comes up.
/// Guarantees: every span the router acknowledged arrives once: the keys of the dead replica
/// go to the others once it has been unreachable for a second, and what it had queued is
/// delivered after its restart.
#[tokio::test]
async fn a_replica_killed_mid_run_loses_no_acknowledged_span() {
    let queues = tempfile::tempdir().expect("tempdir");
    let replica_config = |n: usize, sink: &Sink| {
        let exporter = format!(
            "{}  sending_queue: {{storage: disk, fsync: always, directory: '{}'}}\n",
            otlp_exporter("otlp", &sink.endpoint()),
            queues.path().join(format!("replica-{n}")).display()
        );
        Some(pipeline_config(&exporter, &["otlp"], false))
    };
    let (sinks, mut replicas, router) = three_replicas_and_a_router("  reroute_after: 1s\n", replica_config).await;
    sinks[1].stop();
    let requests = interleaved(60, 20, 40);
    let first = send(&router, &requests[..30]).await;
    for _ in 0..400 {
        if accepted(&replicas).await >= first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accepted(&replicas).await, first, "the replicas took the first half");
    let queued_at_1 = first - arrived(&sinks, first, 5).await;
    assert!(queued_at_1 > 0, "replica 1 got a share to hold");
    drop(replicas.remove(1)); // SIGKILL, its share in its disk queue.
    let second = send(&router, &requests[30..]).await;
    assert_eq!(
        arrived(&sinks, first + second - queued_at_1, 30).await,
        first + second - queued_at_1,
        "{}",
        router.log()
    );
    assert!(router.log().contains("backend unreachable"), "{}", router.log());
    sinks[1].serve().await;
    let restarted = Fleetpipe::start(&replica_config(1, &sinks[1]).expect("config")).await;
    assert_eq!(
        arrived(&sinks, first + second, 30).await,
        first + second,
        "{}",
        restarted.log()
    );
}

/// Scenario: three replicas, each running the tool-call-loop detector (5 s windows) and
/// forwarding spans and findings to a sink of its own, behind a router by trace id. 15
/// requests, sent just after a window opens, each with three normal calls of a trace of its
/// own and one call of a trace that loops over `jira_search` 15 times.
/// Guarantees: the loop is found exactly once among the replicas, for its trace; no normal
/// trace is reported (split over replicas, the loop's calls would not add up on any of them).
#[tokio::test]
async fn a_loop_spread_over_requests_is_found_once() {
    let folder = tempfile::tempdir().expect("tempdir");
    let queries = folder.path().join("queries");
    std::fs::create_dir_all(&queries).expect("queries folder");
    let detector = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/tool_call_loop.sql");
    std::fs::copy(detector, queries.join("tool_call_loop.sql")).expect("detector");
    let replica_config = |n: usize, sink: &Sink| {
        let exporters = format!(
            "{}analytics:\n  queries: '{}'\n  window: 5s\n  signals_path: '{}'\n",
            otlp_exporter("otlp", &sink.endpoint()),
            queries.display(),
            folder.path().join(format!("signals-{n}")).display()
        );
        Some(pipeline_config(&exporters, &["otlp"], false).replace(
            "traces: {receivers: [otlp], processors: [], exporters: [otlp]}",
            "traces: {receivers: [otlp], processors: [], exporters: [otlp, analytics]}",
        ))
    };
    let (sinks, _replicas, router) = three_replicas_and_a_router("", replica_config).await;
    let looping = fixtures::span("x", SpanKind::Internal, &[]).trace_id;
    let call = |trace: &[u8]| {
        let mut span = fixtures::span(
            "execute_tool jira_search",
            SpanKind::Client,
            &[
                ("gen_ai.operation.name", "execute_tool"),
                ("gen_ai.tool.name", "jira_search"),
            ],
        );
        span.trace_id = trace.to_vec();
        span
    };
    // Windows start at multiples of 5 s: begin half a second into one, so that every call
    // reaches its replica in the same window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    let into_window = (now.as_millis() % 5_000) as u64;
    tokio::time::sleep(Duration::from_millis((5_500 - into_window) % 5_000)).await;
    for _ in 0..15 {
        let normal = fixtures::span("x", SpanKind::Internal, &[]).trace_id;
        let mut spans: Vec<_> = (0..3).map(|_| call(&normal)).collect();
        spans.push(call(&looping));
        let request = fixtures::traces(&[("service.name", "planner-1")], spans);
        grpc_send(&router.grpc_endpoint(), Payload::Traces(request), None)
            .await
            .expect("accepted");
    }
    let found = || -> Vec<String> {
        sinks
            .iter()
            .flat_map(|sink| sink.received())
            .filter_map(|payload| match payload {
                Payload::Logs(request) => Some(request),
                _ => None,
            })
            .flat_map(|request| request.resource_logs)
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records)
            .filter_map(|record| {
                let attribute = |key: &str| {
                    record.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
                        match kv.value.as_ref()?.value.as_ref()? {
                            Value::StringValue(s) => Some(s.clone()),
                            _ => None,
                        }
                    })
                };
                (attribute("fleetpipe.detector")? == "tool-call-loop")
                    .then(|| attribute("trace_id").unwrap_or_default())
            })
            .collect()
    };
    for _ in 0..150 {
        if !found().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A second window's run would repeat a finding still open: wait past it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(found(), [hex(&looping)], "one finding, for the looping trace");
}

/// Scenario: three replicas, each forwarding to a sink of its own, behind a router with
/// `routing_key: traceID` and a static list of them; 60 requests of 20 spans from 5 agents,
/// whose 40 traces each have spans in many requests.
/// Guarantees: every span arrives once; every trace's spans are all at one replica; each
/// replica gets some traces.
#[tokio::test]
async fn every_trace_lands_on_one_replica() {
    let (sinks, _replicas, router) = three_replicas_and_a_router("", |_, _| None).await;
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

/// Scenario: a router whose backends come from a resolver file (read every 200 ms) listing
/// three of four replicas; one span of each of 200 traces; then the fourth is added to the
/// file, and one more span of each of the same traces is sent.
/// Guarantees: about a quarter of the traces move (measured: between 10 % and 40 %), every one
/// of them to the new replica; the others stay where they were.
#[tokio::test]
async fn a_fourth_replica_takes_about_a_quarter_of_the_traces() {
    let folder = tempfile::tempdir().expect("tempdir");
    let list = folder.path().join("backends");
    let mut sinks = Vec::new();
    let mut replicas = Vec::new();
    for _ in 0..4 {
        let sink = Sink::start().await;
        replicas.push(Fleetpipe::start(&plain_replica(&sink)).await);
        sinks.push(sink);
    }
    let addresses: Vec<String> = replicas.iter().map(|r| r.grpc.to_string()).collect();
    std::fs::write(&list, format!("# the replicas\n{}\n", addresses[..3].join("\n"))).expect("list");
    let exporter = format!(
        "loadbalancing:\n  protocol:\n    otlp: {{timeout: 2s}}\n  resolver:\n    file: {{path: '{}', interval: 200ms}}\n",
        list.display()
    );
    let router = Fleetpipe::start(&pipeline_config(&exporter, &["loadbalancing"], true)).await;
    // Ten requests of 20 spans, each span of a trace of its own.
    let mut requests = interleaved(10, 20, 1);
    let spans = requests
        .iter_mut()
        .flat_map(|r| &mut r.resource_spans)
        .flat_map(|r| &mut r.scope_spans)
        .flat_map(|s| &mut s.spans);
    for (t, span) in spans.enumerate() {
        span.trace_id = format!("{t:016}").into_bytes();
    }
    let placed = |sinks: &[Sink]| -> Vec<BTreeMap<String, usize>> { sinks.iter().map(traces_at).collect() };
    let first = send(&router, &requests).await;
    assert_eq!(arrived(&sinks, first, 20).await, first);
    let before = placed(&sinks);
    std::fs::write(&list, addresses.join("\n")).expect("list");
    for _ in 0..100 {
        if router.log().matches("backends set").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = send(&router, &requests).await;
    assert_eq!(arrived(&sinks, first + second, 20).await, first + second);
    let after = placed(&sinks);
    let (mut moved, mut stayed) = (0, 0);
    for (replica, traces) in before.iter().enumerate() {
        for trace in traces.keys() {
            let grown: Vec<usize> = (0..4)
                .filter(|r| after[*r].get(trace).copied().unwrap_or(0) > before[*r].get(trace).copied().unwrap_or(0))
                .collect();
            assert_eq!(grown.len(), 1, "trace {trace} went to one replica: {grown:?}");
            if grown[0] == replica {
                stayed += 1;
            } else {
                assert_eq!(
                    grown[0], 3,
                    "trace {trace} moved to the new replica, not between the others"
                );
                moved += 1;
            }
        }
    }
    assert_eq!(moved + stayed, 200);
    let share = f64::from(moved) / 200.0;
    eprintln!("a fourth replica took {moved} of 200 traces ({:.1} %)", share * 100.0);
    assert!((0.10..=0.40).contains(&share), "{moved} of 200 traces moved");
}
