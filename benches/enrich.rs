//! The cost of registry enrichment on a 100-span agent request, against plain forwarding
//! (decode → encode), and its flatness from 10 to 1,000 registered integrations.
//! Run with `cargo bench --bench enrich`.

#[path = "../tests/support/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fleetpipe::enrich::{Enrich, EnrichConfig};
use fleetpipe::pipeline::{Payload, Processor, Signal};
use fleetpipe::registry::{AgentLayers, RegistryConfig, RegistryHandle};
use fleetpipe::telemetry::metrics::Metrics;

/// A registry of `size` integrations; Jira (which the request's tool calls name) is the last.
fn registry_text(size: usize) -> String {
    let mut text = String::from("integrations:\n  generated:\n    tools:\n");
    for i in 0..size - 1 {
        text.push_str(&format!(
            "      - {{id: \"tool-{i}\", name: \"Vendor Product {i}\", connection: \"api\"}}\n"
        ));
    }
    text.push_str("      - {id: \"work-tracking\", name: \"Jira\", connection: \"mcp\"}\n");
    text
}

fn enricher(size: usize, dir: &std::path::Path) -> Enrich {
    let path = dir.join(format!("CONFIG-{size}.yaml"));
    std::fs::write(&path, registry_text(size)).expect("write registry");
    let config = RegistryConfig {
        path,
        reload_interval: std::time::Duration::from_secs(60),
        agents: AgentLayers::default(),
    };
    let metrics = Arc::new(Metrics::new());
    let handle = RegistryHandle::load(&config, &metrics).expect("registry");
    Enrich::new(handle, EnrichConfig::default(), metrics)
}

fn enrichment(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wire = Payload::Traces(fixtures::agent_trace("bench-agent", 100)).encode_protobuf();
    let mut group = c.benchmark_group("enrich_100_spans");
    group.throughput(Throughput::Elements(100));
    // Forwarding decodes, encodes and (by default) gzips for the destination; the `_codec`
    // variants leave compression out to show the cost against decode and encode alone.
    let forward = |payload: Payload, gzip: bool| {
        let bytes = payload.encode_protobuf();
        if gzip {
            fleetpipe::compression::gzip(&bytes).expect("gzip").len()
        } else {
            bytes.len()
        }
    };
    for gzip in [false, true] {
        let suffix = if gzip { "gzip" } else { "codec" };
        group.bench_function(format!("plain_{suffix}"), |b| {
            b.iter(|| {
                black_box(forward(
                    Payload::decode_protobuf(Signal::Traces, black_box(&wire)).expect("decode"),
                    gzip,
                ))
            })
        });
        for size in [10, 100, 1000] {
            let enrich = enricher(size, dir.path());
            group.bench_with_input(
                BenchmarkId::new(format!("enriched_{suffix}"), size),
                &enrich,
                |b, enrich| {
                    b.iter(|| {
                        let mut payload = Payload::decode_protobuf(Signal::Traces, black_box(&wire)).expect("decode");
                        enrich.process(&mut payload);
                        black_box(forward(payload, gzip))
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, enrichment);
criterion_main!(benches);
