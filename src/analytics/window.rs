//! Closed windows and per-window rollups, shared between the ingest task (which appends)
//! and the detectors (which read through [`WindowTable`]).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{Float64Array, Int64Array, TimestampNanosecondArray, new_null_array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::Result as DataFusionResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    ReplaceChildrenOptions,
};

use crate::rows::{self as tables, KeptColumns};

/// One closed tumbling window.
#[derive(Debug, Clone)]
pub struct ClosedWindow {
    pub start: i64,
    pub end: i64,
    /// `spans`, `metric_points`, `logs`, each in batches of up to 8192 rows.
    pub batches: [Vec<RecordBatch>; 3],
    /// Share of traces whose spans the window kept (`analytics.sampling_percentage`).
    pub sampling_percentage: f64,
}

impl ClosedWindow {
    fn memory_bytes(&self) -> usize {
        self.batches
            .iter()
            .flatten()
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }
}

/// What the detectors can read.
#[derive(Debug, Default)]
pub struct WindowStore {
    pub windows: VecDeque<ClosedWindow>,
    pub history: VecDeque<(i64, RecordBatch)>,
    pub integrations: Option<RecordBatch>,
    /// The columns the next window builds: set by the detectors, read by the ingest task.
    pub kept: KeptColumns,
}

impl WindowStore {
    /// Bytes held by the retained windows and history.
    pub fn memory_bytes(&self) -> usize {
        let windows: usize = self.windows.iter().map(ClosedWindow::memory_bytes).sum();
        let history: usize = self.history.iter().map(|(_, b)| b.get_array_memory_size()).sum();
        windows + history
    }

    /// Drops windows that ended before `window_cutoff`, then the oldest windows while they
    /// hold more than `max_window_bytes` (never the newest), and history before `history_cutoff`.
    pub fn evict(&mut self, window_cutoff: i64, history_cutoff: i64, max_window_bytes: usize) {
        while self.windows.front().is_some_and(|w| w.end <= window_cutoff) {
            self.windows.pop_front();
        }
        let mut held: usize = self.windows.iter().map(ClosedWindow::memory_bytes).sum();
        while held > max_window_bytes && self.windows.len() > 1 {
            if let Some(oldest) = self.windows.pop_front() {
                held -= oldest.memory_bytes();
            }
        }
        while self.history.front().is_some_and(|(start, _)| *start < history_cutoff) {
            self.history.pop_front();
        }
    }

    fn batches(&self, table: Table, span: Duration) -> Vec<RecordBatch> {
        match table {
            Table::Spans | Table::MetricPoints | Table::Logs => {
                let Some(latest) = self.windows.back().map(|w| w.end) else {
                    return Vec::new();
                };
                let from = latest - span.as_nanos() as i64;
                let index = table as usize;
                self.windows
                    .iter()
                    .filter(|w| w.start >= from)
                    .flat_map(|w| w.batches[index].iter().cloned())
                    .collect()
            }
            Table::History => self.history.iter().map(|(_, b)| b.clone()).collect(),
            Table::Windows => {
                let Some(latest) = self.windows.back().map(|w| w.end) else {
                    return Vec::new();
                };
                let from = latest - span.as_nanos() as i64;
                let windows: Vec<&ClosedWindow> = self.windows.iter().filter(|w| w.start >= from).collect();
                windows_batch(&windows).into_iter().collect()
            }
            Table::Integrations => self.integrations.iter().cloned().collect(),
        }
    }
}

/// `batch` with the columns of `schema` (none for `count(*)`): its own, and nulls for those
/// its window left out.
fn widen(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => Arc::clone(column),
            None => new_null_array(field.data_type(), batch.num_rows()),
        })
        .collect();
    let rows = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::clone(schema), columns, &rows)
}

/// The `windows` rows: each closed window a detector reads, even one without data.
fn windows_batch(windows: &[&ClosedWindow]) -> Option<RecordBatch> {
    let starts =
        TimestampNanosecondArray::from(windows.iter().map(|w| w.start).collect::<Vec<_>>()).with_timezone("UTC");
    let ends = TimestampNanosecondArray::from(windows.iter().map(|w| w.end).collect::<Vec<_>>()).with_timezone("UTC");
    let rows = Int64Array::from(
        windows
            .iter()
            .map(|w| w.batches.iter().flatten().map(|b| b.num_rows() as i64).sum::<i64>())
            .collect::<Vec<_>>(),
    );
    let sampling = Float64Array::from(windows.iter().map(|w| w.sampling_percentage).collect::<Vec<_>>());
    RecordBatch::try_new(
        Arc::clone(&tables::WINDOWS),
        vec![Arc::new(starts), Arc::new(ends), Arc::new(rows), Arc::new(sampling)],
    )
    .ok()
}

