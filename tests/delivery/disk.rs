//! Issue 27 over the running binary: what fleetpipe acknowledged survives a `kill -9` in a disk
//! queue and arrives after a restart; records that do not check are quarantined and counted;
//! by default a stalled destination pushes back instead of dropping.

use std::collections::BTreeSet;
use std::path::Path;

use super::*;

/// fleetpipe with one `otlp` exporter to `sink` whose queue is on disk in `directory`.
fn disk_queue_config(sink: &Sink, directory: &Path, fsync: &str) -> String {
    let exporter = format!(
        "{}  sending_queue: {{storage: disk, directory: '{}', fsync: {fsync}, num_consumers: 2}}\n",
        otlp_exporter("otlp", &sink.endpoint()),
        directory.display()
    );
    pipeline_config(&exporter, &["otlp"], false)
}

/// Every span id the sink received, and how many arrived more than once.
fn received_ids(sink: &Sink) -> (BTreeSet<Vec<u8>>, usize) {
    let mut ids = BTreeSet::new();
    let mut duplicates = 0;
    for payload in sink.received() {
        let Payload::Traces(request) = payload else { continue };
        for span in request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
        {
            duplicates += usize::from(!ids.insert(span.span_id.clone()));
        }
    }
    (ids, duplicates)
}

/// Scenario: the destination is down; a client sends 40 requests of 25 spans and each is
/// acknowledged; fleetpipe is killed with SIGKILL; it starts again and the destination comes up.
/// Guarantees: with `fsync: always`, every acknowledged span arrives (duplicates allowed).
#[tokio::test]
async fn acknowledged_spans_survive_kill_9_in_a_disk_queue() {
    let sink = Sink::start().await;
    sink.stop();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = disk_queue_config(&sink, &dir.path().join("queue"), "always");
    let fleetpipe = Fleetpipe::start(&config).await;
    let sent = send_traces(&fleetpipe, 40, 25).await;
    drop(fleetpipe); // SIGKILL: nothing is flushed or drained.
    sink.serve().await;
    let fleetpipe = Fleetpipe::start(&config).await;
    sink.wait_for(Signal::Traces, 1000, Duration::from_secs(30)).await;
    let (ids, duplicates) = received_ids(&sink);
    let expected: BTreeSet<Vec<u8>> = spans_of(&sent).into_keys().collect();
    assert_eq!(
        ids, expected,
        "every acknowledged span, and only those ({duplicates} duplicates)"
    );
    assert!(
        fleetpipe
            .log()
            .contains("Disk queue: delivering what the last run left"),
        "{}",
        fleetpipe.log()
    );
}

/// The records of a segment file: (offset, total length) of each frame.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        frames.push((at, 8 + length));
        at += 8 + length;
    }
    frames
}

/// Scenario: ten requests wait in a disk queue while the destination is down; fleetpipe is
/// killed; a byte of the third record is flipped and the last record is cut in half.
/// Guarantees: fleetpipe starts, delivers the eight intact requests' spans exactly, and
/// quarantines and counts the two others.
#[tokio::test]
async fn corrupt_and_torn_records_are_quarantined_and_the_rest_delivered() {
    let sink = Sink::start().await;
    sink.stop();
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = dir.path().join("queue");
    let config = disk_queue_config(&sink, &queue, "always");
    let fleetpipe = Fleetpipe::start(&config).await;
    let sent = send_traces(&fleetpipe, 10, 5).await;
    drop(fleetpipe);
    let segment = std::fs::read_dir(&queue)
        .expect("queue folder")
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0) && p.extension().is_some_and(|x| x == "seg"))
        .expect("a segment with the records");
    let mut bytes = std::fs::read(&segment).expect("segment");
    let records = frames(&bytes);
    assert_eq!(records.len(), 10);
    let (third, _) = records[2];
    bytes[third + 20] ^= 0xff;
    let (last, length) = records[9];
    bytes.truncate(last + length / 2);
    std::fs::write(&segment, bytes).expect("corrupted");
    sink.serve().await;
    let fleetpipe = Fleetpipe::start(&config).await;
    sink.wait_for(Signal::Traces, 40, Duration::from_secs(30)).await;
    let intact: Vec<Payload> = sent
        .iter()
        .enumerate()
        .filter(|(i, _)| ![2, 9].contains(i))
        .map(|(_, p)| p.clone())
        .collect();
    assert_eq!(spans_by_id(&sink), spans_of(&intact));
    let quarantined = fleetpipe
        .metric("fleetpipe_disk_queue_quarantined_records_total", &["exporter=\"otlp\""])
        .await;
    assert_eq!(quarantined, 2.0);
    assert_eq!(
        std::fs::read_dir(queue.join("quarantine"))
            .expect("quarantine/")
            .count(),
        2
    );
}

