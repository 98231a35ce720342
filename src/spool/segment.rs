//! The segment files of a spool: appending framed records, reading them back, checking them on
//! open, quarantining what does not check, deleting what is done.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// Bytes before a record's payload: its length and its CRC-32C.
pub(super) const HEADER: usize = 8;

/// Where a record starts: a segment's sequence number and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// What checking one segment found: its intact records (position, payload length) and how
/// many bad records or torn tails went to quarantine.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub records: Vec<(Position, u32)>,
    pub quarantined: u64,
}

#[derive(Debug)]
pub(super) struct Segments {
    directory: PathBuf,
    /// Segment sequence → size, of the files on disk (the one being written included).
    sizes: BTreeMap<u64, u64>,
    held: u64,
    writer: File,
    writing: u64,
    segment_bytes: u64,
    /// Open handles of segments being read.
    readers: BTreeMap<u64, File>,
    /// The record being framed, reused.
    buffer: Vec<u8>,
}

fn segment_name(sequence: u64) -> String {
    format!("{sequence:020}.seg")
}

impl Segments {
    /// The segments of `directory` from `start` on, checked; the older ones are done and
    /// deleted. Appending goes to a new segment after the last.
    pub(super) fn open(directory: &Path, start: Position, segment_bytes: u64) -> io::Result<(Segments, Vec<Scan>)> {
        let mut found: Vec<u64> = std::fs::read_dir(directory)?
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse::<u64>().ok()
            })
            .collect();
        found.sort_unstable();
        let mut sizes = BTreeMap::new();
        let mut scans = Vec::new();
        for &sequence in &found {
            let path = directory.join(segment_name(sequence));
            if sequence < start.segment {
                std::fs::remove_file(&path)?;
                continue;
            }
            let from = if sequence == start.segment { start.offset } else { 0 };
            let (scan, size) = check(directory, sequence, from)?;
            if size == 0 {
                // An empty segment (the last run's newest, unwritten) holds nothing to keep.
                std::fs::remove_file(&path)?;
            } else {
                sizes.insert(sequence, size);
            }
            scans.push(scan);
        }
        let writing = found.last().map_or(start.segment, |last| last + 1).max(start.segment);
        let writer = create(directory, writing)?;
        sizes.insert(writing, 0);
        let segments = Segments {
            directory: directory.to_owned(),
            held: sizes.values().sum(),
            sizes,
            writer,
            writing,
            segment_bytes,
            readers: BTreeMap::new(),
            buffer: Vec::new(),
        };
        Ok((segments, scans))
    }

    /// Appends one record of `head` and `parts`; returns where it is and its payload length.
    pub(super) fn append(&mut self, head: &[u8], parts: &[Bytes]) -> io::Result<(Position, u32)> {
        let length = head.len() + parts.iter().map(Bytes::len).sum::<usize>();
        let length = u32::try_from(length).map_err(|_| io::Error::other("a record over 4 GiB"))?;
        let size = self.sizes.get(&self.writing).copied().unwrap_or(0);
        if size > 0 && size + HEADER as u64 + u64::from(length) > self.segment_bytes {
            self.writer.sync_data()?;
            self.writing += 1;
            self.writer = create(&self.directory, self.writing)?;
            self.sizes.insert(self.writing, 0);
        }
        let crc = parts
            .iter()
            .fold(crc32c::crc32c(head), |crc, part| crc32c::crc32c_append(crc, part));
        self.buffer.clear();
        self.buffer.extend_from_slice(&length.to_le_bytes());
        self.buffer.extend_from_slice(&crc.to_le_bytes());
        self.buffer.extend_from_slice(head);
        for part in parts {
            self.buffer.extend_from_slice(part);
        }
        self.writer.write_all(&self.buffer)?;
        let size = self.sizes.entry(self.writing).or_default();
        let position = Position {
            segment: self.writing,
            offset: *size,
        };
        *size += self.buffer.len() as u64;
        self.held += self.buffer.len() as u64;
        Ok((position, length))
    }

    /// The payload of the record at `position`.
    pub(super) fn read(&mut self, position: Position, length: u32) -> io::Result<Bytes> {
        if !self.readers.contains_key(&position.segment) {
            let file = File::open(self.directory.join(segment_name(position.segment)))?;
            self.readers.insert(position.segment, file);
        }
        let file = &self.readers[&position.segment];
        let mut payload = vec![0; length as usize];
        file.read_exact_at(&mut payload, position.offset + HEADER as u64)?;
        Ok(Bytes::from(payload))
    }

    pub(super) fn sync(&mut self) -> io::Result<()> {
        self.writer.sync_data()
    }

    /// Deletes the segments before `position`'s: every record in them is done.
    pub(super) fn delete_before(&mut self, position: Position) -> io::Result<()> {
        let done: Vec<u64> = self
            .sizes
            .range(..position.segment.min(self.writing))
            .map(|(s, _)| *s)
            .collect();
        done.into_iter().try_for_each(|sequence| self.delete(sequence))
    }

    /// Deletes segment `sequence`, every record in it done; never the one being written.
    pub(super) fn delete(&mut self, sequence: u64) -> io::Result<()> {
        if sequence == self.writing {
            return Ok(());
        }
        self.readers.remove(&sequence);
        if let Some(size) = self.sizes.remove(&sequence) {
            self.held -= size;
            std::fs::remove_file(self.directory.join(segment_name(sequence)))?;
        }
        Ok(())
    }

    /// Where the next record will be.
    pub(super) fn end(&self) -> Position {
        Position {
            segment: self.writing,
            offset: self.sizes.get(&self.writing).copied().unwrap_or(0),
        }
    }

    pub(super) fn bytes_held(&self) -> u64 {
        self.held
    }
}