/// The queryable tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Spans = 0,
    MetricPoints = 1,
    Logs = 2,
    History = 3,
    Integrations = 4,
    Windows = 5,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Spans,
        Table::MetricPoints,
        Table::Logs,
        Table::History,
        Table::Windows,
        Table::Integrations,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Spans => "spans",
            Table::MetricPoints => "metric_points",
            Table::Logs => "logs",
            Table::History => "history",
            Table::Integrations => "integrations",
            Table::Windows => "windows",
        }
    }

    pub fn schema(self) -> SchemaRef {
        Arc::clone(match self {
            Table::Spans => &tables::SPANS,
            Table::MetricPoints => &tables::METRIC_POINTS,
            Table::Logs => &tables::LOGS,
            Table::History => &tables::HISTORY,
            Table::Integrations => &tables::INTEGRATIONS,
            Table::Windows => &tables::WINDOWS,
        })
    }
}

/// What the tables of one query session read: the store as it is, or as it was when the
/// running query pinned it.
pub struct WindowSource {
    store: Arc<RwLock<WindowStore>>,
    /// How far back from the newest closed window the record tables reach.
    span: Duration,
    /// Each table's batches, by [`Table`] number, while a run has the store pinned.
    pinned: Mutex<Option<Arc<[Vec<RecordBatch>; 6]>>>,
}

impl WindowSource {
    pub fn new(store: &Arc<RwLock<WindowStore>>, span: Duration) -> Arc<WindowSource> {
        Arc::new(WindowSource {
            store: Arc::clone(store),
            span,
            pinned: Mutex::new(None),
        })
    }

    /// Until the returned guard drops, every table reads the store as it is now. A query's
    /// scans run at different moments of its run; pinned, they agree on which windows exist
    /// even when one closes meanwhile.
    pub fn pin(self: &Arc<Self>) -> PinnedStore {
        let mut tables: [Vec<RecordBatch>; 6] = Default::default();
        {
            let store = self.store.read().unwrap_or_else(|e| e.into_inner());
            for table in Table::ALL {
                tables[table as usize] = store.batches(table, self.span);
            }
        }
        *self.pinned.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(tables));
        PinnedStore(Arc::clone(self))
    }

    fn batches(&self, table: Table) -> Vec<RecordBatch> {
        let pinned = self.pinned.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match pinned {
            Some(tables) => tables[table as usize].clone(),
            None => self
                .store
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .batches(table, self.span),
        }
    }
}

/// The store pinned for a run (see [`WindowSource::pin`]); dropping it unpins.
pub struct PinnedStore(Arc<WindowSource>);

impl Drop for PinnedStore {
    fn drop(&mut self) {
        *self.0.pinned.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A table of the window store, as DataFusion sees it.
pub struct WindowTable {
    pub source: Arc<WindowSource>,
    pub table: Table,
}

impl fmt::Debug for WindowTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WindowTable({}, {:?})", self.table.name(), self.source.span)
    }
}

#[async_trait]
impl TableProvider for WindowTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DataFusionResult<Arc<dyn ExecutionPlan>> {
        let schema = Arc::new(match projection {
            Some(positions) => self.schema().project(positions)?,
            None => self.schema().as_ref().clone(),
        });
        let partitions = state.config().target_partitions().max(1);
        Ok(Arc::new(WindowScan::new(
            Arc::clone(&self.source),
            self.table,
            schema,
            partitions,
        )))
    }
}

