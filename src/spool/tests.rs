use std::io::Write as _;

use proptest::prelude::*;

use super::*;

fn config(directory: &Path) -> SpoolConfig {
    SpoolConfig {
        directory: directory.to_owned(),
        max_bytes: 1 << 30,
        segment_bytes: 256,
        fsync: Fsync::Always,
    }
}

fn payload(n: u64) -> Bytes {
    Bytes::from(format!("record {n:04} ").repeat(1 + (n % 7) as usize))
}

/// Everything waiting, taken in order, as (sequence, bytes).
fn drain(spool: &mut Spool) -> Vec<Record> {
    std::iter::from_fn(|| spool.take().expect("read")).collect()
}

/// Guarantees: records come back in order with their signal, item count and bytes; a reopened spool hands
/// out again exactly the records not done (done ones, synced, are not), and deletes segments
/// whose records are all done.
#[test]
fn replays_what_was_not_done() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, recovery) = Spool::open(config(dir.path())).expect("open");
    assert_eq!(recovery, Recovery::default());
    for n in 0..20 {
        let signal = [Signal::Traces, Signal::Metrics, Signal::Logs][n as usize % 3];
        spool
            .append(signal, n as u32, &[payload(n), Bytes::from_static(b"!")])
            .expect("append");
    }
    let taken = drain(&mut spool);
    assert_eq!(taken.len(), 20);
    assert_eq!(taken[4].signal, Signal::Metrics);
    assert_eq!(taken[4].items, 4);
    assert_eq!(taken[4].bytes, [payload(4), Bytes::from_static(b"!")].concat());
    let segments = || std::fs::read_dir(dir.path()).expect("dir").count();
    let segments_before = segments();
    for record in &taken[..12] {
        spool.done(record.sequence).expect("done");
    }
    assert!(segments() < segments_before, "done segments are deleted");
    spool.sync().expect("sync");
    drop(spool);
    let (mut spool, recovery) = Spool::open(config(dir.path())).expect("reopen");
    assert_eq!(recovery.records, 8);
    let again: Vec<Bytes> = drain(&mut spool).into_iter().map(|r| r.bytes).collect();
    let expected: Vec<Bytes> = taken[12..].iter().map(|r| r.bytes.clone()).collect();
    assert_eq!(again, expected);
}

/// Guarantees: `drop_oldest` makes room by dropping the oldest records waiting, never the one
/// in flight, freeing their segments even while that one holds an older segment; what stays is
/// handed out in order, newest last, and the in-flight record is still done normally.
#[test]
fn dropping_the_oldest_makes_room_around_a_record_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = config(dir.path());
    settings.max_bytes = 2048;
    let (mut spool, _) = Spool::open(settings).expect("open");
    let record = Bytes::from(vec![b'x'; 100]);
    let mut appended = 0u64;
    while spool.append(Signal::Traces, 1, std::slice::from_ref(&record)).is_ok() {
        appended += 1;
    }
    let in_flight = spool.take().expect("read").expect("a record");
    assert_eq!(in_flight.sequence, 0);
    let dropped = spool.drop_oldest(101).expect("drop");
    assert!(!dropped.is_empty());
    let dropped_sequences: Vec<u64> = dropped.iter().map(|r| r.sequence).collect();
    assert_eq!(dropped_sequences, (1..=dropped.len() as u64).collect::<Vec<_>>());
    let newest = spool
        .append(Signal::Traces, 1, std::slice::from_ref(&record))
        .expect("room was made");
    assert_eq!(newest, appended);
    let left: Vec<u64> = drain(&mut spool).iter().map(|r| r.sequence).collect();
    let first_kept = dropped.len() as u64 + 1;
    assert_eq!(left, (first_kept..=appended).collect::<Vec<_>>());
    spool.done(in_flight.sequence).expect("done");
    for sequence in left {
        spool.done(sequence).expect("done");
    }
    assert!(spool.is_empty());
}

/// Guarantees: past `max_bytes` an append is refused as full, and taken again once delivered
/// records free their segments; a record larger than the whole queue is refused as too large.
#[test]
fn full_until_segments_are_freed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = Spool::open(SpoolConfig {
        max_bytes: 1024,
        ..config(dir.path())
    })
    .expect("open");
    let record = Bytes::from(vec![7u8; 100]);
    let mut appended = 0;
    while spool.append(Signal::Logs, 1, std::slice::from_ref(&record)).is_ok() {
        appended += 1;
    }
    assert!(matches!(
        spool.append(Signal::Logs, 1, std::slice::from_ref(&record)),
        Err(SpoolError::Full { .. })
    ));
    assert!(appended >= 8, "{appended}");
    for record in drain(&mut spool) {
        spool.done(record.sequence).expect("done");
    }
    spool
        .append(Signal::Logs, 1, std::slice::from_ref(&record))
        .expect("room again");
    let larger_than_the_queue = Bytes::from(vec![7u8; 2048]);
    assert!(matches!(
        spool.append(Signal::Logs, 1, &[larger_than_the_queue]),
        Err(SpoolError::TooLarge { .. })
    ));
}

/// Guarantees: records past what is kept in memory are read back from disk, in order, with
/// their signal and item count, and room kept frees as records are taken.
#[test]
fn records_beyond_the_kept_ones_are_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = Spool::open(SpoolConfig {
        segment_bytes: 16 << 20,
        ..config(dir.path())
    })
    .expect("open");
    let large = |n: u8| Bytes::from(vec![n; KEPT_BYTES / 3]);
    for n in 0..5 {
        spool
            .append(Signal::Logs, u32::from(n) + 10, &[large(n)])
            .expect("append");
    }
    assert_eq!(spool.kept.len(), 3);
    for n in 0..5 {
        let record = spool.take().expect("read").expect("a record");
        assert_eq!((record.signal, record.items), (Signal::Logs, u32::from(n) + 10));
        assert_eq!(record.bytes, large(n), "record {n}");
    }
    assert_eq!((spool.kept.len(), spool.kept_bytes), (0, 0));
    spool.append(Signal::Metrics, 1, &[large(9), large(8)]).expect("append");
    let joined = spool.take().expect("read").expect("a record");
    assert_eq!(joined.bytes, [large(9), large(8)].concat());
}

