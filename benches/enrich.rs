//! The cost of registry enrichment on a 100-span agent request, against plain forwarding
//! (receive → encode for the destination) of the same request and of the request with the tags
//! already on it, and its flatness from 10 to 1,000 registered integrations.
//! Run with `cargo bench --bench enrich`.

#[path = "../tests/support/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fleetpipe::compression::Encoding;
use fleetpipe::enrich::{Enrich, EnrichConfig};
use fleetpipe::export::BodyFormat;
use fleetpipe::otlp::{Payload, Request, Signal};
use fleetpipe::pipeline::Processor;
use fleetpipe::registry::{RegistryConfig, RegistryHandle};
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
    let config = RegistryConfig::at(path);
    let metrics = Arc::new(Metrics::new());
    let handle = RegistryHandle::load(&config, &metrics).expect("registry");
    Enrich::new(handle, EnrichConfig::default(), metrics)
}

fn enrichment(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let minimal = Payload::Traces(fixtures::agent_trace("bench-agent", 100));
    bench_request(c, "enrich_100_spans", &minimal, &[10, 100, 1000], dir.path());
    // Spans with the attributes instrumented runtimes write, two in three of them tagged.
    let semconv = Payload::Traces(fixtures::semconv_agent_trace("bench-agent", 100));
    bench_request(c, "enrich_100_semconv_spans", &semconv, &[100], dir.path());
}

/// Plain forwarding of `payload`, of `payload` with the tags on it, and enrichment with
/// registries of `sizes` integrations.
fn bench_request(c: &mut Criterion, name: &str, payload: &Payload, sizes: &[usize], dir: &std::path::Path) {
    let wire = payload.encode_protobuf();
    let tagged = {
        let enrich = enricher(100, dir);
        let mut visitor = enrich.visitor();
        Request::from_protobuf(Signal::Traces, wire.clone(), Some(&mut *visitor))
            .expect("valid")
            .0
            .parts()[0]
            .clone()
    };
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(100));
    let receive = |body: &bytes::Bytes| {
        Request::from_protobuf(Signal::Traces, black_box(body.clone()), None)
            .expect("valid")
            .0
    };
    // Forwarding checks the request and encodes it for the destination, gzipped by default;
    // the `_codec` variants leave compression out.
    for (suffix, encoding) in [("codec", Encoding::Identity), ("gzip", Encoding::Gzip)] {
        let format = BodyFormat {
            encoding,
            level: 1,
            grpc_framed: true,
        };
        let forward = |request: Request| format.encode(&request).expect("encode").len();
        group.bench_function(format!("plain_{suffix}"), |b| {
            b.iter(|| black_box(forward(receive(&wire))))
        });
        // Plain forwarding of a request that already carries the tags: what their bytes cost
        // to check and encode, whoever wrote them. Tagging cannot cost less than this.
        group.bench_function(format!("plain_{suffix}_of_tagged"), |b| {
            b.iter(|| black_box(forward(receive(&tagged))))
        });
        for &size in sizes {
            let enrich = enricher(size, dir);
            group.bench_with_input(
                BenchmarkId::new(format!("enriched_{suffix}"), size),
                &enrich,
                |b, enrich| {
                    b.iter(|| {
                        // As the receiver does it: tagging runs in the walk that checks the request.
                        let body = black_box(wire.clone());
                        let mut visitor = enrich.visitor();
                        let (request, _) =
                            Request::from_protobuf(Signal::Traces, body, Some(&mut *visitor)).expect("valid");
                        black_box(forward(request))
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, enrichment);
criterion_main!(benches);
