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

/// A session with the archive's tables (`spans`, `metric_points`, `logs`) registered, each
/// holding the rows of every finished file under `table=<name>/`; a table without files is
/// empty.
pub fn session(archive: &Path) -> Result<SessionContext, ArchiveError> {
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
        let table_rows = MemTable::try_new(schema, vec![batches])?;
        context.register_table(table, Arc::new(table_rows))?;
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
