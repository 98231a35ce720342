//! What each fuzz target does with one input and what it checks of the outcome: shared by the
//! mutation fuzzers that `cargo test` runs (tests/bad_input/fuzz.rs) and the coverage-guided
//! libFuzzer targets (fuzz/fuzz_targets/), so both fuzz the same code for the same properties.
//! A broken property panics.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fleetpipe::app::components::Config;
use fleetpipe::compression::{self, Encoding};
use fleetpipe::govern::{Flow, FlowSettings, Origin};
use fleetpipe::memory::{MemoryBudget, Part};
use fleetpipe::otlp::split::{RoutingKey, split};
use fleetpipe::otlp::{Payload, Request, Signal};
use fleetpipe::registry::Registry;
use fleetpipe::spool::{Fsync, Spool, SpoolConfig};

/// A protobuf or JSON seed's first byte picks the signal, so one corpus serves all three.
pub fn with_signal(signal: Signal, body: &[u8]) -> Vec<u8> {
    let mut seed = vec![signal as u8];
    seed.extend_from_slice(body);
    seed
}

fn signal_of(input: &[u8]) -> (Signal, &[u8]) {
    let (first, rest) = input.split_first().unwrap_or((&0, &[]));
    (Signal::ALL[usize::from(*first) % 3], rest)
}

/// The wire walker on an export request: the items taken, and those left out for bad ids,
/// are as many as prost decodes.
pub fn wire_walker(input: &[u8]) {
    let (signal, body) = signal_of(input);
    let walked = Request::from_protobuf(signal, Bytes::copy_from_slice(body), None);
    if let (Ok((request, rejected)), Ok(payload)) = (walked, Payload::decode_protobuf(signal, body)) {
        assert_eq!(request.item_count() + rejected.count as usize, payload.item_count());
    }
}

/// A data flow that withholds by layer and registration and removes and hashes attributes,
/// and the routing split: both read below the records, where the receiver's check does not
/// reach.
pub struct Governance {
    flow: Flow,
}

impl Default for Governance {
    fn default() -> Governance {
        let settings: FlowSettings = serde_yaml::from_str(
            "data_flow: {layers: [execution, unknown], unregistered: exclude}\n\
             redaction: {remove: ['gen_ai.*', '*.id'], hash: ['service.*'], hash_key: '0123456789abcdef'}",
        )
        .expect("settings");
        Governance {
            flow: Flow::new(&settings, "otlp", &Default::default(), None),
        }
    }
}

impl Governance {
    /// A governed request decodes when the input did; the routing shares hold as many records
    /// as the input.
    pub fn check(&self, input: &[u8]) {
        let (signal, body) = signal_of(input);
        let request = Arc::new(Request::from_checked(signal, Bytes::copy_from_slice(body), 1));
        let governed = self.flow.govern(&request, Origin::Pipeline);
        let decoded = Payload::decode_protobuf(signal, body);
        if let (Some(out), Ok(_)) = (governed.request, &decoded) {
            assert!(out.decode().is_ok(), "a governed request does not decode");
        }
        for key in [RoutingKey::TraceId, RoutingKey::Agent] {
            let shares = split(signal, body, key, |k| k.len() % 3);
            if let (Ok(shares), Ok(payload)) = (shares, &decoded) {
                let items: usize = shares.values().map(|s| s.items).sum();
                assert_eq!(items, payload.item_count());
            }
        }
    }
}

/// OTLP/JSON: what is decoded is written and read back with the same items.
pub fn otlp_json(input: &[u8]) {
    let (signal, body) = signal_of(input);
    if let Ok(payload) = Payload::decode_json(signal, body) {
        let again = Payload::decode_json(signal, &payload.encode_json()).expect("fleetpipe reads what it writes");
        assert_eq!(again.item_count(), payload.item_count());
    }
}

