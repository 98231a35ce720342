//! A disk queue ("spool") for one exporter: append-only segment files of framed records, read
//! back in order, deleted once every record in them is done (delivered or refused for good).
//!
//! A record is `length (u32 LE) | CRC-32C of the payload (u32 LE) | payload`, the payload the
//! signal (one byte), the batch's item count (u32 LE) and its protobuf bytes. The bytes were
//! checked when received, and the CRC shows they are what was written, so the worker sends
//! them without walking them again (the walk cost more than the file work:
//! `COMPARISONS="memory-direct:disk-interval" benches/process_cpu.sh`). Segments are named by a sequence number
//! and rolled at `segment_bytes`. A small progress file (written to a temporary name, fsynced,
//! renamed) holds where the first record not yet done is; records after it that were done
//! before a crash are delivered again (duplicates are possible, loss is not).
//!
//! On open, the segments from the progress point on are read and checked: a record whose CRC
//! does not match, or a torn one at a segment's end, is moved to `quarantine/`, logged and
//! counted; the intact records around it are kept.
//!
//! The newest records appended while the queue is short are also kept in memory (at most
//! [`KEPT_BYTES`]), so a worker that keeps up hands them out without reading them back (a
//! read is an allocation, zeroing and a `pread` per record:
//! `COMPARISONS="memory-direct:disk-interval" benches/process_cpu.sh`).
//!
//! All I/O here is blocking: callers run it off the async runtime.

pub mod queue;
mod segment;

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::otlp::Signal;
use segment::{Position, Scan, Segments};

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before `append` returns: an acknowledged record survives a power loss.
    Always,
    /// At most this long after `append` returns: a crash of the machine (not of fleetpipe
    /// alone, whose writes the kernel keeps) loses at most this interval.
    Interval(Duration),
}

/// Settings of one spool.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub directory: PathBuf,
    /// Bytes of segments on disk at most; an append past it is refused as [`SpoolError::Full`].
    pub max_bytes: u64,
    pub segment_bytes: u64,
    pub fsync: Fsync,
}

/// Why the spool could not take or give a record.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("disk queue {directory}: {source}")]
    Io {
        directory: String,
        #[source]
        source: std::io::Error,
    },
    /// The cap (`max_bytes`) or the disk is full: push back, or drop by choice.
    #[error("disk queue {directory} is full ({held} bytes held, at most {max})")]
    Full { directory: String, held: u64, max: u64 },
    /// One record larger than the whole queue may hold: it can never be taken.
    #[error("disk queue {directory} cannot take a batch of {bytes} bytes: it holds at most {max}")]
    TooLarge { directory: String, bytes: u64, max: u64 },
}

/// One record handed out: its place in the queue, its signal, its item count and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub sequence: u64,
    pub signal: Signal,
    pub items: u32,
    pub bytes: Bytes,
}

/// Bytes of a record's payload before the batch: the signal and the item count.
const RECORD_HEAD: usize = 5;

/// What opening found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Intact records not yet done, to be delivered first.
    pub records: u64,
    /// Records (or torn tails) moved to `quarantine/`.
    pub quarantined: u64,
}

/// A pending record: its sequence number and where it is.
#[derive(Debug, Clone, Copy)]
struct Pending {
    sequence: u64,
    position: Position,
    length: u32,
}

/// A waiting record kept in memory too.
#[derive(Debug)]
struct Kept {
    sequence: u64,
    head: [u8; RECORD_HEAD],
    batch: Bytes,
}

/// The disk queue of one exporter.
#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    segments: Segments,
    /// Records appended and not yet handed out, in order.
    waiting: VecDeque<Pending>,
    /// Records handed out or waiting and not yet done, by sequence, with their positions.
    undone: VecDeque<Pending>,
    /// Sequences done out of order, above the first undone one.
    done_early: BTreeSet<u64>,
    next_sequence: u64,
    /// The newest records waiting, by sequence, while they fit in [`KEPT_BYTES`].
    kept: VecDeque<Kept>,
    kept_bytes: usize,
    /// Records were appended since the data was last synced.
    data_dirty: bool,
    /// The progress point moved since it was last written, and when that was.
    progress_dirty: bool,
    progress_at: Instant,
}

const PROGRESS: &str = "progress";

/// Bytes of waiting records kept in memory at most, besides their copy on disk.
pub const KEPT_BYTES: usize = 4 << 20;

/// How often the progress point is written at most: writing it is a file, a rename and two
/// fsyncs, and a progress point behind only means records sent again after a crash (at most
/// this long's worth), never lost.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