/// Guarantees: a segment cut mid-record and one with a flipped byte in a record: reopening
/// keeps every intact record, moves the bad ones to quarantine/ and counts them.
#[test]
fn quarantines_torn_and_corrupt_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = Spool::open(SpoolConfig {
        segment_bytes: 1 << 20,
        ..config(dir.path())
    })
    .expect("open");
    for n in 0..10 {
        spool.append(Signal::Traces, 1, &[payload(n)]).expect("append");
    }
    drop(spool);
    let segment = dir.path().join(segment_name_of(0));
    let mut bytes = std::fs::read(&segment).expect("segment");
    // Flip a byte in the payload of the third record.
    let third = (0..2).fold(0, |at, _| {
        at + HEADER_LEN + u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize
    });
    bytes[third + HEADER_LEN + 3] ^= 0xff;
    // Cut the last record in half.
    let length = bytes.len();
    bytes.truncate(length - 5);
    std::fs::write(&segment, &bytes).expect("write");
    let (mut spool, recovery) = Spool::open(config(dir.path())).expect("reopen");
    assert_eq!(
        recovery,
        Recovery {
            records: 8,
            quarantined: 2
        }
    );
    let kept: Vec<Bytes> = drain(&mut spool).into_iter().map(|r| r.bytes).collect();
    let expected: Vec<Bytes> = [0, 1, 3, 4, 5, 6, 7, 8].map(payload).to_vec();
    assert_eq!(kept, expected);
    let quarantined = std::fs::read_dir(dir.path().join("quarantine"))
        .expect("quarantine")
        .count();
    assert_eq!(quarantined, 2);
}

const HEADER_LEN: usize = segment::HEADER;

fn segment_name_of(sequence: u64) -> String {
    format!("{sequence:020}.seg")
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Step {
    Append,
    Take,
    /// Marks the n-th record handed out and not yet done as done.
    Done(usize),
    /// The process stops (without a final sync) and starts again.
    Restart,
    /// As `Restart`, after a torn write: half a record at the end of the newest segment.
    TornRestart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Append),
        3 => Just(Step::Take),
        3 => (0usize..8).prop_map(Step::Done),
        1 => Just(Step::Restart),
        1 => Just(Step::TornRestart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Guarantees, against a reference of the records not yet done: a record is never lost
    /// (after any restart, every record not done is handed out again, in append order), a
    /// record handed out again after a restart was appended (duplicates only of real records),
    /// and torn writes are quarantined without losing an intact record.
    #[test]
    fn queue_matches_its_reference(steps in proptest::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || Spool::open(SpoolConfig { fsync: Fsync::Interval(Duration::from_secs(3600)), ..config(dir.path()) }).expect("open").0;
        let mut spool = open();
        let mut appended = 0u64;
        // Reference: bytes of the records not done, in append order.
        let mut not_done: Vec<Bytes> = Vec::new();
        // Handed out since the last restart and not done: (sequence, bytes).
        let mut handed: Vec<(u64, Bytes)> = Vec::new();
        for step in steps {
            match step {
                Step::Append => {
                    let bytes = payload(appended);
                    spool.append(Signal::Traces, 1, std::slice::from_ref(&bytes)).expect("append");
                    not_done.push(bytes);
                    appended += 1;
                }
                Step::Take => {
                    if let Some(record) = spool.take().expect("take") {
                        handed.push((record.sequence, record.bytes));
                    }
                }
                Step::Done(n) => {
                    if !handed.is_empty() {
                        let (sequence, bytes) = handed.remove(n % handed.len());
                        spool.done(sequence).expect("done");
                        let at = not_done.iter().position(|b| *b == bytes).expect("done once");
                        not_done.remove(at);
                    }
                }
                Step::Restart | Step::TornRestart => {
                    let torn = matches!(step, Step::TornRestart);
                    drop(spool);
                    if torn {
                        let newest = std::fs::read_dir(dir.path()).expect("dir").flatten()
                            .map(|e| e.file_name().into_string().unwrap_or_default())
                            .filter(|n| n.ends_with(".seg")).max().expect("a segment");
                        let mut file = std::fs::OpenOptions::new().append(true).open(dir.path().join(newest)).expect("open");
                        file.write_all(&[200, 0, 0, 0, 1, 2, 3]).expect("torn");
                    }
                    spool = open();
                    handed.clear();
                    let waiting: Vec<Bytes> = drain(&mut spool).into_iter().map(|r| r.bytes).collect();
                    // Every record not done comes back, in order, among possible duplicates.
                    let mut rest = waiting.iter();
                    for bytes in &not_done {
                        prop_assert!(rest.any(|w| w == bytes), "lost {bytes:?}");
                    }
                    for bytes in &waiting {
                        let n: u64 = std::str::from_utf8(&bytes[7..11]).expect("utf8").parse().expect("n");
                        prop_assert!(n < appended);
                    }
                    // Start over from what the reopened spool holds: done ones are done now.
                    drop(spool);
                    spool = open();
                    let mut again = drain(&mut spool);
                    for record in again.drain(..) {
                        if not_done.contains(&record.bytes) {
                            handed.push((record.sequence, record.bytes));
                        } else {
                            spool.done(record.sequence).expect("duplicate done");
                        }
                    }
                }
            }
        }
    }
}