/// Sends `requests` requests of `spans` spans from a task, each retried while fleetpipe pushes
/// back; the task returns what it sent.
fn send_while_pushed_back(
    fleetpipe: &Fleetpipe,
    requests: usize,
    spans: usize,
) -> tokio::task::JoinHandle<Vec<Payload>> {
    let endpoint = fleetpipe.grpc_endpoint();
    tokio::spawn(async move {
        let mut sent = Vec::new();
        for _ in 0..requests {
            let payload = Payload::Traces(fixtures::agent_trace("pushed-back", spans));
            grpc_send_retrying(&endpoint, payload.clone()).await;
            sent.push(payload);
        }
        sent
    })
}

/// Refused requests of `reason`, once there are any (or after 30 s).
async fn refusals(fleetpipe: &Fleetpipe, reason: &str) -> f64 {
    let label = format!("reason=\"{reason}\"");
    let labels = [label.as_str()];
    for _ in 0..300 {
        if fleetpipe
            .metric("fleetpipe_receiver_refused_requests_total", &labels)
            .await
            > 0.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleetpipe
        .metric("fleetpipe_receiver_refused_requests_total", &labels)
        .await
}

/// Waits until every span of `sent` has arrived (once or more), then asserts the sink got those
/// spans and no other, and that fleetpipe dropped nothing.
async fn assert_every_span_arrives(sink: &Sink, fleetpipe: &Fleetpipe, sent: &[Payload]) {
    let expected: BTreeSet<Vec<u8>> = spans_of(sent).into_keys().collect();
    for _ in 0..600 {
        if received_ids(sink).0.len() >= expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(received_ids(sink).0, expected);
    assert_eq!(
        fleetpipe.metric("fleetpipe_exporter_dropped_items_total", &[]).await,
        0.0
    );
}

/// Scenario: default queue settings, a destination that stalls while a client sends 600
/// requests (more than the pipeline and exporter queues hold), then recovers.
/// Guarantees: the client is pushed back (UNAVAILABLE, retried) instead of fleetpipe dropping
/// what it acknowledged: every span arrives once and nothing is counted as dropped.
#[tokio::test]
async fn a_stalled_destination_pushes_back_by_default() {
    let sink = Sink::start().await;
    sink.set(Behaviour::Stall);
    let exporter = format!(
        "{}  sending_queue: {{queue_size: 5, num_consumers: 1}}\n",
        otlp_exporter("otlp", &sink.endpoint())
    );
    let fleetpipe = Fleetpipe::start(&pipeline_config(&exporter, &["otlp"], false)).await;
    let sending = send_while_pushed_back(&fleetpipe, 600, 5);
    let refused = refusals(&fleetpipe, "overloaded").await;
    assert!(refused > 0.0, "clients are pushed back while the destination stalls");
    sink.set(Behaviour::Accept);
    let sent = sending.await.expect("sender");
    assert_every_span_arrives(&sink, &fleetpipe, &sent).await;
    assert_eq!(received_ids(&sink).1, 0, "each span once");
}

/// A stalled destination, and fleetpipe sending to it through a disk queue of 1 MB (in the
/// returned folder's `queue/`) with one consumer and `settings` more.
async fn stalled_behind_a_one_megabyte_disk_queue(settings: &str) -> (Sink, tempfile::TempDir, Fleetpipe) {
    let sink = Sink::start().await;
    sink.set(Behaviour::Stall);
    let dir = tempfile::tempdir().expect("tempdir");
    let exporter = format!(
        "{}  sending_queue: {{storage: disk, directory: '{}', max_megabytes: 1, num_consumers: 1{settings}}}\n",
        otlp_exporter("otlp", &sink.endpoint()),
        dir.path().join("queue").display()
    );
    let fleetpipe = Fleetpipe::start(&pipeline_config(&exporter, &["otlp"], false)).await;
    (sink, dir, fleetpipe)
}

/// Scenario: a disk queue capped at 1 MB, a destination that stalls while a client sends
/// about 3 MB, then recovers.
/// Guarantees: the full disk queue pushes back (clients are told to retry) instead of failing
/// or dropping, and once the destination recovers every acknowledged span arrives (a request
/// whose client was told to retry while it waited for room may arrive twice).
#[tokio::test]
async fn a_full_disk_queue_pushes_back_and_recovers() {
    let (sink, dir, fleetpipe) = stalled_behind_a_one_megabyte_disk_queue("").await;
    let sending = send_while_pushed_back(&fleetpipe, 300, 40);
    assert!(refusals(&fleetpipe, "overloaded").await > 0.0);
    let on_disk: u64 = std::fs::read_dir(dir.path().join("queue"))
        .expect("queue folder")
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(
        on_disk <= 1 << 20,
        "the disk queue holds at most its cap ({on_disk} bytes)"
    );
    // The request that found the queue full waited for room, then its client was told to retry.
    assert_eq!(refusals(&fleetpipe, "not_queued").await, 1.0);
    sink.set(Behaviour::Accept);
    let sent = sending.await.expect("sender");
    // A client told to retry while its request waited for room sends it again: spans may
    // arrive twice.
    assert_every_span_arrives(&sink, &fleetpipe, &sent).await;
}

/// Scenario: a disk queue capped at 1 MB with `when_full: drop_oldest`, a destination that
/// stalls while a client sends about 3 MB, then recovers.
/// Guarantees: no client is pushed back; the oldest batches waiting are dropped and counted as
/// `oldest_dropped`; once the destination recovers the newest batch arrives, and every span
/// sent either arrived (once) or was counted as dropped.
#[tokio::test]
async fn a_full_disk_queue_told_to_drop_the_oldest_keeps_the_newest() {
    let (sink, _dir, fleetpipe) = stalled_behind_a_one_megabyte_disk_queue(", when_full: drop_oldest").await;
    let sent = send_while_pushed_back(&fleetpipe, 300, 40).await.expect("sender");
    assert_eq!(
        fleetpipe.metric("fleetpipe_receiver_refused_requests_total", &[]).await,
        0.0,
        "nobody is pushed back"
    );
    let dropped = fleetpipe
        .metric("fleetpipe_exporter_dropped_items_total", &["reason=\"oldest_dropped\""])
        .await as usize;
    assert!(dropped > 0, "the oldest batches were dropped");
    sink.set(Behaviour::Accept);
    let all: BTreeSet<Vec<u8>> = spans_of(&sent).into_keys().collect();
    for _ in 0..600 {
        if received_ids(&sink).0.len() + dropped >= all.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (received, duplicates) = received_ids(&sink);
    assert_eq!(duplicates, 0);
    assert!(received.is_subset(&all));
    assert_eq!(received.len() + dropped, all.len(), "each span arrived or was counted");
    let newest: BTreeSet<Vec<u8>> = spans_of(&sent[sent.len() - 1..]).into_keys().collect();
    assert!(newest.is_subset(&received), "the newest batch arrived");
}
