//! decode → batch → encode of a 100-span agent-like request: the forwarding hot path without
//! the network. Run with `cargo bench --bench pipeline`.

#[path = "../tests/support/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetpipe::pipeline::{Payload, Signal};
use std::hint::black_box;

fn agent_request() -> bytes::Bytes {
    Payload::Traces(fixtures::agent_trace("bench-agent", 100)).encode_protobuf()
}

fn forward(c: &mut Criterion) {
    let wire = agent_request();
    let mut group = c.benchmark_group("forward_100_spans");
    group.throughput(Throughput::Elements(100));
    group.bench_function("decode", |b| {
        b.iter(|| Payload::decode_protobuf(Signal::Traces, black_box(&wire)).expect("decode"))
    });
    group.throughput(Throughput::Elements(400));
    group.bench_function("decode_batch_encode_4_requests", |b| {
        b.iter(|| {
            let mut batch = Payload::empty(Signal::Traces);
            for _ in 0..4 {
                let mut payload = Payload::decode_protobuf(Signal::Traces, black_box(&wire)).expect("decode");
                payload.reject_invalid();
                batch.merge(payload);
            }
            black_box(batch.encode_protobuf())
        })
    });
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
