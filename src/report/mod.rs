//! `fleetpipe report`: the fleet performance report, computed by the SQL of `queries/report/`
//! over the Parquet archive, as JSON, Markdown or a self-contained HTML page.
//!
//! The queries read the views of `views.sql` (priced spans, inference calls, calls to
//! integrations, findings); the cost is the price table's (`prices.rs`) at report time, so a
//! price change re-prices the whole archive. Every format is drawn from one [`Report`].

mod html;
mod markdown;
mod present;
mod prices;
mod shadow;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::json::ArrayWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::archive::{self, ArchiveError, Columns, Period};
use crate::config::Problem;
use crate::registry::shadow::ShadowTarget;
use crate::registry::suggest::Registered;
pub use prices::{Price, PriceTable, Tokens};

/// The views the sections read, created first (statements end with a `;` line).
const VIEWS: &str = include_str!("../../queries/report/views.sql");

/// Calls to tools and hosts the registry does not list.
const SHADOW: &str = include_str!("../../queries/report/shadow.sql");

/// `agents` and `layers`: one query of `queries/report/`, grouped two ways.
const INVOCATIONS: &str = include_str!("../../queries/report/invocations.sql");

/// The report's sections in the order they are shown, each one query of `queries/report/`,
/// built into the binary.
fn sections() -> [(&'static str, Cow<'static, str>); 13] {
    let grouped = |group: &str, name: &str, other: &str| {
        Cow::Owned(
            INVOCATIONS
                .replace("{group}", group)
                .replace("{name}", name)
                .replace("{other}", other),
        )
    };
    let sql = |text: &'static str| Cow::Borrowed(text);
    [
        ("summary", sql(include_str!("../../queries/report/summary.sql"))),
        ("timeline", sql(include_str!("../../queries/report/timeline.sql"))),
        (
            "layers",
            grouped("layer", "layer", "CAST(count(DISTINCT agent) AS BIGINT) AS agents"),
        ),
        ("agents", grouped("agent", "name", "max(layer) AS layer")),
        (
            "integrations",
            sql(include_str!("../../queries/report/integrations.sql")),
        ),
        ("errors", sql(include_str!("../../queries/report/errors.sql"))),
        ("tools", sql(include_str!("../../queries/report/tools.sql"))),
        ("mcp_servers", sql(include_str!("../../queries/report/mcp_servers.sql"))),
        (
            "slowest_traces",
            sql(include_str!("../../queries/report/slowest_traces.sql")),
        ),
        ("waste", sql(include_str!("../../queries/report/waste.sql"))),
        ("shadow", sql(SHADOW)),
        ("anomalies", sql(include_str!("../../queries/report/anomalies.sql"))),
        (
            "data_quality",
            sql(include_str!("../../queries/report/data_quality.sql")),
        ),
    ]
}

/// The `report` section of the configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Prices over the built-in table: contract prices, other models, later price changes.
    #[serde(default)]
    pub prices: Vec<Price>,
}

impl ReportConfig {
    /// Prices that cannot be, at `prices.<n>.<key>`.
    pub fn problems(&self) -> Vec<Problem> {
        self.prices
            .iter()
            .enumerate()
            .flat_map(|(n, price)| {
                price
                    .problems()
                    .into_iter()
                    .map(move |p| Problem::new(&format!("prices.{n}.{}", p.key), p.message))
            })
            .collect()
    }
}

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
    #[error("--compare previous needs a period with a start and an end (--since, or --from and --to)")]
    NoPreviousPeriod,
}

/// A section's rows, columns in the query's order.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
}

impl Table {
    /// The first row, or an empty one.
    fn first(&self) -> Map<String, Value> {
        self.rows.first().cloned().unwrap_or_default()
    }
}

/// The report's sections, each the rows of its query.
pub struct Report {
    period: Period,
    sections: Vec<(&'static str, Table)>,
    /// The summary of the period of equal length before, with `--compare previous`.
    previous: Option<Table>,
    configured_prices: usize,
}

impl Report {
    /// Runs every section's query over the records of `period` in the archive in `archive`,
    /// priced with `config`'s prices over the built-in ones; with `compare`, the summary of
    /// the period of equal length before too.
    pub async fn over(
        archive: &Path,
        period: Period,
        config: &ReportConfig,
        compare: bool,
    ) -> Result<Report, ReportError> {
        let sessions = Sessions::new(archive, config, &statements()).await?;
        let previous = match compare {
            true => {
                let previous = period.previous().ok_or(ReportError::NoPreviousPeriod)?;
                let context = sessions.over(previous).await?;
                let (summary, sql) = &sections()[0];
                Some(run_section(&context, summary, sql).await?)
            }
            false => None,
        };
        let context = sessions.over(period).await?;
        // The sections read the views and none reads another's rows: run together, they keep
        // every core busy where one query alone leaves some idle (`benches/report.sh`).
        let running: Vec<_> = sections()
            .into_iter()
            .chain([("shadow", Cow::Borrowed(shadow::REGISTERED))])
            .map(|(section, sql)| {
                let context = context.clone();
                (
                    section,
                    tokio::spawn(async move { run_section(&context, section, &sql).await }),
                )
            })
            .collect();
        let mut tables = Vec::new();
        for (section, running) in running {
            let table = running
                .await
                .unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()))?;
            tables.push((section, table));
        }
        let (_, registered) = tables.pop().expect("the registered integrations' query ran last");
        if let Some((_, shadow)) = tables.iter_mut().find(|(name, _)| *name == "shadow") {
            shadow::suggest(shadow, &registered);
        }
        Ok(Report {
            period,
            sections: tables,
            previous,
            configured_prices: config.prices.len(),
        })
    }

    /// As JSON: `period`, `prices` (where the built-in prices come from), `summary` an object
    /// (with `previous` when compared), every other section an array of rows, columns named
    /// as the queries name them, numbers as numbers.
    pub fn json(&self) -> Value {
        let mut report = Map::new();
        let time = |nanos: Option<i64>| nanos.map_or(Value::Null, |n| Value::String(rfc3339(n)));
        report.insert(
            "period".into(),
            serde_json::json!({"from": time(self.period.from), "to": time(self.period.to)}),
        );
        let (source, as_of) = PriceTable::built_in_source();
        report.insert(
            "prices".into(),
            serde_json::json!({"source": source, "as_of": as_of, "configured": self.configured_prices}),
        );
        for (section, table) in &self.sections {
            let value = match *section {
                "summary" => {
                    let mut summary = table.first();
                    if let Some(previous) = &self.previous {
                        summary.insert("previous".into(), Value::Object(previous.first()));
                    }
                    Value::Object(summary)
                }
                _ => Value::Array(table.rows.iter().cloned().map(Value::Object).collect()),
            };
            report.insert((*section).to_owned(), value);
        }
        Value::Object(report)
    }

    /// As Markdown: the summary as a list, every other section as a table.
    pub fn markdown(&self) -> String {
        markdown::render(self)
    }

    /// As one self-contained HTML page: no scripts, no network, charts as inline SVG.
    pub fn html(&self) -> String {
        html::render(self)
    }
}

