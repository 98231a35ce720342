//! Shared helpers for the end-to-end tests: the fleetpipe process, a recording sink, OTLP
//! clients and request builders.
#![allow(dead_code)]

pub(crate) mod fixtures;
pub(crate) mod python;
pub(crate) mod sink;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::collections::BTreeMap;

use fleetpipe::otlp::{Payload, Signal};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

/// An HTTP client; fleetpipe's TLS provider is installed first, as the binary does.
pub(crate) fn http_client() -> reqwest::Client {
    fleetpipe::export::install_crypto_provider();
    reqwest::Client::new()
}

pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The binary `name` of crates.io's `crate_spec` (`name@version`, built with `features`): on
/// the PATH, else installed with cargo under the target folder on first use.
pub(crate) fn installed_tool(name: &str, crate_spec: &str, features: &[&str]) -> PathBuf {
    if let Ok(found) = Command::new("which").arg(name).output()
        && found.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
    }
    // The tests of a binary run at once: one installs, the others wait for it.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALLING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tools");
    let binary = root.join("bin").join(name);
    if !binary.exists() {
        let mut install = Command::new(env!("CARGO"));
        install
            .args(["install", crate_spec, "--locked", "--quiet", "--root"])
            .arg(&root);
        if !features.is_empty() {
            install.args(["--features", &features.join(",")]);
        }
        let status = install.status().expect("cargo install");
        assert!(status.success(), "cargo install {crate_spec} failed");
    }
    binary
}

/// A fleetpipe process started from the built binary with a config written for the test.
pub(crate) struct Fleetpipe {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub health: SocketAddr,
    pub metrics: SocketAddr,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

/// A config with the OTLP receiver on both transports and three pipelines ending in
/// `exporters` (YAML under `exporters:`), listed in `exporter_names`.
pub(crate) fn pipeline_config(exporters: &str, exporter_names: &[&str], batch: bool) -> String {
    let processors = if batch { "[batch]" } else { "[]" };
    let names = exporter_names.join(", ");
    let exporters = indent(exporters, 2);
    format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '@GRPC@'}}
      http: {{endpoint: '@HTTP@'}}
processors:
  batch: {{send_batch_size: 500, timeout: 50ms}}
exporters:
{exporters}
service:
  pipelines:
    traces: {{receivers: [otlp], processors: {processors}, exporters: [{names}]}}
    metrics: {{receivers: [otlp], processors: {processors}, exporters: [{names}]}}
    logs: {{receivers: [otlp], processors: {processors}, exporters: [{names}]}}
  health: {{endpoint: '@HEALTH@'}}
  telemetry:
    metrics: {{endpoint: '@METRICS@'}}
  shutdown_timeout: 20s
"
    )
}

/// An `otlp` exporter to `endpoint` with quick retries, as YAML for [`pipeline_config`].
pub(crate) fn otlp_exporter(name: &str, endpoint: &str) -> String {
    format!(
        "{name}:
  endpoint: {endpoint}
  timeout: 2s
  retry_on_failure: {{initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 60s}}
"
    )
}

/// [`otlp_exporter`] naming the test registry's telemetry destination, `fleet-telemetry`:
/// with a registry, a vendor connection is an integration like any other.
pub(crate) fn registered_otlp_exporter(name: &str, endpoint: &str) -> String {
    format!("{}  integration: fleet-telemetry\n", otlp_exporter(name, endpoint))
}

fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// fleetpipe forwarding every signal to `sink` over OTLP/gRPC, with or without batching.
pub(crate) async fn forwarding_to(sink: &sink::Sink, batch: bool) -> Fleetpipe {
    Fleetpipe::start(&pipeline_config(
        &otlp_exporter("otlp", &sink.endpoint()),
        &["otlp"],
        batch,
    ))
    .await
}

/// Lowercase hex, as OTLP/JSON writes trace and span ids.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Fleetpipe {
    /// Starts fleetpipe with `template`, where `@GRPC@`, `@HTTP@`, `@HEALTH@` and `@METRICS@`
    /// become free loopback addresses, and waits until `/readyz` answers 200.
    pub(crate) async fn start(template: &str) -> Fleetpipe {
        // Free ports are picked then released, so another process may take one first: retry.
        for _ in 0..4 {
            if let Some(fleetpipe) = Fleetpipe::try_start(template).await {
                return fleetpipe;
            }
        }
        panic!("fleetpipe could not bind free ports in 4 attempts");
    }

    async fn try_start(template: &str) -> Option<Fleetpipe> {
        let addr = || SocketAddr::from(([127, 0, 0, 1], free_port()));
        let (grpc, http, health, metrics) = (addr(), addr(), addr(), addr());
        let config = template
            .replace("@GRPC@", &grpc.to_string())
            .replace("@HTTP@", &http.to_string())
            .replace("@HEALTH@", &health.to_string())
            .replace("@METRICS@", &metrics.to_string());
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("fleetpipe.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let log = dir.path().join("fleetpipe.log");
        let child = Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
            .args(["run", "--config"])
            .arg(&config_path)
            .current_dir(dir.path())
            // The config's level (`info` unless the test sets `service.telemetry.logs`).
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn fleetpipe");
        let mut fleetpipe = Fleetpipe {
            child,
            grpc,
            http,
            health,
            metrics,
            dir,
            log,
        };
        fleetpipe.wait_ready().await.then_some(fleetpipe)
    }

    /// `false` when fleetpipe exited because a port was taken.
    async fn wait_ready(&mut self) -> bool {
        let url = format!("http://{}/readyz", self.health);
        for _ in 0..400 {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                if log.contains("Address already in use") {
                    return false;
                }
                panic!("fleetpipe exited with {status} before ready:\n{log}");
            }
            if let Ok(response) = http_client().get(&url).send().await
                && response.status().is_success()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fleetpipe not ready after 20s:\n{}", self.log());
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The metrics endpoint, as `registry suggest --endpoint` takes it.
    pub(crate) fn metrics_endpoint(&self) -> String {
        format!("http://{}", self.metrics)
    }

    /// The `/metrics` text.
    pub(crate) async fn metrics_text(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics);
        http_client()
            .get(url)
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// The sum of the samples of `name` whose labels contain every `label="value"` given.
    pub(crate) async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        metric_sum(&self.metrics_text().await, name, labels)
    }

    /// The process's resident set size in bytes, read from `/proc`.
    pub(crate) fn rss(&self) -> usize {
        resident_bytes(self.child.id())
    }

    /// Samples the resident set size every 2 ms on a thread of its own until the watch is
    /// stopped; the peak seen.
    pub(crate) fn watch_rss(&self) -> RssWatch {
        let pid = self.child.id();
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut peak = 0;
                while !stop.load(Ordering::Relaxed) {
                    peak = peak.max(resident_bytes(pid));
                    std::thread::sleep(Duration::from_millis(2));
                }
                peak
            })
        };
        RssWatch { stop, sampler }
    }

    /// Sends SIGTERM and waits for the exit.
    pub(crate) async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(status.success());
        for _ in 0..1200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fleetpipe did not exit within 60s of SIGTERM:\n{}", self.log());
    }
}

