//! Reading the archive back: its Parquet files as DataFusion tables, for `fleetpipe query
//! --archive` and `fleetpipe report`. Hidden (unfinished) files are passed over, as other
//! readers do.
//!
//! Only the columns a query names are decoded, the files in parallel, and only the rows of the
//! period are kept: what makes a report over millions of spans take seconds
//! (`benches/report.sh`).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Int64Array};
use datafusion::arrow::compute::kernels::cmp::{gt_eq, lt};
use datafusion::arrow::compute::{and, cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::ArchiveError;
use super::files::TABLES;
use crate::rows;

/// The records a session holds: those whose time (a span's start) is in `[from, to)`, in
/// nanoseconds since the epoch; `None` leaves that side open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Period {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl Period {
    /// The period of equal length just before this one, when it has both ends.
    pub fn previous(self) -> Option<Period> {
        let (from, to) = (self.from?, self.to?);
        Some(Period {
            from: Some(from - (to - from)),
            to: Some(from),
        })
    }

    /// Which rows of `batch` are in the period, by its `column` (a UTC timestamp); `None`
    /// keeps them all.
    fn rows_in(self, batch: &RecordBatch, column: &str) -> Result<Option<BooleanArray>, ArrowError> {
        if self.from.is_none() && self.to.is_none() {
            return Ok(None);
        }
        let Some(time) = batch.column_by_name(column) else {
            return Ok(None);
        };
        let time = cast(time, &DataType::Int64)?;
        let bound = |nanos: i64| Int64Array::new_scalar(nanos);
        let mut keep = BooleanArray::from(vec![true; batch.num_rows()]);
        if let Some(from) = self.from {
            keep = and(&keep, &gt_eq(&time, &bound(from))?)?;
        }
        if let Some(to) = self.to {
            keep = and(&keep, &lt(&time, &bound(to))?)?;
        }
        Ok(Some(keep))
    }
}

/// Which columns a session decodes.
#[derive(Debug, Clone)]
pub enum Columns {
    All,
    /// These, and the time column periods select by; a table's others are not there.
    Named(BTreeSet<String>),
}

impl Columns {
    /// The columns whose names appear as words in `texts` (SQL): a query can only read
    /// those, so the others need not be decoded.
    pub fn named_in<'a>(texts: impl IntoIterator<Item = &'a str>) -> Columns {
        let words = texts
            .into_iter()
            .flat_map(|text| text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
            .filter(|word| !word.is_empty())
            .map(str::to_owned)
            .collect();
        Columns::Named(words)
    }

    fn wants(&self, column: &str) -> bool {
        match self {
            Columns::All => true,
            Columns::Named(names) => names.contains(column) || TIME_COLUMNS.contains(&column),
        }
    }
}

/// The time column of each table, which periods select by.
const TIME_COLUMNS: [&str; 2] = ["start_time", "time"];

/// A session with the archive's tables (`spans`, `metric_points`, `logs`) registered, each
/// holding the rows of `period` and the `columns` of every finished file under
/// `table=<name>/`; a table without files is empty.
pub async fn session(archive: &Path, period: Period, columns: &Columns) -> Result<SessionContext, ArchiveError> {
    if !archive.is_dir() {
        return Err(ArchiveError::Io {
            path: archive.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no archive here"),
        });
    }
    let context = SessionContext::new();
    let schemas = rows::all();
    for table in TABLES {
        let schema = schemas
            .iter()
            .find(|(name, _)| *name == table)
            .map(|(_, schema)| Arc::clone(schema))
            .ok_or_else(|| DataFusionError::Internal(format!("no schema of {table}")))?;
        let files = super::files::finished_files(&archive.join(format!("table={table}")));
        let time = if table == "spans" { "start_time" } else { "time" };
        let batches = read_files(&files, columns, period, time)?;
        // The files carry the schema they were written with; an empty table gets today's.
        let schema = batches
            .first()
            .map_or_else(|| projected(&schema, columns), RecordBatch::schema);
        context.register_table(table, Arc::new(MemTable::try_new(schema, vec![batches])?))?;
    }
    Ok(context)
}

fn projected(schema: &SchemaRef, columns: &Columns) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| columns.wants(f.name()))
        .cloned()
        .collect();
    Arc::new(Schema::new(fields))
}

/// The rows of `period` of every file, read on as many threads as there are cores.
fn read_files(
    files: &[PathBuf],
    columns: &Columns,
    period: Period,
    time: &str,
) -> Result<Vec<RecordBatch>, ArchiveError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(files.len().max(1));
    let share = files.len().div_ceil(threads).max(1);
    let read: Vec<Result<Vec<RecordBatch>, ArchiveError>> = std::thread::scope(|scope| {
        let readers: Vec<_> = files
            .chunks(share)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut batches = Vec::new();
                    for path in chunk {
                        batches.extend(read_file(path, columns, period, time)?);
                    }
                    Ok(batches)
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|reader| reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut batches = Vec::new();
    for part in read {
        batches.extend(part?);
    }
    Ok(batches)
}

fn read_file(path: &Path, columns: &Columns, period: Period, time: &str) -> Result<Vec<RecordBatch>, ArchiveError> {
    let parquet = |source| ArchiveError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(|source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet)?;
    let wanted = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| columns.wants(f.name()))
        .map(|(i, _)| i);
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
    let reader = builder.with_projection(mask).build().map_err(parquet)?;
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| parquet(e.into()))?;
        let batch = match period.rows_in(&batch, time).map_err(|e| parquet(e.into()))? {
            Some(keep) if keep.true_count() < batch.num_rows() => {
                filter_record_batch(&batch, &keep).map_err(|e| parquet(e.into()))?
            }
            _ => batch,
        };
        if batch.num_rows() > 0 {
            batches.push(batch);
        }
    }
    Ok(batches)
}
