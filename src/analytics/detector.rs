//! Detectors: one SQL file each in `queries/`, a header of `-- key: value` comments and one
//! query whose rows are findings. Each is planned once against the window tables and
//! executed on every run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::TaskContext;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{SessionConfig, SessionContext};

use super::window::{Table, WindowSource, WindowStore, WindowTable};
use crate::govern::GENAI_CONTENT;
use crate::rows::KeptColumns;

/// How serious a detector's findings are; mapped to OTLP log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Severity> {
        match text.trim().to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// OTLP `SeverityNumber`: INFO, WARN, WARN, ERROR, FATAL.
    pub fn otlp_number(self) -> i32 {
        match self {
            Severity::Info => 9,
            Severity::Low | Severity::Medium => 13,
            Severity::High => 17,
            Severity::Critical => 21,
        }
    }
}

/// A detector file, parsed.
#[derive(Debug, Clone)]
pub struct Detector {
    pub name: String,
    pub description: String,
    pub severity: Severity,
    /// How often it runs.
    pub every: Duration,
    /// How far back the record tables reach.
    pub window: Duration,
    /// Columns that identify one ongoing anomaly; all text columns when not given.
    pub key: Option<Vec<String>>,
    /// Overrides of the analytics settings of the same names.
    pub reminder_interval: Option<Duration>,
    pub resolve_after: Option<u32>,
    pub sql: String,
    pub file: PathBuf,
    /// Lines before the query starts, to report query errors at file lines.
    pub header_lines: usize,
}

/// A detector file that cannot be used: the detector author's to fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file} (line {line}): {message}")]
pub struct DetectorError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Detector {
    /// Parses a detector file. Durations in the header may be given in analytics windows
    /// (`every: 1 window`, `window: 3 windows`); `analytics_window` is also the default `every`.
    pub fn parse(file: &Path, text: &str, analytics_window: Duration) -> Result<Detector, DetectorError> {
        let error = |line: usize, message: String| DetectorError {
            file: file.display().to_string(),
            line,
            message,
        };
        let mut fields = BTreeMap::new();
        let mut header_lines = 0;
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            let Some(comment) = trimmed.strip_prefix("--") else {
                if trimmed.is_empty() {
                    header_lines = index + 1;
                    continue;
                }
                break;
            };
            header_lines = index + 1;
            if let Some((key, value)) = comment.split_once(':') {
                let key = key.trim().to_ascii_lowercase();
                if matches!(
                    key.as_str(),
                    "name"
                        | "description"
                        | "severity"
                        | "every"
                        | "window"
                        | "key"
                        | "reminder_interval"
                        | "resolve_after"
                ) {
                    fields.insert(key, (index + 1, value.trim().to_owned()));
                }
            }
        }
        let sql: String = text.lines().skip(header_lines).collect::<Vec<_>>().join("\n");
        if sql.trim().is_empty() {
            return Err(error(header_lines.max(1), "no query after the header".into()));
        }
        if let Some((line, key)) = names_content(&sql) {
            return Err(error(
                header_lines + line,
                format!("reads GenAI content (`{key}`): findings go to every logs exporter and never carry content"),
            ));
        }
        let get = |key: &str| fields.get(key).map(|(line, value)| (*line, value.as_str()));
        let duration = |key: &str, default: Duration| match get(key) {
            Some((line, value)) => parse_duration(value, analytics_window).ok_or_else(|| {
                error(
                    line,
                    format!("`{key}: {value}` is not a duration (e.g. `30s`, `2 windows`)"),
                )
            }),
            None => Ok(default),
        };
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let severity = match get("severity") {
            Some((line, value)) => Severity::parse(value).ok_or_else(|| {
                error(
                    line,
                    format!("unknown severity `{value}` (info, low, medium, high, critical)"),
                )
            })?,
            None => Severity::Medium,
        };
        let every = duration("every", analytics_window)?;
        let reminder_interval = match get("reminder_interval") {
            Some(_) => Some(duration("reminder_interval", every)?),
            None => None,
        };
        let resolve_after = match get("resolve_after") {
            Some((line, value)) => Some(value.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                error(
                    line,
                    format!("`resolve_after: {value}` is not a count of runs (1 or more)"),
                )
            })?),
            None => None,
        };
        Ok(Detector {
            name: get("name").map_or(stem, |(_, v)| v.to_owned()),
            description: get("description").map(|(_, v)| v.to_owned()).unwrap_or_default(),
            severity,
            every,
            window: duration("window", every)?,
            key: get("key").map(|(_, v)| {
                v.split(',')
                    .map(|k| k.trim().to_owned())
                    .filter(|k| !k.is_empty())
                    .collect()
            }),
            reminder_interval,
            resolve_after,
            sql,
            file: file.to_owned(),
            header_lines,
        })
    }
}