/// A gzip (first byte even) or zstd body: nothing inflates past the limit.
pub fn decompression(memory: &Arc<MemoryBudget>, input: &[u8]) {
    let (first, rest) = input.split_first().unwrap_or((&0, &[]));
    let encoding = if first % 2 == 0 { Encoding::Gzip } else { Encoding::Zstd };
    let mut charge = memory.admit(Part::Requests, 0).expect("unlimited");
    let limit = 1 << 20;
    if let Ok(out) = compression::decompress(encoding, Bytes::copy_from_slice(rest), limit, &mut charge) {
        assert!(out.len() <= limit);
    }
}

/// A configuration: every refusal names at least one issue.
pub fn config(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Err(error) = Config::parse(&text, "fuzz.yaml", &|_| None) {
        assert!(!error.to_string().is_empty());
    }
}

/// A registry (`CONFIG.yaml`), loaded from a file as fleetpipe does.
pub struct RegistryFile {
    folder: tempfile::TempDir,
}

impl Default for RegistryFile {
    fn default() -> RegistryFile {
        RegistryFile {
            folder: tempfile::tempdir().expect("tempdir"),
        }
    }
}

impl RegistryFile {
    pub fn check(&self, input: &[u8]) {
        let path = self.folder.path().join("CONFIG.yaml");
        std::fs::write(&path, input).expect("write");
        let _ = Registry::load(&path, &Default::default());
    }
}

/// A disk queue segment, opened and drained: the damaged records are quarantined, never a
/// panic.
pub struct DiskQueue {
    folder: tempfile::TempDir,
    round: usize,
}

impl Default for DiskQueue {
    fn default() -> DiskQueue {
        DiskQueue {
            folder: tempfile::tempdir().expect("tempdir"),
            round: 0,
        }
    }
}

impl DiskQueue {
    /// A queue in `directory`, as fleetpipe's exporters keep one.
    pub fn open(directory: PathBuf) -> Result<Spool, fleetpipe::spool::SpoolError> {
        let config = SpoolConfig {
            directory,
            max_bytes: 64 << 20,
            segment_bytes: 16 << 20,
            fsync: Fsync::Interval(Duration::from_secs(60)),
        };
        Spool::open(config).map(|(spool, _)| spool)
    }

    /// The segment's file name: a queue's first.
    pub const SEGMENT: &str = "00000000000000000000.seg";

    pub fn check(&mut self, input: &[u8]) {
        self.round += 1;
        let directory = self.folder.path().join(format!("round-{}", self.round));
        std::fs::create_dir_all(&directory).expect("folder");
        std::fs::write(directory.join(Self::SEGMENT), input).expect("write");
        if let Ok(mut spool) = Self::open(directory.clone()) {
            while let Ok(Some(record)) = spool.take() {
                let _ = spool.done(record.sequence);
            }
        }
        let _ = std::fs::remove_dir_all(&directory);
    }
}

/// An OTLP request over the network: the input's first byte picks the signal (`/ 4`) and the
/// form (`% 4`: protobuf, JSON, gzip'd protobuf over HTTP, or a gRPC message, frame header
/// included), the rest is the body.
pub fn network_request(
    http: &reqwest::Client,
    grpc: &reqwest::Client,
    addresses: (std::net::SocketAddr, std::net::SocketAddr),
    input: &[u8],
) -> reqwest::RequestBuilder {
    let (grpc_address, http_address) = addresses;
    let (first, body) = input.split_first().unwrap_or((&0, &[]));
    let signal = Signal::ALL[usize::from(first / 4) % 3];
    let request = match first % 4 {
        3 => grpc
            .post(format!("http://{grpc_address}/{}/Export", signal.grpc_service()))
            .header("content-type", "application/grpc")
            .header("te", "trailers"),
        form => {
            let content_type = if form == 1 {
                "application/json"
            } else {
                "application/x-protobuf"
            };
            let request = http
                .post(format!("http://{http_address}{}", signal.http_path()))
                .header("content-type", content_type);
            if form == 2 {
                request.header("content-encoding", "gzip")
            } else {
                request
            }
        }
    };
    request.body(body.to_vec())
}
