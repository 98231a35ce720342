//! Reading the archive back: its Parquet files as DataFusion tables, for `fleetpipe query
//! --archive`. Hidden (unfinished) files are passed over, as other readers do.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::files::TABLES;
use crate::rows;

/// Why the archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The folder or a file could not be opened (the user's path or permissions).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not Parquet, or not of the table's schema.
    #[error("{path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

/// A session with the archive's tables (`spans`, `metric_points`, `logs`) registered, each
/// holding the rows of every finished file under `table=<name>/`; a table without files is
/// empty.
pub fn session(archive: &Path) -> Result<SessionContext, ReadError> {
    if !archive.is_dir() {
        return Err(ReadError::Io {
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
            .ok_or_else(|| datafusion::error::DataFusionError::Internal(format!("no schema of {table}")))?;
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

fn read_file(path: &Path) -> Result<Vec<RecordBatch>, ReadError> {
    let parquet = |source| ReadError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(|source| ReadError::Io {
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
