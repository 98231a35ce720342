//! Reading the archive back: its Parquet files as DataFusion tables, for `fleetpipe query
//! --archive` and `fleetpipe report`. Hidden (unfinished) files are passed over, as other
//! readers do.
//!
//! Only the columns a query reads are decoded, the files in parallel, and only the rows of the
//! period are kept: what makes a report over millions of spans take seconds
//! (`benches/report.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Int64Array, new_null_array};
use datafusion::arrow::compute::kernels::cmp::{gt_eq, lt};
use datafusion::arrow::compute::{and, cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::SessionContext;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

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
    /// Per table, these and the time column periods select by; a table's others are not there.
    Read(BTreeMap<String, BTreeSet<String>>),
}

impl Columns {
    /// The columns of each table that `statements` read, run in order (a statement may read
    /// what an earlier one created), as DataFusion plans them after pushing projections down
    /// to the scans; `prepare` registers what the statements call (functions). Decoding
    /// only those is what makes a report over millions of spans take seconds.
    pub async fn read_by(statements: &[&str], prepare: impl Fn(&SessionContext)) -> Result<Columns, DataFusionError> {
        let context = SessionContext::new();
        prepare(&context);
        for (table, schema) in rows::all().into_iter().filter(|(t, _)| TABLES.contains(t)) {
            context.register_table(table, Arc::new(MemTable::try_new(schema, vec![Vec::new()])?))?;
        }
        let mut read: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for statement in statements {
            let state = context.state();
            let plan = state.create_logical_plan(statement).await?;
            // A CREATE's own plan is optimized as a query, so its scans show what it reads.
            let query = match &plan {
                LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) => create.input.as_ref().clone(),
                LogicalPlan::Ddl(DdlStatement::CreateView(create)) => create.input.as_ref().clone(),
                other => other.clone(),
            };
            state.optimize(&query)?.apply(|node| {
                if let LogicalPlan::TableScan(scan) = node {
                    let columns = read.entry(scan.table_name.table().to_owned()).or_default();
                    let schema = scan.source.schema();
                    let indices: Vec<usize> = match &scan.projection {
                        Some(projection) => projection.clone(),
                        None => (0..schema.fields().len()).collect(),
                    };
                    columns.extend(indices.into_iter().map(|i| schema.field(i).name().clone()));
                    for filter in &scan.filters {
                        columns.extend(filter.column_refs().into_iter().map(|c| c.name.clone()));
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
            context.execute_logical_plan(plan).await?;
        }
        Ok(Columns::Read(read))
    }

    fn wants(&self, table: &str, column: &str) -> bool {
        match self {
            Columns::All => true,
            Columns::Read(read) => {
                TIME_COLUMNS.contains(&column) || read.get(table).is_some_and(|columns| columns.contains(column))
            }
        }
    }
}

/// The time column of each table, which periods select by.
const TIME_COLUMNS: [&str; 2] = ["start_time", "time"];

/// A session with the archive's tables (`spans`, `metric_points`, `logs`) registered, each
/// holding the rows of `period` and the `columns` of every finished file under
/// `table=<name>/`; a table without files is empty.
pub async fn session(archive: &Path, period: Period, columns: &Columns) -> Result<SessionContext, ArchiveError> {
    let archive = &super::remote::local_copy(archive).await?;
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
        let wanted = |column: &str| columns.wants(table, column);
        // Every file's rows in today's schema, whichever version of fleetpipe wrote it.
        let schema = projected(&dictionaries(&schema), &wanted);
        let batches = read_files(&files, &schema, period, time)?;
        context.register_table(table, Arc::new(MemTable::try_new(schema, partitions(batches))?))?;
    }
    Ok(context)
}

/// The batches dealt round-robin into one partition per core, so that DataFusion scans and
/// aggregates them in parallel.
fn partitions(batches: Vec<RecordBatch>) -> Vec<Vec<RecordBatch>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut partitions = vec![Vec::new(); cores];
    for (i, batch) in batches.into_iter().enumerate() {
        partitions[i % cores].push(batch);
    }
    partitions
}

/// Text columns with a value per record (ids, names, messages), read as plain text.
const DISTINCT_TEXT: [&str; 7] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "status_message",
    "body",
    "conversation_id",
];

