//! The archive's files: one open Parquet file per table, written under a hidden temporary
//! name and renamed when closed (by size, age, or the hour turning), and retention by age and
//! total size. Blocking: called off the runtime's threads.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{ArchiveConfig, ArchiveError};
use crate::rows::RECORD_TABLES;

/// The tables the archive holds, in the order the window builder gives their batches.
pub(super) const TABLES: [&str; 3] = RECORD_TABLES;

/// Rows of a Parquet row group at most: a row group is held in memory until it is written.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Columns whose values are mostly distinct: a dictionary would cost a hash and a compare per
/// value, and the writer drops it anyway once it outgrows its page (`benches/process_cpu.sh`,
/// `forwarding:archive`).
const MOSTLY_DISTINCT: [&str; 8] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "start_time",
    "end_time",
    "time",
    "duration_ms",
    "value",
];

/// Random ids: their minimum and maximum in a page let a reader skip nothing.
const RANDOM_IDS: [&str; 3] = ["trace_id", "span_id", "parent_span_id"];

/// zstd, row groups bounded in rows (a row group is held in memory until it is full, so the
/// writer's memory does not grow with the file), no dictionary where values are mostly distinct
/// and no statistics of random ids.
fn writer_properties() -> WriterProperties {
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for column in MOSTLY_DISTINCT {
        properties = properties.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    for column in RANDOM_IDS {
        properties = properties.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    properties.build()
}

/// What a closed file is named after; the temporary name adds a leading dot (readers such as
/// pyarrow and Spark pass over hidden files) and this suffix.
const TEMPORARY_SUFFIX: &str = ".tmp";

/// A file being written.
struct OpenFile {
    /// Where it is written, and where it goes once closed.
    temporary: PathBuf,
    done: PathBuf,
    writer: ArrowWriter<File>,
    opened: Instant,
    /// `date=…/hour=…` of the hour it was opened in.
    partition: String,
}

pub(super) struct Files {
    root: PathBuf,
    max_file_bytes: usize,
    max_file_age: Duration,
    retention: Duration,
    max_total_bytes: u64,
    open: [Option<OpenFile>; 3],
    /// Tells apart files opened in the same millisecond.
    sequence: u64,
}

impl Files {
    /// The archive's files in `root` (`config.path`, or the staging folder of an archive in
    /// object storage), created when missing, without the temporary files a killed process
    /// left.
    pub(super) fn open(config: &ArchiveConfig, root: &Path) -> Result<Files, ArchiveError> {
        let io = |source| ArchiveError::Io {
            path: root.to_owned(),
            source,
        };
        std::fs::create_dir_all(root).map_err(io)?;
        // Other replicas may be writing into the same root: only files no writer is at are
        // removed (see `abandoned`).
        let quiet_for = config.max_file_age.saturating_mul(2).max(Duration::from_secs(3600));
        let left: Vec<_> = parquet_files(root, true)
            .into_iter()
            .filter(|(path, modified, _)| abandoned(path, *modified, quiet_for))
            .collect();
        for (path, _, _) in &left {
            std::fs::remove_file(path).map_err(|source| ArchiveError::Io {
                path: path.clone(),
                source,
            })?;
        }
        if !left.is_empty() {
            tracing::warn!(path = %root.display(), files = left.len(), "Removed the archive's unfinished files of an earlier run.");
        }
        Ok(Files {
            root: root.to_owned(),
            max_file_bytes: usize::try_from(config.max_file_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            max_file_age: config.max_file_age,
            retention: config.retention,
            max_total_bytes: config.max_total_mib.saturating_mul(1 << 20),
            open: [None, None, None],
            sequence: 0,
        })
    }

    /// Writes each table's batches, then closes the files that are due. Per table, how many
    /// rows could not be written and why.
    pub(super) fn write(&mut self, batches: [Vec<RecordBatch>; 3]) -> [Result<(), (usize, ArchiveError)>; 3] {
        let now = SystemTime::now();
        let mut outcome = [Ok(()), Ok(()), Ok(())];
        for (table, batches) in batches.into_iter().enumerate() {
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            if let Err(error) = self.write_table(table, &batches, now) {
                // The file may hold a partial row group: it is left aside, not renamed.
                if let Some(broken) = self.open[table].take() {
                    let _ = std::fs::remove_file(&broken.temporary);
                }
                outcome[table] = Err((rows, error));
            }
        }
        let mut closed = false;
        for table in 0..TABLES.len() {
            if self.is_due(table, now)
                && let Some(file) = self.open[table].take()
            {
                if let Err(error) = file.close() {
                    tracing::error!(%error, "Could not close an archive file; its rows are lost.");
                }
                closed = true;
            }
        }
        if closed {
            self.enforce_retention(now);
        }
        outcome
    }

    fn write_table(&mut self, table: usize, batches: &[RecordBatch], now: SystemTime) -> Result<(), ArchiveError> {
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            let partition = partition_of(now);
            if self.open[table].as_ref().is_some_and(|f| f.partition != partition)
                && let Some(previous) = self.open[table].take()
            {
                previous.close()?;
            }
            if self.open[table].is_none() {
                self.open[table] = Some(self.create(table, batch, partition)?);
            }
            if let Some(file) = &mut self.open[table] {
                file.writer.write(batch).map_err(|source| ArchiveError::Parquet {
                    path: file.temporary.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    fn create(&mut self, table: usize, batch: &RecordBatch, partition: String) -> Result<OpenFile, ArchiveError> {
        let folder = self.root.join(format!("table={}", TABLES[table])).join(&partition);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ArchiveError::Io { path, source }
        };
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        self.sequence += 1;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        // The instance (host and process) in the name: replicas writing into one root never
        // collide, containers whose processes all have pid 1 included.
        let name = format!("part-{millis}-{}-{}.parquet", instance(), self.sequence);
        let done = folder.join(&name);
        let temporary = folder.join(format!(".{name}{TEMPORARY_SUFFIX}"));
        let file = File::create(&temporary).map_err(io(&temporary))?;
        let properties = writer_properties();
        let writer =
            ArrowWriter::try_new(file, batch.schema(), Some(properties)).map_err(|source| ArchiveError::Parquet {
                path: temporary.clone(),
                source,
            })?;
        Ok(OpenFile {
            temporary,
            done,
            writer,
            opened: Instant::now(),
            partition,
        })
    }

    fn is_due(&self, table: usize, now: SystemTime) -> bool {
        self.open[table].as_ref().is_some_and(|file| {
            file.writer.bytes_written() + file.writer.in_progress_size() >= self.max_file_bytes
                || file.opened.elapsed() >= self.max_file_age
                || file.partition != partition_of(now)
        })
    }

    /// Whether no file is open (nothing to close when time passes).
    pub(super) fn nothing_open(&self) -> bool {
        self.open.iter().all(Option::is_none)
    }

    /// Closes every open file, making it visible.
    pub(super) fn close_all(mut self) -> Result<(), ArchiveError> {
        let mut first_error = None;
        for file in self.open.iter_mut().filter_map(Option::take) {
            if let Err(error) = file.close() {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes the files past `retention`, then the oldest until the archive fits
    /// `max_total_bytes`.
    fn enforce_retention(&self, now: SystemTime) {
        let mut files = parquet_files(&self.root, false);
        files.sort_by_key(|(_, modified, _)| *modified);
        let mut total: u64 = files.iter().map(|(_, _, size)| size).sum();
        for (path, modified, size) in files {
            let expired =
                !self.retention.is_zero() && now.duration_since(modified).is_ok_and(|age| age > self.retention);
            let over = self.max_total_bytes > 0 && total > self.max_total_bytes;
            if !expired && !over {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => total -= size,
                Err(error) => tracing::warn!(path = %path.display(), %error, "Could not delete an archive file."),
            }
        }
    }
}

impl OpenFile {
    fn close(self) -> Result<(), ArchiveError> {
        let OpenFile {
            temporary,
            done,
            writer,
            ..
        } = self;
        writer.close().map_err(|source| ArchiveError::Parquet {
            path: temporary.clone(),
            source,
        })?;
        std::fs::rename(&temporary, &done).map_err(|source| ArchiveError::Io { path: done, source })
    }
}

/// `date=YYYY-MM-DD/hour=HH` of `time`, in UTC.
fn partition_of(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_date(seconds / 86_400);
    let hour = seconds % 86_400 / 3600;
    format!("date={year:04}-{month:02}-{day:02}/hour={hour:02}")
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The finished Parquet files under `root`.
pub(super) fn finished_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = parquet_files(root, false)
        .into_iter()
        .map(|(path, _, _)| path)
        .collect();
    files.sort();
    files
}

/// The instance part of this process's file names.
fn instance() -> String {
    crate::telemetry::instance_id()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect()
}

/// Whether an unfinished file has no writer any more: one of this host's whose process is
/// gone, or anyone's untouched for `quiet_for` (a replica elsewhere that died).
fn abandoned(path: &Path, modified: SystemTime, quiet_for: Duration) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // `.part-{millis}-{host}-{pid}-{sequence}.parquet.tmp`
    let mut parts = name.trim_end_matches(".parquet.tmp").rsplitn(3, '-');
    let (_, pid, rest) = (parts.next(), parts.next(), parts.next().unwrap_or_default());
    let this_host = instance()
        .rsplit_once('-')
        .map(|(host, _)| host.to_owned())
        .unwrap_or_default();
    let ours = rest
        .trim_start_matches(".part-")
        .split_once('-')
        .is_some_and(|(_, host)| host == this_host);
    let pid_gone = pid.is_none_or(|pid| !Path::new("/proc").join(pid).exists());
    let quiet = modified.elapsed().unwrap_or_default() >= quiet_for;
    (ours && pid_gone) || quiet
}

/// The Parquet files under `root` (the temporary ones when `temporary`), with their
/// modification time and size.
fn parquet_files(root: &Path, temporary: bool) -> Vec<(PathBuf, SystemTime, u64)> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                folders.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_temporary = name.starts_with('.') && name.ends_with(TEMPORARY_SUFFIX);
            let wanted = if temporary {
                is_temporary
            } else {
                !is_temporary && name.ends_with(".parquet")
            };
            if wanted {
                found.push((path, meta.modified().unwrap_or(UNIX_EPOCH), meta.len()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: days since the epoch become the calendar's dates, across leap years and
    /// centuries.
    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(59), (1970, 3, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(20_792), (2026, 12, 5));
        assert_eq!(
            partition_of(UNIX_EPOCH + Duration::from_secs(20_792 * 86_400 + 9 * 3600 + 59)),
            "date=2026-12-05/hour=09"
        );
    }
}