/// Reads its table when executed rather than when planned, so that a detector's physical
/// plan is made once and run over each new window. It reports no statistics: figures taken
/// at planning would be stale by the next run.
struct WindowScan {
    source: Arc<WindowSource>,
    table: Table,
    /// The columns read: the table's, or those of the projection pushed into the scan.
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl WindowScan {
    fn new(source: Arc<WindowSource>, table: Table, schema: SchemaRef, partitions: usize) -> WindowScan {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        WindowScan {
            source,
            table,
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl fmt::Debug for WindowScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WindowScan({})", self.table.name())
    }
}

impl DisplayAs for WindowScan {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let columns: Vec<&str> = self.schema.fields().iter().map(|c| c.name().as_str()).collect();
        write!(
            f,
            "WindowScan: table={}, partitions={}, columns=[{}]",
            self.table.name(),
            self.properties.partitioning.partition_count(),
            columns.join(", ")
        )
    }
}

impl ExecutionPlan for WindowScan {
    fn name(&self) -> &'static str {
        "WindowScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _visit: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DataFusionResult<TreeNodeRecursion>,
    ) -> DataFusionResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DataFusionResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DataFusionResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep))
    }

    /// Windows are stored in batches of 8192 rows: dealt out over the partitions, they are
    /// scanned in parallel without a repartitioning step.
    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> DataFusionResult<SendableRecordBatchStream> {
        let partitions = self.properties.partitioning.partition_count();
        let dealt = self
            .source
            .batches(self.table)
            .iter()
            .skip(partition)
            .step_by(partitions)
            .map(|batch| widen(batch, &self.schema))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::pin(MemoryStream::try_new(dealt, Arc::clone(&self.schema), None)?))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rows::WindowBuilder;

    fn window(start: i64) -> ClosedWindow {
        window_keeping(start, KeptColumns::ALL)
    }

    /// A window holding one span, with the columns `kept` keeps.
    fn window_keeping(start: i64, kept: KeptColumns) -> ClosedWindow {
        window_of(start, kept, None, 1)
    }

    /// A closed window from `start` holding `spans` spans, of the service `agent` if given,
    /// with the columns `kept` keeps.
    pub(crate) fn window_of(start: i64, kept: KeptColumns, agent: Option<&str>, spans: usize) -> ClosedWindow {
        use crate::otlp::{Payload, Request};
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let service = agent.map(|agent| KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(agent.into())),
            }),
            ..Default::default()
        });
        let spans = (0..spans)
            .map(|i| Span {
                trace_id: vec![i as u8 + 1; 16],
                span_id: vec![2; 8],
                ..Default::default()
            })
            .collect();
        let request = Payload::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: service.map(|service| Resource {
                    attributes: vec![service],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        let mut builder = WindowBuilder::keeping(start, kept);
        builder.add(&Request::from_payload(&request)).expect("well-formed");
        ClosedWindow {
            start,
            end: start + 10,
            batches: builder.finish().expect("window"),
            sampling_percentage: 100.0,
        }
    }

    /// Guarantees: time retention drops ended windows; the byte bound drops the oldest while
    /// over it but always keeps the newest window.
    #[test]
    fn eviction_by_time_then_by_bytes() {
        let mut store = WindowStore::default();
        store.windows.extend([window(0), window(10), window(20), window(30)]);
        store.evict(10, 0, usize::MAX);
        let starts = |s: &WindowStore| s.windows.iter().map(|w| w.start).collect::<Vec<_>>();
        assert_eq!(starts(&store), [10, 20, 30]);
        store.evict(10, 0, 0);
        assert_eq!(starts(&store), [30]);
    }

    /// Guarantees: a scan reads windows that kept different columns as one table: a column a
    /// window left out is null on its rows, and `count(*)`, which reads no column, counts them.
    #[tokio::test]
    async fn windows_of_different_columns_scan_as_one_table() {
        let mut store = WindowStore::default();
        store
            .windows
            .extend([window(0), window_keeping(10, KeptColumns::WINDOW_START)]);
        let store = Arc::new(RwLock::new(store));
        let source = WindowSource::new(&store, Duration::from_secs(60));
        let context = crate::analytics::detector::session(&source, 64 << 20).expect("session");
        let sql = "SELECT count(*) AS all_rows, count(trace_id) AS with_trace_id FROM spans";
        let batches = context.sql(sql).await.expect("plans").collect().await.expect("runs");
        let rows = crate::analytics::query::rows(&batches);
        assert_eq!(rows.rows, [[Some("2".to_owned()), Some("1".to_owned())]]);
    }

    /// Guarantees: while pinned, every table reads the store as it was when pinned (a window
    /// closed since is in none of them); unpinned, they read it as it is.
    #[test]
    fn a_pinned_store_reads_as_it_was() {
        let store = Arc::new(RwLock::new(WindowStore::default()));
        store.write().expect("store").windows.push_back(window(0));
        let source = WindowSource::new(&store, Duration::from_secs(60));
        let rows = |table: Table| -> usize { source.batches(table).iter().map(RecordBatch::num_rows).sum() };
        let pinned = source.pin();
        store.write().expect("store").windows.push_back(window(10));
        assert_eq!((rows(Table::Spans), rows(Table::Windows)), (1, 1));
        drop(pinned);
        assert_eq!((rows(Table::Spans), rows(Table::Windows)), (2, 2));
    }
}
