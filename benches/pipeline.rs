//! The forwarding hot path of a 100-span agent-like request, piece by piece, without the
//! network: receive (framing check and record count), enrichment, batch, encode for the
//! destination; the whole path; and the "limit", a walk over the request's fields that
//! allocates nothing, to show how far the path is from reading its input once; and the whole
//! path on 1 and 2 threads (`cores`), to show how it scales with cores; and OTLP/JSON decoding
//! against the generated serde types (`json_100_spans`).
//! Run with `cargo bench --bench pipeline`.

#[path = "../tests/support/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
mod support;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetpipe::compression::Encoding;
use fleetpipe::export::BodyFormat;
use fleetpipe::otlp::{Payload, Request, Signal, wire};
use fleetpipe::pipeline::Processor;
use support::enricher;

fn agent_request() -> Bytes {
    Payload::Traces(fixtures::agent_trace("bench-agent", 100)).encode_protobuf()
}

fn receive(bytes: &Bytes) -> Request {
    Request::from_protobuf(Signal::Traces, bytes.clone(), None)
        .expect("valid")
        .0
}

fn forward(c: &mut Criterion) {
    let bytes = agent_request();
    let enrich = enricher();
    let plain = BodyFormat {
        encoding: Encoding::Identity,
        level: 0,
        grpc_framed: true,
    };
    let mut group = c.benchmark_group("forward_100_spans");
    group.throughput(Throughput::Elements(100));
    group.bench_function("limit_walk_fields", |b| {
        b.iter(|| black_box(wire::scan(Signal::Traces, black_box(&bytes)).expect("valid")))
    });
    group.bench_function("receive", |b| b.iter(|| black_box(receive(black_box(&bytes)))));
    let received = receive(&bytes);
    group.bench_function("enrich", |b| {
        b.iter_batched(
            || received.clone(),
            |mut request| {
                request.rewrite(&mut *enrich.visitor()).expect("valid");
                request
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("batch_merge", |b| {
        b.iter_batched(
            || (received.clone(), received.clone()),
            |(mut batch, other)| {
                batch.merge(other);
                batch
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("encode_grpc", |b| {
        b.iter(|| black_box(plain.encode(&received).expect("encode")))
    });
    // As the receiver does it: the enrichment runs in the walk that checks the request.
    group.bench_function("whole_path", |b| {
        b.iter(|| {
            let body = black_box(&bytes).clone();
            let (request, _) =
                Request::from_protobuf(Signal::Traces, body, Some(&mut *enrich.visitor())).expect("valid");
            black_box(plain.encode(&request).expect("encode"))
        })
    });
    group.bench_function("decode_prost_for_reference", |b| {
        b.iter(|| black_box(Payload::decode_protobuf(Signal::Traces, black_box(&bytes)).expect("decode")))
    });
    group.finish();
}

/// OTLP/JSON decoding of the same request: fleetpipe's (which first scans the text for
/// snake_case keys, doubles in strings and metric oneofs) against the generated serde types
/// alone, which accept less; the ratio is what the scan costs.
fn json(c: &mut Criterion) {
    let text = Payload::Traces(fixtures::agent_trace("bench-agent", 100)).encode_json();
    let mut group = c.benchmark_group("json_100_spans");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("decode_json", |b| {
        b.iter(|| black_box(Payload::decode_json(Signal::Traces, black_box(&text)).expect("decode")))
    });
    group.bench_function("serde_types_alone", |b| {
        b.iter(|| {
            let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
                serde_json::from_slice(black_box(&text)).expect("decode");
            black_box(request)
        })
    });
    group.finish();
}

/// Requests each thread forwards per iteration of the `cores` group.
const REQUESTS_PER_THREAD: usize = 100;

/// The whole path (enrichment on, gzip) on 1 and 2 threads sharing one enricher, as the
/// runtime's worker threads share it: the elements/s of `threads/2` over `threads/1` is how
/// the pipeline's own work scales with cores, without the network stack, the load generator
/// and the sink competing for them.
fn cores(c: &mut Criterion) {
    let bytes = agent_request();
    let enrich = enricher();
    let gzip = BodyFormat {
        encoding: Encoding::Gzip,
        level: 1,
        grpc_framed: true,
    };
    let forward_one = || {
        let (request, _) =
            Request::from_protobuf(Signal::Traces, bytes.clone(), Some(&mut *enrich.visitor())).expect("valid");
        black_box(gzip.encode(&request).expect("encode"));
    };
    let mut group = c.benchmark_group("cores");
    for threads in [1, 2] {
        group.throughput(Throughput::Elements((threads * REQUESTS_PER_THREAD * 100) as u64));
        group.bench_function(format!("threads/{threads}"), |b| {
            b.iter(|| {
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(|| (0..REQUESTS_PER_THREAD).for_each(|_| forward_one()));
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, forward, json, cores);
criterion_main!(benches);