/// A thread sampling a process's resident size; see [`Fleetpipe::watch_rss`].
pub(crate) struct RssWatch {
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<usize>,
}

impl RssWatch {
    /// Stops sampling; the peak resident size seen, in bytes.
    pub(crate) fn peak(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().expect("sampler")
    }
}

fn resident_bytes(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<usize>().ok());
    kib.unwrap_or(0) * 1024
}

impl Drop for Fleetpipe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sends one request over OTLP/gRPC, optionally compressed.
pub(crate) async fn grpc_send(
    endpoint: &str,
    payload: Payload,
    compression: Option<CompressionEncoding>,
) -> Result<Payload, tonic::Status> {
    let channel = Channel::from_shared(endpoint.to_owned())
        .expect("uri")
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    macro_rules! call {
        ($client:ident, $request:expr) => {{
            let mut client = $client::new(channel);
            if let Some(encoding) = compression {
                client = client.send_compressed(encoding);
            }
            client.export($request).await.map(|_| ())
        }};
    }
    let kept = payload.clone();
    match payload {
        Payload::Traces(r) => call!(TraceServiceClient, r)?,
        Payload::Metrics(r) => call!(MetricsServiceClient, r)?,
        Payload::Logs(r) => call!(LogsServiceClient, r)?,
    }
    Ok(kept)
}

/// Sends over gRPC, retrying while fleetpipe answers UNAVAILABLE, as an OTLP client does.
pub(crate) async fn grpc_send_retrying(endpoint: &str, payload: Payload) {
    for _ in 0..600 {
        match grpc_send(endpoint, payload.clone(), None).await {
            Ok(_) => return,
            Err(status) if status.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(status) => panic!("request refused: {status}"),
        }
    }
    panic!("still UNAVAILABLE after 30s");
}

/// OTLP/HTTP body encodings for [`http_send`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body {
    Protobuf,
    Json,
}

/// Posts one request over OTLP/HTTP; returns the response.
pub(crate) async fn http_send(base: SocketAddr, payload: &Payload, body: Body, gzip: bool) -> reqwest::Response {
    let (content_type, bytes) = match body {
        Body::Protobuf => ("application/x-protobuf", payload.encode_protobuf().to_vec()),
        Body::Json => ("application/json", payload.encode_json()),
    };
    let url = format!("http://{base}{}", payload.signal().http_path());
    let mut request = http_client().post(url).header("content-type", content_type);
    request = if gzip {
        request
            .header("content-encoding", "gzip")
            .body(fleetpipe::compression::gzip(&bytes).expect("gzip"))
    } else {
        request.body(bytes)
    };
    request.send().await.expect("POST")
}

/// Every span of the traces requests among `payloads`.
pub(crate) fn spans_in(payloads: &[Payload]) -> impl Iterator<Item = &opentelemetry_proto::tonic::trace::v1::Span> {
    payloads
        .iter()
        .filter_map(|payload| match payload {
            Payload::Traces(request) => Some(request),
            _ => None,
        })
        .flat_map(|request| &request.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
}

/// All three signals' item counts at a sink, for compact assertions.
pub(crate) fn counts(sink: &sink::Sink) -> [usize; 3] {
    Signal::ALL.map(|s| sink.item_count(s))
}

/// Every span the sink received, keyed by span id, failing on duplicates.
pub(crate) fn spans_by_id(sink: &sink::Sink) -> BTreeMap<Vec<u8>, Span> {
    let mut spans = BTreeMap::new();
    for span in spans_in(&sink.received()) {
        assert!(
            spans.insert(span.span_id.clone(), span.clone()).is_none(),
            "a span arrived twice"
        );
    }
    spans
}

/// The spans of `requests`, keyed by span id.
pub(crate) fn spans_of(requests: &[Payload]) -> BTreeMap<Vec<u8>, Span> {
    spans_in(requests)
        .map(|span| (span.span_id.clone(), span.clone()))
        .collect()
}