/// The first line of a query (from 1) that names a GenAI content key, and the key.
fn names_content(sql: &str) -> Option<(usize, &'static str)> {
    sql.lines().enumerate().find_map(|(index, line)| {
        GENAI_CONTENT
            .iter()
            .map(|key| key.trim_end_matches(['*', '.']))
            .find(|key| line.contains(key))
            .map(|key| (index + 1, key))
    })
}

/// `30s`, `5m`, or a count of analytics windows: `1 window`, `3 windows`.
fn parse_duration(text: &str, window: Duration) -> Option<Duration> {
    let windows = text.strip_suffix("windows").or_else(|| text.strip_suffix("window"));
    match windows {
        Some(count) => Some(window * count.trim().parse::<u32>().ok()?),
        None => humantime::parse_duration(text).ok(),
    }
}

/// A query planned once, down to DataFusion's physical plan, over the window tables: each
/// run executes the same plan, its scans reading the store as it is when the run starts.
/// Runs must not overlap: the pinned store, and state a reset plan still shares with its
/// template (a scalar subquery's results), belong to the run in progress.
pub struct PlannedQuery {
    source: Arc<WindowSource>,
    task: Arc<TaskContext>,
    plan: Arc<dyn ExecutionPlan>,
}

impl PlannedQuery {
    /// Plans `sql` over the tables of `store`, whose record tables reach `span` back from the
    /// newest window; also returns the record-table columns the query reads.
    pub async fn new(
        store: &Arc<RwLock<WindowStore>>,
        span: Duration,
        sql: &str,
        memory_limit: usize,
    ) -> datafusion::error::Result<(PlannedQuery, KeptColumns)> {
        let source = WindowSource::new(store, span);
        let context = session(&source, memory_limit)?;
        let state = context.state();
        let logical = state.create_logical_plan(sql).await?;
        let mut columns = KeptColumns::WINDOW_START;
        scans(&context, &logical, |table, positions| columns.keep(table, positions))?;
        let plan = state.create_physical_plan(&logical).await?;
        let query = PlannedQuery {
            source,
            task: context.task_ctx(),
            plan,
        };
        Ok((query, columns))
    }

    /// Runs the planned query over the current windows.
    pub async fn run(&self) -> datafusion::error::Result<Vec<RecordBatch>> {
        let _pinned = self.source.pin();
        // Operators keep what their last run built (a join's hashed side, for one).
        let plan = reset_plan_states(Arc::clone(&self.plan))?;
        collect(plan, Arc::clone(&self.task)).await
    }
}

/// A detector planned against the window tables.
pub struct Prepared {
    pub detector: Detector,
    query: PlannedQuery,
    /// The record-table columns the query reads.
    pub columns: KeptColumns,
}

/// A fresh session whose tables read `source`, under a memory limit.
pub fn session(source: &Arc<WindowSource>, memory_limit: usize) -> datafusion::error::Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(memory_limit, 1.0)
        .build_arc()?;
    // Dynamic filters are state a plan's operators share while it runs; without them a plan
    // runs again once its state is reset (`reset_plan_states`), and tables in memory lose
    // nothing by it.
    let config = SessionConfig::new()
        .with_target_partitions(std::thread::available_parallelism().map_or(1, usize::from))
        .with_information_schema(false)
        .set_bool("datafusion.optimizer.enable_dynamic_filter_pushdown", false);
    let context = SessionContext::new_with_config_rt(config, runtime);
    for table in Table::ALL {
        let provider = WindowTable {
            source: Arc::clone(source),
            table,
        };
        context.register_table(table.name(), Arc::new(provider))?;
    }
    Ok(context)
}

