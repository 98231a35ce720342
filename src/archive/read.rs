//! Reading the archive back: its Parquet files as DataFusion tables, for `fleetpipe query
//! --archive`. Hidden (unfinished) files are passed over, as other readers do.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
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

    /// A `WHERE` condition on `column` (a UTC timestamp) for the period, or none.
    fn condition(self, column: &str) -> Option<String> {
        let bound = |op: &str, nanos: Option<i64>| nanos.map(|n| format!("arrow_cast({column}, 'Int64') {op} {n}"));
        let bounds: Vec<String> = [bound(">=", self.from), bound("<", self.to)]
            .into_iter()
            .flatten()
            .collect();
        (!bounds.is_empty()).then(|| bounds.join(" AND "))
    }
}

/// A session with the archive's tables (`spans`, `metric_points`, `logs`) registered, each
/// holding the rows of `period` of every finished file under `table=<name>/`; a table without
/// files is empty.
pub async fn session(archive: &Path, period: Period) -> Result<SessionContext, ArchiveError> {
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
        let mut batches = Vec::new();
        for path in super::files::finished_files(&archive.join(format!("table={table}"))) {
            batches.extend(read_file(&path)?);
        }
        // The files carry the schema they were written with; an empty table gets today's.
        let schema = batches.first().map_or(schema, RecordBatch::schema);
        let table_rows = Arc::new(MemTable::try_new(schema, vec![batches])?);
        let time = if table == "spans" { "start_time" } else { "time" };
        match period.condition(time) {
            None => {
                context.register_table(table, table_rows)?;
            }
            Some(condition) => {
                // The queries read `table`: a view of the period over all the archive's rows.
                let all = format!("archive_{table}");
                context.register_table(all.as_str(), table_rows)?;
                context
                    .sql(&format!("CREATE VIEW {table} AS SELECT * FROM {all} WHERE {condition}"))
                    .await?;
            }
        }
    }
    Ok(context)
}

fn read_file(path: &Path) -> Result<Vec<RecordBatch>, ArchiveError> {
    let parquet = |source| ArchiveError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(|source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet)?
        .build()
        .map_err(parquet)?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parquet(parquet::errors::ParquetError::from(e)))
}
