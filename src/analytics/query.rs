//! Ad-hoc SQL over the live windows: `POST /query` on the metrics port of a running
//! fleetpipe, and `fleetpipe query`, its client.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::response::IntoResponse;
use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use http::StatusCode;

use super::detector;
use super::window::{WindowSource, WindowStore};

/// Runs queries against the windows retained by a running analytics exporter.
#[derive(Clone)]
pub struct QueryService {
    store: Arc<RwLock<WindowStore>>,
    retention: Duration,
    memory_limit: usize,
}

/// `POST /query`: SQL in the body, [`Rows`] as JSON out; 400 with `{"error": …}` when the
/// query is refused. Served on the metrics endpoint.
pub fn router(service: QueryService) -> axum::Router {
    axum::Router::new().route(
        "/query",
        axum::routing::post(move |sql: String| async move {
            match service.run(&sql).await {
                Ok(rows) => (StatusCode::OK, axum::Json(rows)).into_response(),
                Err(error) => {
                    let body = serde_json::json!({"error": error.to_string()});
                    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
                }
            }
        }),
    )
}

/// A query result as text cells: column names and rows, nulls as `None`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Columns the query read that the windows leave out (`table.column`): null here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

impl QueryService {
    pub fn new(store: Arc<RwLock<WindowStore>>, retention: Duration, memory_limit: usize) -> QueryService {
        QueryService {
            store,
            retention,
            memory_limit,
        }
    }

    pub async fn run(&self, sql: &str) -> datafusion::error::Result<Rows> {
        let source = WindowSource::new(&self.store, self.retention);
        let context = detector::session(&source, self.memory_limit)?;
        let frame = context.sql(sql).await?;
        let left_out = self.left_out(&context, frame.logical_plan())?;
        let _pinned = source.pin();
        let batches = frame.collect().await?;
        Ok(Rows {
            left_out,
            ..rows(&batches)
        })
    }

    /// The columns `plan` reads that the windows do not build.
    fn left_out(&self, context: &SessionContext, plan: &LogicalPlan) -> datafusion::error::Result<Vec<String>> {
        let kept = self.store.read().unwrap_or_else(|e| e.into_inner()).kept;
        let mut left_out = Vec::new();
        detector::scans(context, plan, |table, positions| {
            left_out.extend(
                kept.left_out(table, positions)
                    .into_iter()
                    .map(|c| format!("{table}.{c}")),
            );
        })?;
        left_out.sort();
        left_out.dedup();
        Ok(left_out)
    }
}

/// Formats batches as text cells.
pub fn rows(batches: &[RecordBatch]) -> Rows {
    let columns = batches
        .first()
        .map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect())
        .unwrap_or_default();
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok())
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(column, formatter)| match (column.is_null(row), formatter) {
                        (false, Some(f)) => Some(f.value(row).to_string()),
                        _ => None,
                    })
                    .collect(),
            );
        }
    }
    Rows {
        columns,
        rows,
        left_out: Vec::new(),
    }
}

impl Rows {
    /// An aligned text table.
    pub fn table(&self) -> String {
        let cell = |c: &Option<String>| c.clone().unwrap_or_else(|| "NULL".into());
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &self.rows {
            for (width, value) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell(value).chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join(" | ")
                .trim_end()
                .to_owned()
        };
        let mut out = vec![
            line(self.columns.clone()),
            widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"),
        ];
        out.extend(self.rows.iter().map(|r| line(r.iter().map(cell).collect())));
        out.push(format!("({} rows)", self.rows.len()));
        out.join("\n") + "\n"
    }

    /// RFC 4180 CSV with a header line; nulls are empty fields.
    pub fn csv(&self) -> String {
        let field = |text: &str| {
            if text.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", text.replace('"', "\"\""))
            } else {
                text.to_owned()
            }
        };
        let mut out = self.columns.iter().map(|c| field(c)).collect::<Vec<_>>().join(",") + "\n";
        for row in &self.rows {
            out += &(row
                .iter()
                .map(|c| field(c.as_deref().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
                + "\n");
        }
        out
    }

    /// One JSON object per row.
    pub fn json(&self) -> String {
        let objects: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|row| {
                serde_json::Value::Object(
                    self.columns
                        .iter()
                        .cloned()
                        .zip(
                            row.iter()
                                .map(|c| c.clone().map_or(serde_json::Value::Null, serde_json::Value::String)),
                        )
                        .collect(),
                )
            })
            .collect();
        serde_json::to_string_pretty(&objects).unwrap_or_default() + "\n"
    }
}

/// The `--schema` text: every table and its columns.
pub fn schema_text() -> String {
    let mut out = String::new();
    for (name, schema) in crate::rows::all() {
        out.push_str(&format!("{name}\n"));
        for field in schema.fields() {
            let nullable = if field.is_nullable() { "" } else { " NOT NULL" };
            out.push_str(&format!("  {:<24} {}{nullable}\n", field.name(), field.data_type()));
        }
    }
    out
}