fn create(directory: &Path, sequence: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(directory.join(segment_name(sequence)))?;
    File::open(directory)?.sync_all()?;
    Ok(file)
}

/// Checks the records of segment `sequence` from `from` on. A record whose CRC does not match
/// is quarantined and skipped when the record after it checks (or it was the last); otherwise
/// (its length is what is wrong, or the tail is torn) the rest of the segment is quarantined
/// and cut off. Returns the scan and the segment's size after.
fn check(directory: &Path, sequence: u64, from: u64) -> io::Result<(Scan, u64)> {
    let path = directory.join(segment_name(sequence));
    let mut bytes = Vec::new();
    File::open(&path)?.read_to_end(&mut bytes)?;
    let mut scan = Scan::default();
    let mut offset = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
    while offset < bytes.len() {
        match frame_at(&bytes, offset) {
            Frame::Intact(length) => {
                scan.records.push((position(sequence, offset), length));
                offset += HEADER + length as usize;
            }
            Frame::BadCrc(length)
                if matches!(
                    frame_at(&bytes, offset + HEADER + length as usize),
                    Frame::Intact(_) | Frame::End
                ) =>
            {
                quarantine(
                    directory,
                    sequence,
                    offset,
                    &bytes[offset..offset + HEADER + length as usize],
                )?;
                scan.quarantined += 1;
                offset += HEADER + length as usize;
            }
            Frame::BadCrc(_) | Frame::Torn | Frame::End => {
                quarantine(directory, sequence, offset, &bytes[offset..])?;
                scan.quarantined += 1;
                OpenOptions::new().write(true).open(&path)?.set_len(offset as u64)?;
                return Ok((scan, offset as u64));
            }
        }
    }
    Ok((scan, bytes.len() as u64))
}

fn position(segment: u64, offset: usize) -> Position {
    Position {
        segment,
        offset: offset as u64,
    }
}

/// What is at an offset of a segment's bytes.
enum Frame {
    /// A record that checks, of this payload length.
    Intact(u32),
    /// A whole record whose CRC does not match.
    BadCrc(u32),
    /// Less than a whole record.
    Torn,
    /// The end of the segment.
    End,
}

fn frame_at(bytes: &[u8], offset: usize) -> Frame {
    if offset == bytes.len() {
        return Frame::End;
    }
    let Some(header) = bytes.get(offset..offset + HEADER) else {
        return Frame::Torn;
    };
    let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let Some(payload) = bytes.get(offset + HEADER..offset + HEADER + length as usize) else {
        return Frame::Torn;
    };
    if length > 0 && crc32c::crc32c(payload) == crc {
        Frame::Intact(length)
    } else {
        Frame::BadCrc(length)
    }
}

/// Keeps bad bytes for whoever investigates, in `quarantine/<segment>-<offset>.bad`.
fn quarantine(directory: &Path, sequence: u64, offset: usize, bytes: &[u8]) -> io::Result<()> {
    let folder = directory.join("quarantine");
    std::fs::create_dir_all(&folder)?;
    std::fs::write(folder.join(format!("{sequence:020}-{offset}.bad")), bytes)?;
    tracing::error!(directory = %directory.display(), segment = sequence, offset, bytes = bytes.len(), "Disk queue: a record does not check; moved to quarantine.");
    Ok(())
}