impl Spool {
    /// Opens (or creates) the spool in `config.directory` and reads back what was not done.
    pub fn open(config: SpoolConfig) -> Result<(Spool, Recovery), SpoolError> {
        let io = io_error(&config.directory);
        std::fs::create_dir_all(&config.directory).map_err(&io)?;
        let start = read_progress(&config.directory);
        let (segments, scans) = Segments::open(&config.directory, start, config.segment_bytes).map_err(io)?;
        let mut spool = Spool {
            segments,
            waiting: VecDeque::new(),
            undone: VecDeque::new(),
            done_early: BTreeSet::new(),
            next_sequence: 0,
            kept: VecDeque::new(),
            kept_bytes: 0,
            data_dirty: false,
            progress_dirty: false,
            progress_at: Instant::now(),
            config,
        };
        let mut recovery = Recovery::default();
        for Scan { records, quarantined } in scans {
            recovery.quarantined += quarantined;
            for (position, length) in records {
                spool.push(position, length);
                recovery.records += 1;
            }
        }
        if recovery.quarantined > 0 {
            tracing::error!(directory = %spool.config.directory.display(), quarantined = recovery.quarantined, "Disk queue: corrupt or torn records moved to quarantine/; the intact ones will be delivered.");
        }
        Ok((spool, recovery))
    }

    fn push(&mut self, position: Position, length: u32) {
        let pending = Pending {
            sequence: self.next_sequence,
            position,
            length,
        };
        self.next_sequence += 1;
        self.waiting.push_back(pending);
        self.undone.push_back(pending);
    }

    /// Appends a batch of `items` items; with `Fsync::Always` it is on disk when this returns.
    pub fn append(&mut self, signal: Signal, items: u32, parts: &[Bytes]) -> Result<u64, SpoolError> {
        let length: usize = RECORD_HEAD + parts.iter().map(Bytes::len).sum::<usize>();
        let held = self.segments.bytes_held();
        let record_bytes = segment::HEADER as u64 + length as u64;
        if record_bytes > self.config.max_bytes {
            return Err(SpoolError::TooLarge {
                directory: self.config.directory.display().to_string(),
                bytes: record_bytes,
                max: self.config.max_bytes,
            });
        }
        if held + record_bytes > self.config.max_bytes {
            return Err(SpoolError::Full {
                directory: self.config.directory.display().to_string(),
                held,
                max: self.config.max_bytes,
            });
        }
        let io = io_error(&self.config.directory);
        let mut head = [0; RECORD_HEAD];
        head[0] = signal_byte(signal);
        head[1..].copy_from_slice(&items.to_le_bytes());
        let (position, length) = self.segments.append(&head, parts).map_err(io)?;
        self.push(position, length);
        self.keep(head, parts);
        match self.config.fsync {
            Fsync::Always => self.segments.sync().map_err(io_error(&self.config.directory))?,
            Fsync::Interval(_) => self.data_dirty = true,
        }
        Ok(self.next_sequence - 1)
    }

    /// Keeps the record just appended, when there is room for it: one part is kept as it is,
    /// several (a batch) joined.
    fn keep(&mut self, head: [u8; RECORD_HEAD], parts: &[Bytes]) {
        let length = parts.iter().map(Bytes::len).sum::<usize>();
        if self.kept_bytes + length > KEPT_BYTES {
            return;
        }
        let batch = match parts {
            [part] => part.clone(),
            _ => Bytes::from(parts.concat()),
        };
        self.kept.push_back(Kept {
            sequence: self.next_sequence - 1,
            head,
            batch,
        });
        self.kept_bytes += length;
    }

    /// The head and batch of a waiting record: kept in memory, else read back.
    fn read(&mut self, pending: Pending) -> Result<([u8; RECORD_HEAD], Bytes), SpoolError> {
        while let Some(kept) = self.kept.pop_front() {
            if kept.sequence > pending.sequence {
                self.kept.push_front(kept);
                break;
            }
            self.kept_bytes -= kept.batch.len();
            if kept.sequence == pending.sequence {
                return Ok((kept.head, kept.batch));
            }
        }
        let io = io_error(&self.config.directory);
        let payload = self.segments.read(pending.position, pending.length).map_err(io)?;
        let mut head = [0; RECORD_HEAD];
        if let Some(read) = payload.get(..RECORD_HEAD) {
            head.copy_from_slice(read);
        }
        Ok((head, payload.slice(RECORD_HEAD.min(payload.len())..)))
    }

    /// The next record to deliver, if one is waiting.
    pub fn take(&mut self) -> Result<Option<Record>, SpoolError> {
        let Some(pending) = self.waiting.pop_front() else {
            return Ok(None);
        };
        let ([kind, items @ ..], bytes) = self.read(pending)?;
        Ok(Some(Record {
            sequence: pending.sequence,
            signal: signal_of(kind).unwrap_or(Signal::Traces),
            items: u32::from_le_bytes(items),
            bytes,
        }))
    }

