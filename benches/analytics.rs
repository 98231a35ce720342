//! Analytics costs: decoding enriched 100-span requests and converting them to Arrow rows,
//! against forwarding the same request (receive → gzip for the destination); and one run of the whole detector pack over a 10 s
//! window at 100k spans/s (1M spans) with a history behind it.
//! Run with `cargo bench --bench analytics`.

#[path = "../tests/support/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
mod support;

use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetpipe::analytics::detector::{Detector, Prepared};
use fleetpipe::analytics::window::{ClosedWindow, WindowStore};
use fleetpipe::analytics::{AnalyticsConfig, Rollup, kept_columns};
use fleetpipe::compression::Encoding;
use fleetpipe::enrich::Enrich;
use fleetpipe::export::BodyFormat;
use fleetpipe::otlp::{Payload, Request, Signal};
use fleetpipe::pipeline::Processor;
use fleetpipe::rows::{KeptColumns, WindowBuilder};
use support::enricher;

const WINDOW: Duration = Duration::from_secs(10);
const SPANS_PER_WINDOW: usize = 1_000_000;
/// Spans a window of the conversion bench holds before it is closed: a second at 100k spans/s.
const BENCH_WINDOW_SPANS: usize = 100_000;

fn enriched_request(enrich: &Enrich, agent: usize) -> Request {
    let payload = Payload::Traces(fixtures::agent_trace(&format!("agent-{}", agent % 50), 100));
    let mut request = Request::from_payload(&payload);
    request.rewrite(&mut *enrich.visitor()).expect("valid");
    request
}

fn to_arrow(c: &mut Criterion) {
    let enrich = enricher();
    let request = enriched_request(&enrich, 0);
    let wire = request.parts()[0].clone();
    let format = BodyFormat {
        encoding: Encoding::Gzip,
        level: 1,
        grpc_framed: true,
    };
    let mut group = c.benchmark_group("analytics_100_spans");
    group.throughput(Throughput::Elements(100));
    group.bench_function("forward_receive_gzip", |b| {
        b.iter(|| {
            let (request, _) = Request::from_protobuf(Signal::Traces, black_box(wire.clone()), None).expect("valid");
            black_box(format.encode(&request).expect("encode"))
        })
    });
    // Requests go into one window that is closed and dropped every `BENCH_WINDOW_SPANS`, as
    // at run time: a fresh builder per iteration measured the kernel zeroing new pages.
    // Windows build the columns the shipped detectors read (the default), or all of them.
    let (_, detector_columns) = pack();
    for (name, kept) in [
        ("decode_to_arrow_rows", detector_columns),
        ("decode_to_arrow_rows_all_columns", KeptColumns::ALL),
    ] {
        group.bench_function(name, |b| {
            let mut builder = WindowBuilder::keeping(0, kept);
            b.iter(|| {
                builder.add(black_box(&request)).expect("well-formed");
                if builder.rows >= BENCH_WINDOW_SPANS {
                    black_box(builder.close(0, kept).expect("batches"));
                }
            })
        });
    }
    group.finish();
}

/// A store holding one full window of the `kept` columns and the history of the 30 windows
/// before it.
fn store(enrich: &Enrich, kept: KeptColumns) -> Arc<RwLock<WindowStore>> {
    let window = WINDOW.as_nanos() as i64;
    let mut builder = WindowBuilder::keeping(31 * window, kept);
    for request in 0..SPANS_PER_WINDOW / 100 {
        builder.add(&enriched_request(enrich, request)).expect("well-formed");
    }
    let batches = builder.finish().expect("window");
    let mut store = WindowStore::default();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let rollup = planned_rollup(&runtime);
    // Each earlier window its own rollup, stamped with its own start, as baselines read them.
    for index in 0..30 {
        let mut history_builder = WindowBuilder::keeping(index * window, kept);
        for request in 0..300 {
            history_builder
                .add(&enriched_request(enrich, request))
                .expect("well-formed");
        }
        let closed = ClosedWindow {
            start: index * window,
            end: (index + 1) * window,
            batches: history_builder.finish().expect("history window"),
            sampling_percentage: 100.0,
        };
        if let Some(rows) = runtime.block_on(rollup.of(&closed)) {
            store.history.push_back((closed.start, rows));
        }
    }
    // As the service does it: a window's rollup joins the history when the window closes.
    let current = ClosedWindow {
        start: 31 * window,
        end: 32 * window,
        batches,
        sampling_percentage: 100.0,
    };
    let rows = runtime.block_on(rollup.of(&current));
    store
        .history
        .push_back((current.start, rows.expect("rollup of the current window")));
    store.windows.push_back(current);
    Arc::new(RwLock::new(store))
}

/// The history rollup, as the service plans it.
fn planned_rollup(runtime: &tokio::runtime::Runtime) -> Rollup {
    let config = AnalyticsConfig {
        window: WINDOW,
        ..AnalyticsConfig::default()
    };
    runtime.block_on(Rollup::new(&config)).expect("the rollup plans")
}

/// The shipped detectors, and the columns windows build for them.
fn pack() -> (AnalyticsConfig, KeptColumns) {
    let config = AnalyticsConfig {
        queries: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("queries")),
        ..AnalyticsConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let kept = runtime.block_on(kept_columns(&config)).expect("the pack plans");
    (config, kept)
}

fn detector_pack(c: &mut Criterion) {
    let enrich = enricher();
    let (config, kept) = pack();
    let store = store(&enrich, kept);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let folder = config.queries.expect("the pack's folder");
    let mut prepared = Vec::new();
    let detectors = std::fs::read_dir(folder).expect("queries/").flatten();
    for entry in detectors.filter(|e| e.path().extension().is_some_and(|x| x == "sql")) {
        let text = std::fs::read_to_string(entry.path()).expect("detector");
        let detector = Detector::parse(&entry.path(), &text, WINDOW).expect("header");
        prepared.push(
            runtime
                .block_on(Prepared::new(detector, &store, 1 << 30))
                .expect("plan"),
        );
    }
    let mut group = c.benchmark_group("detector_pack");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SPANS_PER_WINDOW as u64));
    group.bench_function("all_detectors_10s_window_1M_spans", |b| {
        b.iter(|| {
            runtime.block_on(async {
                for detector in &prepared {
                    black_box(detector.run().await.expect("run"));
                }
            })
        })
    });
    for detector in &prepared {
        group.bench_function(format!("one_detector/{}", detector.detector.name), |b| {
            b.iter(|| runtime.block_on(async { black_box(detector.run().await.expect("run")) }))
        });
    }
    // Made once per closed window, before the detectors run.
    let rollup = planned_rollup(&runtime);
    let current = store.read().expect("store").windows.back().cloned().expect("a window");
    group.bench_function("history_rollup_10s_window_1M_spans", |b| {
        b.iter(|| black_box(runtime.block_on(rollup.of(&current)).expect("rollup")))
    });
    group.finish();
}

criterion_group!(benches, to_arrow, detector_pack);
criterion_main!(benches);