/// The shadow targets of the whole archive and the integrations it saw registered, for
/// `fleetpipe registry suggest --archive`.
pub async fn shadow_targets(archive: &Path) -> Result<(Vec<ShadowTarget>, Vec<Registered>), ReportError> {
    let views = views().map(Cow::Borrowed);
    let statements: Vec<_> = views
        .chain([Cow::Borrowed(SHADOW), Cow::Borrowed(shadow::REGISTERED)])
        .collect();
    let sessions = Sessions::new(archive, &ReportConfig::default(), &statements).await?;
    let context = sessions.over(Period::default()).await?;
    let targets = run_section(&context, "shadow", SHADOW).await?;
    let registered = run_section(&context, "shadow", shadow::REGISTERED).await?;
    Ok((shadow::targets(&targets), shadow::registered_of(&registered)))
}

/// The archive's sessions of a report: the price table, and the columns its SQL reads.
struct Sessions<'a> {
    archive: &'a Path,
    prices: Arc<PriceTable>,
    columns: Columns,
}

impl<'a> Sessions<'a> {
    /// Sessions for `statements` (after the views).
    async fn new(
        archive: &'a Path,
        config: &ReportConfig,
        statements: &[Cow<'static, str>],
    ) -> Result<Sessions<'a>, ReportError> {
        let prices = Arc::new(PriceTable::new(&config.prices));
        let statements: Vec<&str> = statements.iter().map(AsRef::as_ref).collect();
        let columns = Columns::read_by(&statements, |context| context.register_udf(Arc::clone(&prices).udf()))
            .await
            .map_err(|source| ReportError::Query {
                section: "plan",
                source,
            })?;
        Ok(Sessions {
            archive,
            prices,
            columns,
        })
    }

    /// A session over `period` of the archive with `cost_usd` and the report's views.
    async fn over(&self, period: Period) -> Result<SessionContext, ReportError> {
        let context = archive::session(self.archive, period, &self.columns).await?;
        context.register_udf(Arc::clone(&self.prices).udf());
        for statement in views() {
            let query = |source| ReportError::Query {
                section: "views",
                source,
            };
            context.sql(statement).await.map_err(query)?;
        }
        Ok(context)
    }
}

fn views() -> impl Iterator<Item = &'static str> {
    VIEWS.split("\n;").filter(|s| s.lines().any(is_sql))
}

/// The report's statements in the order they run: the views, then the sections.
fn statements() -> Vec<Cow<'static, str>> {
    let sections = sections().into_iter().map(|(_, sql)| sql);
    let views = views().map(Cow::Borrowed);
    views
        .chain(sections)
        .chain([Cow::Borrowed(shadow::REGISTERED)])
        .collect()
}

/// Whether a line holds SQL, not only a comment or blanks.
fn is_sql(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with("--")
}

async fn run_section(context: &SessionContext, section: &'static str, sql: &str) -> Result<Table, ReportError> {
    let query = |source| ReportError::Query { section, source };
    let frame = context.sql(sql).await.map_err(query)?;
    let columns = frame.schema().fields().iter().map(|f| f.name().clone()).collect();
    let batches = frame.collect().await.map_err(query)?;
    let rows = json_rows(&batches).map_err(|source| ReportError::Json { section, source })?;
    Ok(Table { columns, rows })
}

/// Record batches as JSON objects, numbers as numbers, nulls left out.
fn json_rows(batches: &[RecordBatch]) -> Result<Vec<Map<String, Value>>, datafusion::arrow::error::ArrowError> {
    let mut writer = ArrayWriter::new(Vec::new());
    writer.write_batches(&batches.iter().collect::<Vec<_>>())?;
    writer.finish()?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes).map_err(|e| datafusion::arrow::error::ArrowError::JsonError(e.to_string()))
}

/// Nanoseconds since the epoch as an RFC 3339 UTC time, to the second.
fn rfc3339(nanos: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}
