//! The `history` table: each closed window rolled up per agent, layer, integration and tool,
//! the baselines detectors compare with; counts of sampled windows scaled to estimates.

use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::record_batch::RecordBatch;

use super::config::AnalyticsConfig;
use super::detector::PlannedQuery;
use super::window::{ClosedWindow, WindowStore};
use crate::rows as tables;
use crate::rows::KeptColumns;

/// Per-window rollups for baselines: spans, errors, throttling, p95 latency and tokens per
/// agent, layer, integration and tool.
pub(super) const HISTORY_SQL: &str = "
SELECT window_start, agent, layer, integration_id, tool_name,
       CAST(count(*) AS BIGINT) AS spans,
       CAST(count(*) AS BIGINT) AS kept_spans,
       CAST(sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors,
       CAST(sum(CASE WHEN http_status_code = 429 OR grpc_status_code = 8 OR error_type IN ('429', 'RESOURCE_EXHAUSTED', 'rate_limited') THEN 1 ELSE 0 END) AS BIGINT) AS throttled,
       CAST(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS DOUBLE) AS p95_duration_ms,
       CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
       CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens
FROM spans
GROUP BY window_start, agent, layer, integration_id, tool_name";

/// The columns of `HISTORY_SQL` that count spans or tokens, scaled when a window sampled;
/// `kept_spans` is not: it is the sample the estimates rest on, what a detector's minimum of
/// evidence should count.
pub(super) const HISTORY_COUNTS: [&str; 5] = ["spans", "errors", "throttled", "input_tokens", "output_tokens"];

/// The history rollup, planned once like a detector; each run reads the window being closed.
pub struct Rollup {
    /// The window being rolled up, for the length of a run.
    pub(super) closing: Arc<RwLock<WindowStore>>,
    query: PlannedQuery,
    /// The columns of `spans` the rollup reads.
    pub columns: KeptColumns,
}

impl Rollup {
    pub async fn new(config: &AnalyticsConfig) -> datafusion::error::Result<Rollup> {
        let closing = Arc::new(RwLock::new(WindowStore::default()));
        let (query, columns) = PlannedQuery::new(&closing, config.window, HISTORY_SQL, config.memory_limit()).await?;
        tracing::info!("History rollup planned.");
        Ok(Rollup {
            closing,
            query,
            columns,
        })
    }

    /// The rows `closed` adds to `history`; `None`, logged, when the rollup fails.
    pub async fn of(&self, closed: &ClosedWindow) -> Option<RecordBatch> {
        let hold = |windows: Vec<ClosedWindow>| {
            self.closing.write().unwrap_or_else(|e| e.into_inner()).windows = windows.into();
        };
        hold(vec![closed.clone()]);
        let result = self
            .query
            .run()
            .await
            .and_then(|batches| Ok(datafusion::arrow::compute::concat_batches(&tables::HISTORY, &batches)?))
            .and_then(|rollup| Ok(estimated_counts(rollup, closed.sampling_percentage)?));
        hold(Vec::new());
        result
            .inspect_err(|error| tracing::error!(%error, "Could not roll up the analytics window into history."))
            .ok()
    }
}

/// The rollup's counts of a window that kept `percentage` % of traces, scaled to estimates of
/// all its spans: windows kept at different shares then compare as baselines.
pub(super) fn estimated_counts(
    rollup: RecordBatch,
    percentage: f64,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    if percentage >= 100.0 {
        return Ok(rollup);
    }
    let factor = 100.0 / percentage;
    let schema = rollup.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(rollup.columns())
        .map(|(field, column)| match column.as_primitive_opt::<Int64Type>() {
            Some(counts) if HISTORY_COUNTS.contains(&field.name().as_str()) => {
                Arc::new(counts.unary::<_, Int64Type>(|count| (count as f64 * factor).round() as i64)) as ArrayRef
            }
            _ => Arc::clone(column),
        })
        .collect();
    RecordBatch::try_new(schema, columns)
}

pub(super) fn integrations_batch(
    registry: &crate::registry::Registry,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let column = |f: &dyn Fn(&crate::registry::Integration) -> Option<String>| -> ArrayRef {
        Arc::new(registry.integrations.iter().map(f).collect::<StringArray>())
    };
    RecordBatch::try_new(
        tables::INTEGRATIONS.clone(),
        vec![
            column(&|i| Some(i.id.clone())),
            column(&|i| Some(i.name.clone())),
            column(&|i| Some(i.category.clone())),
            column(&|i| Some(i.kind.clone())),
            column(&|i| Some(i.connection.as_str().to_owned())),
            column(&|i| Some(i.layers.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(","))),
            column(&|i| i.governance.as_ref().and_then(|g| g.owner.clone())),
        ],
    )
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn rollup(spans: i64, errors: i64, tokens: i64, p95: f64) -> RecordBatch {
        let count = |n: i64| Arc::new(Int64Array::from(vec![n])) as ArrayRef;
        let schema = Arc::new(Schema::new(vec![
            Field::new("spans", DataType::Int64, false),
            Field::new("errors", DataType::Int64, false),
            Field::new("p95_duration_ms", DataType::Float64, true),
            Field::new("input_tokens", DataType::Int64, false),
        ]));
        let p95 = Arc::new(Float64Array::from(vec![p95])) as ArrayRef;
        RecordBatch::try_new(schema, vec![count(spans), count(errors), p95, count(tokens)]).expect("rollup")
    }

    /// Guarantees: a sampled window's counts and tokens are scaled by 100 / percentage, its
    /// percentiles are not, and a window that kept every trace is left as it is.
    #[test]
    fn sampled_rollups_estimate_every_span() {
        assert_eq!(
            estimated_counts(rollup(30, 3, 1_000, 12.5), 25.0).expect("scaled"),
            rollup(120, 12, 4_000, 12.5)
        );
        assert_eq!(
            estimated_counts(rollup(7, 1, 10, 3.0), 30.0).expect("scaled"),
            rollup(23, 3, 33, 3.0)
        );
        assert_eq!(
            estimated_counts(rollup(30, 3, 1_000, 12.5), 100.0).expect("kept"),
            rollup(30, 3, 1_000, 12.5)
        );
    }
}
