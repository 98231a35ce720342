//! Issue 30: an archive in S3-compatible object storage, written by two replicas, read by
//! `fleetpipe report`; the store is `s3s-fs` from crates.io (an S3 server over a folder), a
//! real server speaking the S3 protocol, installed under cargo's target folder on first use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleetpipe::otlp::Payload;

use super::support::{Fleetpipe, fixtures, free_port, grpc_send, installed_tool};
use super::{archiving_config, files_under, span_writers};

const ACCESS_KEY: &str = "fleetpipe-test";
const SECRET_KEY: &str = "fleetpipe-test-secret";

/// An S3 server over `folder`, each of whose subfolders is a bucket.
struct S3Server(Child);

impl S3Server {
    async fn start(address: SocketAddr, folder: &Path) -> S3Server {
        // Owned at once, so that a panic below still ends it (see `Drop`).
        let server = S3Server(
            Command::new(installed_tool("s3s-fs", "s3s-fs@0.14.1", &["binary"]))
                .args(["--host", "127.0.0.1", "--port", &address.port().to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(folder)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start s3s-fs"),
        );
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("s3s-fs did not listen on {address}");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The objects' files under the bucket folder, relative to it.
fn stored(bucket: &Path) -> Vec<String> {
    let mut found: Vec<String> = files_under(bucket, |name| name.ends_with(".parquet"))
        .iter()
        .map(|path| path.strip_prefix(bucket).expect("under").to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}

/// Scenario: two replicas archive into `s3://archive/fleet` while the store is down (their
/// files wait in staging), then the store comes up; each got traces of its own; both stop.
/// Guarantees: every file reaches the bucket under `table=…/date=…/hour=…/` with its writer's
/// instance in its name, nothing stays staged, and `fleetpipe report --archive
/// s3://archive/fleet` (credentials from the environment) counts every span once.
#[tokio::test]
async fn replicas_archive_into_object_storage_that_was_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("archive")).expect("the bucket");
    let local_archive = format!("path: '{}/archive'", dir.path().display());
    // A bucket is a data flow off the host: with a registry, it names its integration.
    let settings = format!(
        "    max_file_age: 1s\n    integration: fleet-telemetry\n    object_store: {{endpoint: 'http://{address}', region: us-east-1, \
         access_key_id: {ACCESS_KEY}, secret_access_key: {SECRET_KEY}, allow_http: true}}"
    );
    let config = archiving_config(dir.path(), &settings).replace(&local_archive, "path: 's3://archive/fleet'");
    let replicas = [Fleetpipe::start(&config).await, Fleetpipe::start(&config).await];
    let traces = [
        fixtures::agent_trace("planner-1", 30),
        fixtures::agent_trace("planner-2", 20),
    ];
    for (replica, trace) in replicas.iter().zip(&traces) {
        grpc_send(&replica.grpc_endpoint(), Payload::Traces(trace.clone()), None)
            .await
            .expect("accepted");
    }
    for _ in 0..300 {
        if replicas.iter().all(|r| r.log().contains("Could not upload")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        replicas[0].log().contains("files wait in staging"),
        "{}",
        replicas[0].log()
    );
    let _server = S3Server::start(address, &store).await;
    let bucket = store.join("archive/fleet");
    for _ in 0..200 {
        if stored(&bucket).iter().filter(|f| f.starts_with("table=spans/")).count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let staged: Vec<PathBuf> = replicas
        .iter()
        .map(|r| r.dir.path().join("fleetpipe-data/archive-staging"))
        .collect();
    for replica in replicas {
        let (status, log) = replica.terminate().await;
        assert!(status.success(), "{log}");
        assert!(log.contains("uploads go through again"), "{log}");
    }
    let files = stored(&bucket);
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    assert_eq!(span_writers(&files).len(), 2, "one writer per file name: {files:?}");
    for folder in staged {
        let left: Vec<_> = stored(&folder);
        assert!(left.is_empty(), "still staged: {left:?}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
        .args(["report", "--archive", "s3://archive/fleet", "--format", "json"])
        .current_dir(dir.path())
        .env_remove("FLEETPIPE_CONFIG")
        .env("AWS_ENDPOINT_URL", format!("http://{address}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .expect("fleetpipe report");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["summary"]["spans"], 50, "{report:#}");
    assert_eq!(report["summary"]["traces"], 2, "{report:#}");
}
