//! Mutation fuzzing of every parser that reads outside bytes (issue 28, "Fuzzing"): the wire
//! walker on each signal's export request, OTLP/JSON decoding, decompression, the config and
//! registry loaders and the disk queue's record reader in process; the HTTP handler and gRPC
//! message framing over a running fleetpipe.
//!
//! Each target starts from seeds made of the test fixtures and mutates them (bit flips,
//! interesting bytes, inserted, deleted, repeated and spliced ranges) for `FUZZ_SECONDS`
//! (default 2) with the seed `FUZZ_SEED` (default random, printed). A panic saves the input
//! under `target/fuzz-crashes/` and fails the test naming it; a crash found becomes a
//! regression test. What each target checks is in fuzz/checks.rs, shared with the
//! coverage-guided libFuzzer targets that `fuzz/run.sh 60` runs from these seeds (written to
//! `FUZZ_CORPUS` when it is set): see docs/fuzzing.md.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fleetpipe::compression::{self, Encoding};
use fleetpipe::memory::MemoryBudget;
use fleetpipe::otlp::{Payload, Signal};

use crate::fuzz_checks::{self as checks, DiskQueue, Governance, RegistryFile, with_signal};
use crate::support::sink::Sink;
use crate::support::{fixtures, forwarding_to, http_client, otlp_exporter, pipeline_config};
use crate::{good_request_still_works, hostile::RSS_BOUND};

fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse::<f64>().ok());
    Duration::from_secs_f64(seconds.unwrap_or(2.0))
}

fn rng(target: &str) -> fastrand::Rng {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("fuzz {target}: FUZZ_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

/// Bytes that break parsers more often than random ones: varint and length edges, JSON
/// and YAML syntax.
const INTERESTING: &[u8] = b"\x00\x01\x7f\x80\xff\x0a\x12\x1a\"\\{}[]:,-&*!%\n";

/// One mutation of `seed`, taking material from `other` for splices.
fn mutate(rng: &mut fastrand::Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let len = data.len();
        let at = rng.usize(0..=len);
        match rng.u8(0..7) {
            0 if len > 0 => {
                let i = rng.usize(0..len);
                data[i] ^= 1 << rng.u8(0..8);
            }
            1 if len > 0 => {
                let i = rng.usize(0..len);
                data[i] = INTERESTING[rng.usize(0..INTERESTING.len())];
            }
            2 => {
                let bytes: Vec<u8> = (0..rng.usize(1..8)).map(|_| rng.u8(..)).collect();
                data.splice(at..at, bytes);
            }
            3 if at < len => {
                let end = rng.usize(at..=len.min(at + 64));
                data.drain(at..end);
            }
            4 if at < len => {
                let end = rng.usize(at..=len.min(at + 256));
                let copy = data[at..end].repeat(rng.usize(1..4));
                data.splice(at..at, copy);
            }
            5 if !other.is_empty() => {
                let from = rng.usize(0..other.len());
                let end = rng.usize(from..=other.len().min(from + 512));
                data.splice(at..at, other[from..end].iter().copied());
            }
            _ => data.truncate(at),
        }
    }
    data
}

/// A mutation of a seed picked at random, spliced with another.
fn next_input(rng: &mut fastrand::Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let seed = &seeds[rng.usize(0..seeds.len())];
    let other = &seeds[rng.usize(0..seeds.len())];
    mutate(rng, seed, other)
}

/// Runs `target` on mutations of `seeds` for the time budget; a panic saves the input and
/// fails naming it. How many inputs ran.
fn fuzz(name: &str, seeds: &[Vec<u8>], mut target: impl FnMut(&[u8])) -> usize {
    write_corpus(name, seeds);
    let mut rng = rng(name);
    let deadline = Instant::now() + budget();
    let mut runs = 0;
    while Instant::now() < deadline {
        let input = next_input(&mut rng, seeds);
        if std::panic::catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
            let _ = std::fs::create_dir_all(&folder);
            let path = folder.join(format!("{name}-{runs}.bin"));
            let _ = std::fs::write(&path, &input);
            panic!("fuzz {name}: input {runs} panicked; saved as {}", path.display());
        }
        runs += 1;
    }
    eprintln!("fuzz {name}: {runs} inputs in {:?}", budget());
    runs
}

/// Writes the seeds of target `name` into `FUZZ_CORPUS/name/`, when it is set: the libFuzzer
/// targets start from them.
fn write_corpus(name: &str, seeds: &[Vec<u8>]) {
    let Ok(corpus) = std::env::var("FUZZ_CORPUS") else {
        return;
    };
    let folder = PathBuf::from(corpus).join(name);
    std::fs::create_dir_all(&folder).expect("corpus folder");
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(folder.join(format!("seed-{i}")), seed).expect("seed");
    }
}

fn requests() -> Vec<Payload> {
    vec![
        Payload::Traces(fixtures::agent_trace("fuzz-agent", 5)),
        Payload::Metrics(fixtures::all_metric_kinds("fuzz-agent")),
        Payload::Logs(fixtures::agent_logs("fuzz-agent", 3)),
    ]
}

/// Each signal's export request in protobuf.
fn protobuf_seeds() -> Vec<Vec<u8>> {
    requests()
        .iter()
        .map(|p| with_signal(p.signal(), &p.encode_protobuf()))
        .collect()
}

/// Scenario: mutated protobuf export requests of each signal through the wire walker.
/// Guarantees: no panic; the items of a request taken, and those it left out for bad ids,
/// are as many as prost decodes.
#[test]
fn fuzz_wire_walker() {
    fuzz("wire_walker", &protobuf_seeds(), checks::wire_walker);
}

