#![no_main]
//! fleetpipe's receivers, running in this process on loopback ports, sent each input as an
//! OTLP/HTTP or gRPC request (see `fleetpipe_fuzz::network_request`): every request is
//! answered within 10 s.

use std::net::{SocketAddr, TcpListener};
use std::sync::LazyLock;
use std::time::Duration;

use fleetpipe::app::{Cli, Command};

struct Running {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    grpc: reqwest::Client,
    addresses: (SocketAddr, SocketAddr),
    _folder: tempfile::TempDir,
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// fleetpipe on its own thread: both receivers, every signal to a quiet debug exporter.
fn start() -> Running {
    let addresses = (free_port(), free_port());
    let folder = tempfile::tempdir().expect("tempdir");
    let config = folder.path().join("fleetpipe.yaml");
    let pipeline = "{receivers: [otlp], exporters: [debug]}";
    std::fs::write(
        &config,
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: \"{}\"}}\n      http: {{endpoint: \"{}\"}}\n\
             exporters:\n  debug: {{verbosity: basic}}\n\
             service:\n  pipelines:\n    traces: {pipeline}\n    metrics: {pipeline}\n    logs: {pipeline}\n\
             \x20 telemetry: {{logs: {{level: error}}, metrics: {{endpoint: \"{}\"}}}}\n\
             \x20 health: {{endpoint: \"{}\"}}\n",
            addresses.0,
            addresses.1,
            free_port(),
            free_port(),
        ),
    )
    .expect("config");
    let cli = Cli {
        command: Command::Run { config: Some(config) },
    };
    std::thread::spawn(move || fleetpipe::app::run(cli).expect("fleetpipe runs"));
    while std::net::TcpStream::connect(addresses.1).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    Running {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        http: reqwest::Client::new(),
        grpc: reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .expect("client"),
        addresses,
        _folder: folder,
    }
}

static RUNNING: LazyLock<Running> = LazyLock::new(start);

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let running = &*RUNNING;
    let request = fleetpipe_fuzz::network_request(&running.http, &running.grpc, running.addresses, input);
    let answer = running
        .runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), request.send()).await });
    assert!(matches!(answer, Ok(Ok(_))), "not answered: {answer:?}");
});