/// `schema` with its other top-level text columns as dictionaries.
fn dictionaries(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Utf8 if !DISTINCT_TEXT.contains(&field.name().as_str()) => {
                let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                Arc::new(field.as_ref().clone().with_data_type(dictionary))
            }
            _ => Arc::clone(field),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The columns a table's reader decodes, by name.
type Wanted<'a> = dyn Fn(&str) -> bool + Sync + 'a;

/// The `wanted` columns of `schema`, every one nullable: a file that lacks one reads as nulls.
fn projected(schema: &SchemaRef, wanted: &Wanted<'_>) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| wanted(f.name()))
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// The rows of `period` of every file, read on as many threads as there are cores.
fn read_files(
    files: &[PathBuf],
    schema: &SchemaRef,
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
                        batches.extend(read_file(path, schema, period, time)?);
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

/// The rows of `period` of one file, in `schema`: a column the file lacks (written by an
/// older version) is null, one `schema` lacks is left out.
fn read_file(path: &Path, schema: &SchemaRef, period: Period, time: &str) -> Result<Vec<RecordBatch>, ArchiveError> {
    let parquet = |source| ArchiveError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(|source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    })?;
    // Text of few distinct values (agents, layers, integrations, tools, status) is read as
    // dictionaries: copied and grouped as integer keys (`benches/report.sh`).
    let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(parquet)?;
    let options = ArrowReaderOptions::new().with_schema(dictionaries(metadata.schema()));
    let metadata = ArrowReaderMetadata::try_new(Arc::clone(metadata.metadata()), options).map_err(parquet)?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata);
    let wanted = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| schema.field_with_name(f.name()).is_ok())
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
            batches.push(conform(&batch, schema).map_err(|e| parquet(e.into()))?);
        }
    }
    Ok(batches)
}

/// `batch`'s columns in the order and types of `schema`, nulls for those it lacks.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => Ok(Arc::clone(column)),
            Some(column) => cast(column, field.data_type()),
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(statements: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        match runtime.block_on(Columns::read_by(statements, |_| {})).expect("plans") {
            Columns::Read(read) => read,
            Columns::All => panic!("columns named"),
        }
    }

    fn set(columns: &[&str]) -> BTreeSet<String> {
        columns.iter().map(|c| (*c).to_owned()).collect()
    }

    /// Guarantees: the columns a session decodes are those the statements read, per table,
    /// through tables and views the statements create, and all of them for `*`.
    #[test]
    fn columns_read_are_planned_per_table() {
        let planned = read(&[
            "CREATE TABLE calls AS SELECT trace_id, tool_name FROM spans WHERE integration_id IS NOT NULL",
            "CREATE VIEW findings AS SELECT attributes['fleetpipe.key'] AS key FROM logs",
            "SELECT count(*), count(DISTINCT trace_id) FROM calls",
            "SELECT key FROM findings",
        ]);
        assert_eq!(planned["spans"], set(&["integration_id", "tool_name", "trace_id"]));
        assert_eq!(planned["logs"], set(&["attributes"]));
        assert!(!planned.contains_key("metric_points"));
        let all = read(&["SELECT * FROM metric_points"]);
        assert_eq!(all["metric_points"].len(), rows::METRIC_POINTS.fields().len());
        let columns = Columns::Read(read(&["SELECT agent FROM spans"]));
        assert!(columns.wants("spans", "agent") && columns.wants("spans", "start_time"));
        assert!(!columns.wants("spans", "attributes") && !columns.wants("logs", "agent"));
    }

    /// Guarantees: files an older version wrote are read in today's schema: a column they
    /// lack reads as null, one no longer in the schema is left out, and reading goes on.
    #[test]
    fn files_of_an_older_schema_read_in_todays() {
        use datafusion::arrow::array::{StringArray, TimestampNanosecondArray};
        use datafusion::arrow::datatypes::{Field, TimeUnit};
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("table=spans/date=2026-12-05/hour=09");
        std::fs::create_dir_all(&folder).expect("folder");
        let time = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        let old = Arc::new(Schema::new(vec![
            Field::new("start_time", time, true),
            Field::new("agent", DataType::Utf8, true),
            Field::new("retired", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&old),
            vec![
                Arc::new(TimestampNanosecondArray::from(vec![1, 2]).with_timezone("UTC")),
                Arc::new(StringArray::from(vec!["planner-1", "triage-agent"])),
                Arc::new(StringArray::from(vec!["x", "y"])),
            ],
        )
        .expect("batch");
        let file = File::create(folder.join("part-1-1-1.parquet")).expect("file");
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, old, None).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let rows = runtime.block_on(async {
            let context = session(dir.path(), Period::default(), &Columns::All)
                .await
                .expect("session");
            let sql = "SELECT agent, genai_spellings FROM spans ORDER BY agent";
            context.sql(sql).await.expect("plans").collect().await.expect("runs")
        });
        let rows = crate::analytics::query::rows(&rows);
        assert_eq!(rows.rows.len(), 2);
        assert_eq!(rows.rows[0][0].as_deref(), Some("planner-1"));
        assert_eq!(rows.rows[0][1], None, "a column the file lacks is null");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let retired = runtime.block_on(async {
            let context = session(dir.path(), Period::default(), &Columns::All)
                .await
                .expect("session");
            context.sql("SELECT retired FROM spans").await.map(|_| ())
        });
        assert!(retired.is_err(), "a column no longer in the schema is not there");
    }
}