impl Prepared {
    /// Plans the detector's query; planning errors name the file and line.
    pub async fn new(
        detector: Detector,
        store: &Arc<RwLock<WindowStore>>,
        memory_limit: usize,
    ) -> Result<Prepared, DetectorError> {
        let located = |message: String| {
            let line = sql_line(&message).map_or(detector.header_lines + 1, |l| detector.header_lines + l);
            DetectorError {
                file: detector.file.display().to_string(),
                line,
                message,
            }
        };
        let (query, columns) = PlannedQuery::new(store, detector.window, &detector.sql, memory_limit)
            .await
            .map_err(|e| located(e.to_string()))?;
        Ok(Prepared {
            detector,
            query,
            columns,
        })
    }

    /// Runs the detector's query over the current windows.
    pub async fn run(&self) -> datafusion::error::Result<Vec<RecordBatch>> {
        self.query.run().await
    }
}

/// Calls `scanned` with each table the plan scans and the positions of the columns it reads
/// there (`None`: all), as DataFusion's optimizer leaves them once it has pushed the plan's
/// projections down into its scans.
pub fn scans(
    context: &SessionContext,
    plan: &LogicalPlan,
    mut scanned: impl FnMut(&str, Option<&[usize]>),
) -> datafusion::error::Result<()> {
    let optimized = context.state().optimize(plan)?;
    optimized.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            scanned(scan.table_name.table(), scan.projection.as_deref());
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(())
}