/// Scenario: mutated export requests through a data flow that withholds by layer and
/// integration and removes and hashes attributes, and through the routing split; both read
/// below the records, where the receiver's check does not reach.
/// Guarantees: no panic; a governed request decodes when the input did; the routing shares
/// hold as many records as the input.
#[test]
fn fuzz_governance_and_routing() {
    let governance = Governance::default();
    fuzz("governance_and_routing", &protobuf_seeds(), |input| {
        governance.check(input)
    });
}

/// Scenario: mutated OTLP/JSON of each signal, with snake_case keys and doubles in strings
/// among the seeds.
/// Guarantees: no panic; what is decoded is written and read back with the same items.
#[test]
fn fuzz_otlp_json() {
    let mut seeds: Vec<_> = requests()
        .iter()
        .map(|p| with_signal(p.signal(), &p.encode_json()))
        .collect();
    seeds.push(with_signal(
        Signal::Metrics,
        br#"{"resource_metrics":[{"scope_metrics":[{"metrics":[{"name":"h","histogram":{"data_points":
        [{"sum":"NaN","min":"-Infinity","explicit_bounds":["1.5"],"bucket_counts":["1","2"],
        "exemplars":[{"as_double":"Infinity"}]}]}}]}]}]}"#,
    ));
    fuzz("otlp_json", &seeds, checks::otlp_json);
}

/// Scenario: mutated gzip and zstd bodies.
/// Guarantees: no panic; nothing inflates past the limit.
#[test]
fn fuzz_decompression() {
    let body = requests()[0].encode_protobuf();
    let gzip = compression::gzip(&body).expect("gzip");
    let mut zstd = Vec::new();
    compression::compress(Encoding::Zstd, 3, &[&body], &mut zstd).expect("zstd");
    let seeds = vec![[&[0u8][..], &gzip].concat(), [&[1u8][..], &zstd].concat()];
    let memory = MemoryBudget::unlimited();
    fuzz("decompression", &seeds, |input| checks::decompression(&memory, input));
}

/// Scenario: mutated configurations (the built-in default and a test pipeline).
/// Guarantees: no panic; every refusal names at least one issue.
#[test]
fn fuzz_config_loader() {
    let seeds = vec![
        fleetpipe::config::DEFAULT_CONFIG.as_bytes().to_vec(),
        pipeline_config(&otlp_exporter("otlp", "http://127.0.0.1:1"), &["otlp"], true).into_bytes(),
    ];
    fuzz("config", &seeds, checks::config);
}

/// Scenario: mutated registries (the operating model's `CONFIG.yaml`).
/// Guarantees: no panic.
#[test]
fn fuzz_registry_loader() {
    let seed = include_bytes!("../fixtures/operating-model/CONFIG.yaml").to_vec();
    let registry = RegistryFile::default();
    fuzz("registry", &[seed], |input| registry.check(input));
}

/// Scenario: a disk queue segment holding three records, mutated, then opened and drained.
/// Guarantees: no panic; each record given back is one of those written, or the damaged ones
/// are quarantined.
#[test]
fn fuzz_disk_queue_records() {
    let folder = tempfile::tempdir().expect("tempdir");
    {
        let mut spool = DiskQueue::open(folder.path().to_owned()).expect("open");
        for payload in requests() {
            let body = payload.encode_protobuf();
            spool
                .append(payload.signal(), payload.item_count() as u32, &[body])
                .expect("append");
        }
        spool.sync().expect("sync");
    }
    let seed = std::fs::read(folder.path().join(DiskQueue::SEGMENT)).expect("the queue's first segment");
    let mut queue = DiskQueue::default();
    fuzz("disk_queue", &[seed], |input| queue.check(input));
}

/// Scenario: mutated OTLP/HTTP bodies (protobuf and JSON, plain and gzip) and mutated gRPC
/// messages (the 5-byte frame header included) sent to a running fleetpipe.
/// Guarantees: every request is answered; resident size under 256 MiB; good requests succeed
/// after.
#[tokio::test]
async fn fuzz_http_handler_and_grpc_framing() {
    let sink = Sink::start().await;
    let fleetpipe = forwarding_to(&sink, false).await;
    let watch = fleetpipe.watch_rss();
    let mut seeds = Vec::new();
    for payload in requests() {
        let protobuf = payload.encode_protobuf();
        seeds.push([&[payload.signal() as u8 * 4][..], &protobuf].concat());
        seeds.push([&[payload.signal() as u8 * 4 + 1][..], &payload.encode_json()].concat());
        seeds.push(
            [
                &[payload.signal() as u8 * 4 + 2][..],
                &compression::gzip(&protobuf).expect("gzip"),
            ]
            .concat(),
        );
        let mut framed = vec![payload.signal() as u8 * 4 + 3, 0];
        framed.extend_from_slice(&(protobuf.len() as u32).to_be_bytes());
        framed.extend_from_slice(&protobuf);
        seeds.push(framed);
    }
    let http = http_client();
    let grpc = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    write_corpus("http_and_grpc", &seeds);
    let mut rng = rng("http_and_grpc");
    let deadline = Instant::now() + budget();
    let mut runs = 0;
    while Instant::now() < deadline {
        let input = next_input(&mut rng, &seeds);
        let request = checks::network_request(&http, &grpc, (fleetpipe.grpc, fleetpipe.http), &input);
        let answer = tokio::time::timeout(Duration::from_secs(10), request.send()).await;
        assert!(matches!(answer, Ok(Ok(_))), "input {runs} was not answered: {answer:?}");
        runs += 1;
    }
    eprintln!("fuzz http_and_grpc: {runs} requests in {:?}", budget());
    good_request_still_works(&sink, &fleetpipe).await;
    let peak = watch.peak();
    assert!(peak < RSS_BOUND, "resident size reached {} MiB", peak >> 20);
}
