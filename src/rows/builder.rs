//! [`WindowBuilder`]: the rows of one window, read from enriched requests' protobuf bytes
//! and finished into batches of `CHUNK_ROWS`.

use std::sync::Arc;

use datafusion::arrow::array::TimestampNanosecondArray;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

use super::attributes::*;
use super::logs::*;
use super::points::*;
use super::spans::*;
use super::*;
use crate::otlp::fields;
use crate::otlp::semconv::TagNames;
use crate::otlp::wire::codec::{Malformed, fields};
use crate::otlp::{Request, Signal};
use crate::rows::sampling::TraceSampler;

/// Rows a table's builders take before they are finished into a batch: DataFusion's batch
/// size, and builders that never grow past it: growing one builder per window copied each
/// column over and over (`benches/process_cpu.sh`).
pub(super) const CHUNK_ROWS: usize = 8192;

/// Why rows could not be added.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("malformed record: {0}")]
    Malformed(#[from] Malformed),
    #[error("could not build Arrow rows: {0}")]
    Arrow(#[from] ArrowError),
}

/// The index of a signal's table in a window's `chunks` and `pending`.
pub(super) fn table_of(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

/// Rows of one window, accumulating until the window closes.
pub struct WindowBuilder {
    pub(super) window_start: i64,
    pub(super) spans: SpanColumns,
    pub(super) points: PointColumns,
    pub(super) logs: LogColumns,
    /// Finished batches of `spans`, `metric_points` and `logs`, and rows in their builders.
    pub(super) chunks: [Vec<RecordBatch>; 3],
    pub(super) pending: [usize; 3],
    pub rows: usize,
    pub(super) kept: KeptColumns,
    pub(super) sampler: TraceSampler,
    /// Whether the share was narrowed while the window was built: its spans are then filtered
    /// to the narrowest share when it closes, so the window is one consistent sample.
    pub(super) narrowed: bool,
    /// Whether fleetpipe's own anomaly records go into `logs`: the archive keeps them (the
    /// report's anomaly timeline), analytics leaves them out (detectors would read their own
    /// findings).
    pub(super) with_findings: bool,
    /// The names of the registry tags on the records, as the enrich processor writes them.
    pub(super) tags: Arc<TagNames>,
}

impl WindowBuilder {
    /// A window that builds every column.
    pub fn new(window_start: i64) -> WindowBuilder {
        WindowBuilder::keeping(window_start, KeptColumns::ALL)
    }

    /// A window that builds the columns `kept` keeps (and `window_start`); the others are null.
    pub fn keeping(window_start: i64, kept: KeptColumns) -> WindowBuilder {
        let mut builder = WindowBuilder {
            window_start,
            spans: SpanColumns::new(),
            points: PointColumns::new(),
            logs: LogColumns::new(),
            chunks: Default::default(),
            pending: [0; 3],
            rows: 0,
            kept: KeptColumns::ALL,
            sampler: TraceSampler::ALL,
            narrowed: false,
            with_findings: false,
            tags: Arc::default(),
        };
        builder.keep(kept);
        builder
    }

    /// Reads the registry tags under `tags`' names.
    pub fn tagged(mut self, tags: Arc<TagNames>) -> WindowBuilder {
        self.tags = tags;
        self
    }

    /// Keeps fleetpipe's own anomaly records (`fleetpipe.anomaly` events) in `logs`.
    pub fn with_findings(mut self) -> WindowBuilder {
        self.with_findings = true;
        self
    }

    /// This window and the ones it is closed into keep only the spans of the traces `sampler`
    /// keeps; metric points and log records are all kept.
    pub fn sampling(mut self, sampler: TraceSampler) -> WindowBuilder {
        self.sampler = sampler;
        self
    }

    /// Only between windows, when no builder holds rows.
    pub(super) fn keep(&mut self, kept: KeptColumns) {
        self.kept = kept;
        self.spans.keep(kept);
        self.points.keep(kept);
        self.logs.keep(kept);
    }

    pub(super) fn sampled_out(&self, span: &[u8]) -> bool {
        self.sampler != TraceSampler::ALL && !self.sampler.keeps(span_trace_id(span))
    }

    pub fn window_start(&self) -> i64 {
        self.window_start
    }

    /// Span rows the window holds so far.
    pub fn span_rows(&self) -> usize {
        self.chunks[0].iter().map(RecordBatch::num_rows).sum::<usize>() + self.pending[0]
    }

    /// Keeps a smaller share of traces from now on, in the window being built: when it closes,
    /// the spans kept before under the larger share are filtered to this one.
    pub fn narrow(&mut self, sampler: TraceSampler) {
        self.sampler = sampler;
        self.narrowed = true;
    }

    /// Adds every span, data point or log record of an enriched request, read from its
    /// protobuf bytes. A malformed record is skipped whole (no partial row); the others are
    /// added, and the first problem is returned.
    pub fn add(&mut self, request: &Request) -> Result<(), RowError> {
        let keep_others = self.kept.keeps(table_of(request.signal()), "attributes");
        let tags = Arc::clone(&self.tags);
        self.add_records(request, RecordAttributes::new(keep_others, &tags))
    }

    /// Counts the rows a record added. A table's builders are finished into a batch as soon
    /// as they hold `CHUNK_ROWS`, within a request: finished after a whole request, they grew
    /// past the room they were given, copying each column, the more so with the batch
    /// processor's larger requests (`cargo bench --bench analytics decode_to_arrow_rows`).
    pub(super) fn count(&mut self, table: usize, rows: usize) -> Result<(), ArrowError> {
        self.rows += rows;
        self.pending[table] += rows;
        if self.pending[table] >= CHUNK_ROWS {
            self.finish_chunk(table)?;
        }
        Ok(())
    }

    pub(super) fn finish_chunk(&mut self, table: usize) -> Result<(), ArrowError> {
        // Every row of a window has its start: one value for the batch rather than one a row.
        let window_start =
            TimestampNanosecondArray::from_value(self.window_start, self.pending[table]).with_timezone("UTC");
        let columns = match table {
            0 => self.spans.finish()?,
            1 => self.points.finish(),
            _ => self.logs.finish()?,
        };
        let batch = self.kept.batch(table, Arc::new(window_start), columns)?;
        self.chunks[table].push(batch);
        self.pending[table] = 0;
        Ok(())
    }

    pub(super) fn add_records<'a>(
        &mut self,
        request: &'a Request,
        mut attributes: RecordAttributes<'a>,
    ) -> Result<(), RowError> {
        let mut first_error = None;
        for (part, highest_randomness) in request.parts_with_trace_randomness() {
            // A request none of whose traces is kept is passed over without reading it: its
            // bytes have gone cold since it was received, and reading each span's trace id
            // was a cache miss per span.
            if !self.sampler.keeps_randomness(highest_randomness) {
                continue;
            }
            for f in fields(part) {
                let added = f.and_then(|f| match f.number {
                    fields::request::RESOURCE_DATA => {
                        self.add_resource(request.signal(), f.bytes()?, &mut attributes, &mut first_error)
                    }
                    _ => Ok(()),
                });
                if let Err(error) = added {
                    first_error.get_or_insert(error.into());
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One `Resource{Spans,Metrics,Logs}`: its resource first (wherever it is on the wire),
    /// then the records of each scope.
    pub(super) fn add_resource<'a>(
        &mut self,
        signal: Signal,
        message: &'a [u8],
        attributes: &mut RecordAttributes<'a>,
        first_error: &mut Option<RowError>,
    ) -> Result<(), Malformed> {
        let table = table_of(signal);
        let mut emitter = Emitter::default();
        for f in fields(message) {
            let f = f?;
            if f.number == fields::resource_data::RESOURCE {
                emitter = Emitter::of(f.bytes()?, self.tags.layer.as_bytes())?;
            }
        }
        for scope in fields(message) {
            let scope = scope?;
            if scope.number != fields::resource_data::SCOPE_DATA {
                continue;
            }
            for record in fields(scope.bytes()?) {
                let record = record?;
                if record.number != fields::scope_data::RECORDS {
                    continue;
                }
                let bytes = record.bytes()?;
                let rows = match signal {
                    Signal::Traces if self.sampled_out(bytes) => Ok(0),
                    Signal::Traces => self.spans.append(&emitter, bytes, attributes),
                    Signal::Metrics => self.points.append(&emitter, bytes, attributes.tags),
                    Signal::Logs => self.logs.append(&emitter, bytes, attributes, self.with_findings),
                };
                let counted = rows
                    .map_err(RowError::from)
                    .and_then(|rows| Ok(self.count(table, rows)?));
                if let Err(error) = counted {
                    first_error.get_or_insert(error);
                }
            }
        }
        Ok(())
    }

    /// The window's `spans`, `metric_points` and `logs` batches.
    pub fn finish(mut self) -> Result<[Vec<RecordBatch>; 3], ArrowError> {
        self.close(self.window_start, self.kept)
    }

    /// Closes the window, returning its batches, and starts the one at `next_start`, building
    /// the columns `kept` keeps, with the same builders (see `FinishSized`); the next window
    /// starts even when this one cannot be finished.
    pub fn close(&mut self, next_start: i64, kept: KeptColumns) -> Result<[Vec<RecordBatch>; 3], ArrowError> {
        let finished = (0..3).try_for_each(|table| match self.pending[table] {
            0 => Ok(()),
            _ => self.finish_chunk(table),
        });
        self.keep(kept);
        self.window_start = next_start;
        self.rows = 0;
        self.pending = [0; 3];
        let mut chunks = std::mem::take(&mut self.chunks);
        finished?;
        if std::mem::take(&mut self.narrowed) {
            chunks[0] = sampling::retain_kept(std::mem::take(&mut chunks[0]), self.sampler)?;
        }
        Ok(chunks)
    }
}