/// The query line in a SQL parser message ("… at Line: 3, Column: 7").
fn sql_line(message: &str) -> Option<usize> {
    let rest = &message[message.find("Line: ")? + "Line: ".len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: header fields are read, `window` defaults to `every`, the query follows.
    #[test]
    fn parses_header() {
        let text = "-- name: loop\n-- description: Same tool again and again.\n-- severity: high\n-- every: 5s\n-- key: agent, tool_name\n\nSELECT 1\n";
        let in_windows = "-- every: 1 window\n-- window: 3 windows\nSELECT 1";
        let detector = Detector::parse(Path::new("q.sql"), in_windows, Duration::from_secs(2)).expect("valid");
        assert_eq!(
            (detector.every, detector.window),
            (Duration::from_secs(2), Duration::from_secs(6))
        );
        let detector = Detector::parse(Path::new("queries/loop.sql"), text, Duration::from_secs(10)).expect("valid");
        assert_eq!(detector.name, "loop");
        assert_eq!(detector.severity, Severity::High);
        assert_eq!(detector.every, Duration::from_secs(5));
        assert_eq!(detector.window, Duration::from_secs(5));
        assert_eq!(detector.key, Some(vec!["agent".to_owned(), "tool_name".to_owned()]));
        assert_eq!(detector.sql.trim(), "SELECT 1");
        assert_eq!(detector.header_lines, 6);
    }

    /// Guarantees: a bad header value is reported at its line.
    #[test]
    fn bad_header_value_has_line() {
        let error = Detector::parse(
            Path::new("q.sql"),
            "-- name: x\n-- every: soon\nSELECT 1",
            Duration::from_secs(1),
        )
        .expect_err("bad every");
        assert_eq!(error.line, 2);
        assert!(error.message.contains("not a duration"), "{}", error.message);
    }

    /// Guarantees: a detector reading GenAI content is refused at the line that names it.
    #[test]
    fn a_detector_reading_content_is_refused_at_its_line() {
        let error = Detector::parse(
            Path::new("leak.sql"),
            "-- name: leak\nSELECT service_name,\n  attributes['gen_ai.input.messages'] AS prompt\nFROM spans",
            Duration::from_secs(1),
        )
        .expect_err("content");
        assert_eq!((error.file.as_str(), error.line), ("leak.sql", 3));
        assert!(error.message.contains("`gen_ai.input.messages`"), "{}", error.message);
    }

    /// Guarantees: a syntax error in the query is reported at its line in the file.
    #[tokio::test]
    async fn syntax_error_has_file_line() {
        let store = Arc::new(RwLock::new(WindowStore::default()));
        let text =
            "-- name: broken\n-- every: 1s\nSELECT agent,\n  count(*)\nFROM spans\nGROUP BY agent\nHAVING count( > 3";
        let detector = Detector::parse(Path::new("queries/broken.sql"), text, Duration::from_secs(1)).expect("header");
        let Err(error) = Prepared::new(detector, &store, 64 << 20).await else {
            panic!("syntax error expected")
        };
        assert_eq!(error.line, 7, "{error}");
        assert!(
            error.to_string().starts_with("queries/broken.sql (line 7): "),
            "{error}"
        );
    }

    /// A closed window from `start` holding `spans` spans of `agent`, every column kept.
    fn window_of(start: i64, agent: &str, spans: usize) -> crate::analytics::window::ClosedWindow {
        crate::analytics::window::tests::window_of(start, KeptColumns::ALL, Some(agent), spans)
    }

    /// Guarantees: a detector planned once, before any window closed, reads each new window
    /// on each run, through a join and a subquery (operators that keep what they built): the
    /// same rows out for the same window, new rows for a new one, none before the first.
    #[tokio::test]
    async fn each_run_reads_the_windows_closed_by_then() {
        let store = Arc::new(RwLock::new(WindowStore::default()));
        let sql = "-- window: 100s\n\
            SELECT s.agent, count(*) AS spans, max(w.rows) AS window_rows FROM spans s \
            JOIN windows w ON s.window_start = w.window_start \
            WHERE s.window_start = (SELECT max(window_start) FROM windows) \
            GROUP BY s.agent ORDER BY s.agent";
        let detector = Detector::parse(Path::new("q.sql"), sql, Duration::from_secs(10)).expect("header");
        let prepared = Prepared::new(detector, &store, 64 << 20).await.expect("plans");
        let run = || async { crate::analytics::query::rows(&prepared.run().await.expect("runs")).rows };
        let row =
            |agent: &str, spans: u32| vec![Some(agent.to_owned()), Some(spans.to_string()), Some(spans.to_string())];
        let close = |window| store.write().expect("store").windows.push_back(window);
        assert!(run().await.is_empty());
        close(window_of(0, "planner", 3));
        assert_eq!(run().await, [row("planner", 3)]);
        assert_eq!(run().await, [row("planner", 3)]);
        close(window_of(10, "triage", 5));
        assert_eq!(run().await, [row("triage", 5)]);
    }

    /// Guarantees: the history rollup, planned once, rolls up each window it is given (that
    /// window's rows only) and holds no window between runs.
    #[tokio::test]
    async fn the_rollup_reads_each_window_it_is_given() {
        let config = crate::analytics::AnalyticsConfig {
            window: Duration::from_secs(10),
            ..Default::default()
        };
        let rollup = crate::analytics::Rollup::new(&config).await.expect("plans");
        let agents_and_spans = |batch: RecordBatch| {
            let rows = crate::analytics::query::rows(&[batch]);
            let column = |name: &str| rows.columns.iter().position(|c| c == name).expect("column");
            let (agent, spans) = (column("agent"), column("spans"));
            rows.rows
                .iter()
                .map(|row| {
                    (
                        row[agent].clone().unwrap_or_default(),
                        row[spans].clone().unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let first = rollup.of(&window_of(0, "planner", 3)).await.expect("rolled up");
        assert_eq!(agents_and_spans(first), [("planner".to_owned(), "3".to_owned())]);
        let second = rollup.of(&window_of(10, "triage", 5)).await.expect("rolled up");
        assert_eq!(agents_and_spans(second), [("triage".to_owned(), "5".to_owned())]);
        assert!(rollup.closing.read().expect("store").windows.is_empty());
    }

    /// One `history` row of integration `jira` with these counts (`spans` and `errors` scaled as
    /// a sampled window's are, `kept_spans` not).
    fn jira_history(start: i64, spans: i64, kept_spans: i64, errors: i64) -> (i64, RecordBatch) {
        use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampNanosecondArray};
        let text = |value: &str| Arc::new(StringArray::from(vec![value])) as ArrayRef;
        let count = |value: i64| Arc::new(Int64Array::from(vec![value])) as ArrayRef;
        let start_nanos = start * 1_000_000_000;
        let columns = vec![
            Arc::new(TimestampNanosecondArray::from(vec![start_nanos]).with_timezone("UTC")) as ArrayRef,
            text("planner"),
            text("strategy"),
            text("jira"),
            text("jira_search"),
            count(spans),
            count(kept_spans),
            count(errors),
            count(0),
            Arc::new(Float64Array::from(vec![20.0])) as ArrayRef,
            count(0),
            count(0),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&crate::rows::HISTORY), columns).expect("history row");
        (start_nanos, batch)
    }

    /// Scenario: a window that kept 10 % of traces holds one integration's calls; its history
    /// counts are estimates (ten times the kept spans).
    /// Guarantees: error-rate-spike fires on a high error share only with at least 10 kept
    /// calls behind it, so a few kept errors scaled up are not taken for a spike.
    #[tokio::test]
    async fn error_rate_spike_wants_ten_kept_calls() {
        let text = include_str!("../../queries/error_rate_spike.sql");
        let detector =
            Detector::parse(Path::new("error_rate_spike.sql"), text, Duration::from_secs(10)).expect("header");
        let store = Arc::new(RwLock::new(WindowStore::default()));
        let prepared = Prepared::new(detector, &store, 64 << 20).await.expect("plans");
        let findings = |current: (i64, RecordBatch)| {
            let mut sampled = window_of(40, "planner", 0);
            sampled.start = current.0;
            sampled.end = current.0 + 10_000_000_000;
            sampled.sampling_percentage = 10.0;
            let mut held = store.write().expect("store");
            *held = WindowStore::default();
            held.history = (0..4).map(|window| jira_history(window * 10, 200, 200, 2)).collect();
            held.history.push_back(current);
            held.windows.push_back(sampled);
            drop(held);
            async {
                crate::analytics::query::rows(&prepared.run().await.expect("runs"))
                    .rows
                    .len()
            }
        };
        assert_eq!(findings(jira_history(40, 90, 9, 90)).await, 0);
        assert_eq!(findings(jira_history(40, 100, 10, 50)).await, 1);
    }

    /// Guarantees: a query naming an unknown column fails at planning, not at run time.
    #[tokio::test]
    async fn unknown_column_fails_planning() {
        let store = Arc::new(RwLock::new(WindowStore::default()));
        let detector =
            Detector::parse(Path::new("q.sql"), "SELECT nonsense FROM spans", Duration::from_secs(1)).expect("header");
        assert!(Prepared::new(detector, &store, 64 << 20).await.is_err());
    }

    /// Guarantees: a detector reads the columns its query names, wherever in the query
    /// (filters, subqueries), plus `window_start`; `SELECT *` reads them all.
    #[tokio::test]
    async fn columns_are_those_the_query_reads() {
        let store = Arc::new(RwLock::new(WindowStore::default()));
        let prepare = |sql: &'static str| {
            let detector = Detector::parse(Path::new("q.sql"), sql, Duration::from_secs(1)).expect("header");
            Prepared::new(detector, &store, 64 << 20)
        };
        let kept = |prepared: &Prepared, table: &str| -> Vec<String> {
            let left_out = prepared.columns.left_out(table, None);
            let schema = Table::ALL
                .into_iter()
                .find(|t| t.name() == table)
                .expect("table")
                .schema();
            schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|name| !left_out.contains(name))
                .collect()
        };
        let narrow = prepare(
            "SELECT agent, count(*) FROM spans WHERE tool_name IS NOT NULL \
             AND trace_id IN (SELECT trace_id FROM logs WHERE severity_number > 16) GROUP BY agent",
        )
        .await
        .expect("plans");
        assert_eq!(
            kept(&narrow, "spans"),
            ["window_start", "trace_id", "agent", "tool_name"]
        );
        assert_eq!(kept(&narrow, "logs"), ["window_start", "severity_number", "trace_id"]);
        assert_eq!(kept(&narrow, "metric_points"), ["window_start"]);
        let everything = prepare("SELECT * FROM metric_points").await.expect("plans");
        assert!(everything.columns.left_out("metric_points", None).is_empty());
    }
}