    /// Records that a record was delivered, or refused for good: once every record before it is
    /// done too, the progress point moves past it and fully done segments are deleted.
    pub fn done(&mut self, sequence: u64) -> Result<(), SpoolError> {
        self.done_early.insert(sequence);
        let mut moved = false;
        while let Some(first) = self.undone.front()
            && self.done_early.remove(&first.sequence)
        {
            self.undone.pop_front();
            moved = true;
        }
        if moved {
            self.progress_dirty = true;
            let io = io_error(&self.config.directory);
            self.segments.delete_before(self.progress()).map_err(io)?;
        }
        Ok(())
    }

    /// Makes room for a record of `bytes` by dropping the oldest records waiting, each marked
    /// done as if delivered; returns them, for counting. Segments are deleted whole, so this
    /// drops up to a segment's worth. A segment holding a record in flight (being sent, or
    /// retried) stays until that record is done; dropped records in it may be sent again
    /// after a restart, never lost.
    pub fn drop_oldest(&mut self, bytes: u64) -> Result<Vec<Record>, SpoolError> {
        let mut dropped = Vec::new();
        while self.segments.bytes_held() + segment::HEADER as u64 + bytes > self.config.max_bytes
            && let Some(segment) = self.waiting.front().map(|p| p.position.segment)
            && let Some(record) = self.take()?
        {
            self.done(record.sequence)?;
            dropped.push(record);
            let segment_passed = self.waiting.front().is_none_or(|p| p.position.segment != segment);
            if segment_passed && self.all_done_in(segment) {
                self.segments
                    .delete(segment)
                    .map_err(io_error(&self.config.directory))?;
            }
        }
        Ok(dropped)
    }

    /// Whether every record of `segment` is done, though an older one may still be in flight
    /// (a record being sent when its batch's turn to be dropped came).
    fn all_done_in(&self, segment: u64) -> bool {
        self.undone
            .iter()
            .take_while(|p| p.position.segment <= segment)
            .all(|p| p.position.segment != segment || self.done_early.contains(&p.sequence))
    }

    /// Records not yet done (waiting or handed out).
    pub fn len(&self) -> usize {
        self.undone.len()
    }

    pub fn is_empty(&self) -> bool {
        self.undone.is_empty()
    }

    /// Records waiting to be handed out.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Bytes of segment files on disk.
    pub fn bytes_held(&self) -> u64 {
        self.segments.bytes_held()
    }

    /// Where reading starts after a restart: the first record not done, else the end.
    fn progress(&self) -> Position {
        self.undone.front().map_or_else(|| self.segments.end(), |p| p.position)
    }

    /// What a timer does: syncs appended data (`Fsync::Interval`), and writes the progress
    /// point when it moved and [`PROGRESS_INTERVAL`] has passed.
    pub fn sync_on_time(&mut self) -> Result<(), SpoolError> {
        if self.data_dirty {
            self.segments.sync().map_err(io_error(&self.config.directory))?;
            self.data_dirty = false;
        }
        if self.progress_dirty && self.progress_at.elapsed() >= PROGRESS_INTERVAL {
            self.write_progress()?;
        }
        Ok(())
    }

    /// Writes appended data and the progress point to disk.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.segments.sync().map_err(io_error(&self.config.directory))?;
        self.data_dirty = false;
        self.write_progress()
    }

    fn write_progress(&mut self) -> Result<(), SpoolError> {
        write_progress(&self.config.directory, self.progress()).map_err(io_error(&self.config.directory))?;
        self.progress_dirty = false;
        self.progress_at = Instant::now();
        Ok(())
    }
}

fn io_error(directory: &Path) -> impl Fn(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        directory: directory.display().to_string(),
        source,
    }
}

fn signal_byte(signal: Signal) -> u8 {
    match signal {
        Signal::Traces => 1,
        Signal::Metrics => 2,
        Signal::Logs => 3,
    }
}

fn signal_of(byte: u8) -> Option<Signal> {
    match byte {
        1 => Some(Signal::Traces),
        2 => Some(Signal::Metrics),
        3 => Some(Signal::Logs),
        _ => None,
    }
}

/// The progress point written last; the start of everything when there is none or it cannot
/// be read (then records already done are delivered again, never lost).
fn read_progress(directory: &Path) -> Position {
    let text = std::fs::read_to_string(directory.join(PROGRESS)).unwrap_or_default();
    let mut numbers = text.split_whitespace().map(str::parse::<u64>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(segment)), Some(Ok(offset))) => Position { segment, offset },
        _ => Position::default(),
    }
}

fn write_progress(directory: &Path, position: Position) -> std::io::Result<()> {
    let temporary = directory.join("progress.tmp");
    let mut file = File::create(&temporary)?;
    writeln!(file, "{} {}", position.segment, position.offset)?;
    file.sync_data()?;
    std::fs::rename(&temporary, directory.join(PROGRESS))?;
    File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests;
