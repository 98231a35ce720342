//! `fleetpipe report`: the fleet performance report, computed by the SQL of `queries/report/`
//! over the Parquet archive, as JSON or Markdown.
//!
//! This is the report's first part: the fleet summary, the integration scorecards' calls,
//! errors and p95 latency, the agents and the shadow integrations. Cost (the price table),
//! time ranges, comparison with the previous period and the HTML page come next.

use std::path::Path;

use datafusion::arrow::json::ArrayWriter;
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use crate::analytics::query;
use crate::archive::{self, ArchiveError, Period};

/// The report's sections, each one query of `queries/report/`, built into the binary.
const SECTIONS: [(&str, &str); 4] = [
    ("summary", include_str!("../../queries/report/summary.sql")),
    ("integrations", include_str!("../../queries/report/integrations.sql")),
    ("agents", include_str!("../../queries/report/agents.sql")),
    ("shadow", include_str!("../../queries/report/shadow.sql")),
];

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A section's query failed: our bug, or an archive of another schema.
    #[error("report section {section}: {source}")]
    Query {
        section: &'static str,
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// Rows could not be written as JSON (our bug).
    #[error("report section {section}: {source}")]
    Json {
        section: &'static str,
        #[source]
        source: datafusion::arrow::error::ArrowError,
    },
}

/// The report's sections, each the rows of its query.
pub struct Report {
    sections: Vec<(&'static str, Vec<RecordBatch>)>,
}

impl Report {
    /// Runs every section's query over the records of `period` in the archive in `archive`.
    pub async fn over(archive: &Path, period: Period) -> Result<Report, ReportError> {
        let context = archive::session(archive, period).await?;
        let mut sections = Vec::new();
        for (section, sql) in SECTIONS {
            let query = |source| ReportError::Query { section, source };
            let batches = context.sql(sql).await.map_err(query)?.collect().await.map_err(query)?;
            sections.push((section, batches));
        }
        Ok(Report { sections })
    }

    /// As JSON: `summary` an object, every other section an array of rows, columns named as
    /// the queries name them, numbers as numbers.
    pub fn json(&self) -> Result<Value, ReportError> {
        let mut report = Map::new();
        for (section, batches) in &self.sections {
            let rows = json_rows(batches).map_err(|source| ReportError::Json { section, source })?;
            let value = match *section {
                "summary" => rows.into_iter().next().unwrap_or(Value::Object(Map::new())),
                _ => Value::Array(rows),
            };
            report.insert((*section).to_owned(), value);
        }
        // Not computed yet: no price table covers the archive's tokens.
        if let Some(Value::Object(summary)) = report.get_mut("summary") {
            summary.insert("cost_usd".into(), Value::Null);
        }
        report.insert("anomalies".into(), Value::Array(Vec::new()));
        Ok(Value::Object(report))
    }

    /// As Markdown: the summary as a list, every other section as a table, columns in the
    /// queries' order.
    pub fn markdown(&self) -> String {
        let mut out = String::from("# Fleet performance report\n");
        for (section, batches) in &self.sections {
            let rows = query::rows(batches);
            out.push_str(&format!("\n## {section}\n\n"));
            if *section == "summary" {
                for (column, value) in rows.columns.iter().zip(rows.rows.first().into_iter().flatten()) {
                    out.push_str(&format!("- {column}: {}\n", value.as_deref().unwrap_or("")));
                }
                continue;
            }
            if rows.rows.is_empty() {
                out.push_str("None in this period.\n");
                continue;
            }
            out.push_str(&format!(
                "| {} |\n|{}\n",
                rows.columns.join(" | "),
                " --- |".repeat(rows.columns.len())
            ));
            for row in &rows.rows {
                let cells: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap_or("")).collect();
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
        }
        out
    }
}

/// Record batches as JSON objects, numbers as numbers, nulls left out.
fn json_rows(batches: &[RecordBatch]) -> Result<Vec<Value>, datafusion::arrow::error::ArrowError> {
    let mut writer = ArrayWriter::new(Vec::new());
    writer.write_batches(&batches.iter().collect::<Vec<_>>())?;
    writer.finish()?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes).map_err(|e| datafusion::arrow::error::ArrowError::JsonError(e.to_string()))
}
