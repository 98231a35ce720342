//! The archive exporter over the running binary: what fleetpipe receives is written as
//! Hive-partitioned Parquet that a second engine (pyarrow, from PyPI) reads with the same rows
//! and values, `fleetpipe query --archive` answers SQL over it, and a killed process leaves no
//! unreadable file behind; `fleetpipe report` computes the fleet's numbers from it.

#[path = "archive/objects.rs"]
mod objects;
#[path = "archive/report.rs"]
mod report;
#[path = "archive/spark.rs"]
mod spark;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fleetpipe::otlp::Payload;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use support::python::python;
use support::{Fleetpipe, fixtures, grpc_send, hex};

const FIXTURE: &str = include_str!("fixtures/operating-model/CONFIG.yaml");

/// A fleetpipe enriching every signal into an archive in `dir`, with `archive` settings.
async fn archiving(dir: &Path, archive: &str) -> Fleetpipe {
    Fleetpipe::start(&archiving_config(dir, archive)).await
}

/// The configuration of [`archiving`]; its archive's `path` is `'{dir}/archive'`.
fn archiving_config(dir: &Path, archive: &str) -> String {
    std::fs::write(dir.join("CONFIG.yaml"), FIXTURE).expect("registry");
    format!(
        "\
registry:
  path: '{dir}'
  agents: {{\"planner-*\": strategy, \"triage-*\": execution}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '@GRPC@'}}
      http: {{endpoint: '@HTTP@'}}
processors:
  enrich: {{}}
exporters:
  archive:
    path: '{dir}/archive'
{archive}
service:
  health: {{endpoint: '@HEALTH@'}}
  telemetry: {{metrics: {{endpoint: '@METRICS@'}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [enrich], exporters: [archive]}}
    metrics: {{receivers: [otlp], processors: [enrich], exporters: [archive]}}
    logs: {{receivers: [otlp], processors: [enrich], exporters: [archive]}}
",
        dir = dir.display()
    )
}

/// What pyarrow reads from the archive (see `tests/python/read_archive.py`).
fn read_archive(archive: &Path) -> serde_json::Value {
    python_json("tests/python/read_archive.py", &[archive.as_os_str()])
}

/// What the Python script `script` (a path in the repository) prints as JSON, run with `args`
/// in the tests' virtualenv.
fn python_json(script: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let output = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{script} prints JSON: {e}"))
}

/// Per span id (hex): the integration it should be attributed to and its input tokens, as
/// the test computes them from what it sends.
fn expected_spans(requests: &[ExportTraceServiceRequest]) -> BTreeMap<String, (Option<&'static str>, Option<i64>)> {
    let spans = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans);
    spans
        .map(|span| {
            let attribute = |key: &str| span.attributes.iter().find(|a| a.key == key)?.value.clone()?.value;
            let integration = match attribute("gen_ai.tool.name") {
                Some(Value::StringValue(tool)) if tool == "jira_search" => Some("work-tracking"),
                _ => None,
            };
            let tokens = match attribute("gen_ai.usage.input_tokens") {
                Some(Value::IntValue(tokens)) => Some(tokens),
                _ => None,
            };
            (hex(&span.span_id), (integration, tokens))
        })
        .collect()
}

/// Scenario: three agent traces of 40 spans, one request of every metric kind and five log
/// records go through `fleetpipe run` with enrichment into the archive; fleetpipe stops.
/// Guarantees: pyarrow reads every file; `table=spans` holds exactly the spans sent, each with
/// its integration, layer and tokens, partitioned by date and hour; every data point and log
/// record is there; no temporary file is left; `fleetpipe query --archive` counts the same.
#[tokio::test]
async fn archive_is_read_by_pyarrow_and_queried_with_the_rows_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleetpipe = archiving(dir.path(), "    max_file_age: 1s").await;
    let mut traces: Vec<_> = (0..3).map(|_| fixtures::agent_trace("planner-1", 40)).collect();
    // On 2023-11-14 (the fixture's times are spread by process id), durations kept.
    for span in traces
        .iter_mut()
        .flat_map(|r| &mut r.resource_spans)
        .flat_map(|r| &mut r.scope_spans)
        .flat_map(|s| &mut s.spans)
    {
        let duration = span.end_time_unix_nano - span.start_time_unix_nano;
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + (span.start_time_unix_nano % 1_000_000_000);
        span.end_time_unix_nano = span.start_time_unix_nano + duration;
    }
    let mut shadow_call = fixtures::span(
        "execute_tool confluence_search",
        SpanKind::Client,
        &[
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", "confluence_search"),
        ],
    );
    // Two days after the agent traces, for the report's periods.
    shadow_call.start_time_unix_nano += 2 * 86_400 * 1_000_000_000;
    shadow_call.end_time_unix_nano += 2 * 86_400 * 1_000_000_000;
    traces.push(fixtures::traces(&[("service.name", "planner-1")], vec![shadow_call]));
    for request in &traces {
        grpc_send(&fleetpipe.grpc_endpoint(), Payload::Traces(request.clone()), None)
            .await
            .expect("traces accepted");
    }
    let metrics = fixtures::all_metric_kinds("planner-1");
    let metrics = Payload::Metrics(metrics);
    let points = metrics.item_count();
    grpc_send(&fleetpipe.grpc_endpoint(), metrics, None)
        .await
        .expect("metrics accepted");
    grpc_send(
        &fleetpipe.grpc_endpoint(),
        Payload::Logs(fixtures::agent_logs("planner-1", 5)),
        None,
    )
    .await
    .expect("logs accepted");
    let (status, log) = fleetpipe.terminate().await;
    assert!(status.success(), "{log}");

    let read = read_archive(&dir.path().join("archive"));
    assert_eq!(read["unreadable"], serde_json::json!([]), "{read}");
    assert_eq!(read["hidden"], serde_json::json!([]), "temporary files left: {read}");
    let expected = expected_spans(&traces);
    assert_eq!(read["spans"]["rows"], expected.len());
    let spans = read["spans"]["spans"].as_object().expect("spans by id");
    assert_eq!(spans.len(), expected.len(), "every span once");
    for (span_id, (integration, tokens)) in &expected {
        let row = &spans[span_id];
        assert_eq!(row["integration_id"].as_str(), *integration, "{span_id}: {row}");
        assert_eq!(row["input_tokens"].as_i64(), *tokens, "{span_id}: {row}");
        assert_eq!(row["layer"], "strategy", "{span_id}: {row}");
        assert!(
            row["duration_ms"] == 0.5 || row["duration_ms"] == 500.0,
            "{span_id}: {row}"
        );
    }
    assert_eq!(tool_calls_of(&expected), 3 * 13, "the fixture's share of tool calls");
    let sql =
        "SELECT integration_id, count(*) AS spans, sum(input_tokens) AS input_tokens FROM spans GROUP BY 1 ORDER BY 1";
    let (csv, stderr) = query_archive(&dir.path().join("archive"), sql);
    let sum_tokens = |attributed: bool| -> i64 {
        expected
            .values()
            .filter(|(i, _)| i.is_some() == attributed)
            .filter_map(|(_, t)| *t)
            .sum()
    };
    let others = expected.len() - tool_calls_of(&expected);
    assert_eq!(
        csv,
        format!(
            "integration_id,spans,input_tokens\nwork-tracking,{},\n,{others},{}\n",
            tool_calls_of(&expected),
            sum_tokens(false)
        ),
        "{stderr}"
    );
    assert_eq!(sum_tokens(true), 0, "tool calls carry no tokens in the fixture");
    assert_report(&dir.path().join("archive"), &traces);
    let today = read["spans"]["dates"][0].as_str().expect("a date").to_owned();
    assert_eq!(today.len(), "2026-12-05".len(), "{read}");
    assert_eq!(read["metric_points"]["rows"], points);
    assert_eq!(read["logs"]["rows"], 5);
    let files = files_read(&read);
    assert!(
        files.iter().all(|f| {
            let parts: Vec<&str> = f.split('/').collect();
            parts.len() == 4
                && parts[0].starts_with("table=")
                && parts[1] == format!("date={today}")
                && parts[2].starts_with("hour=")
                && parts[3].starts_with("part-")
                && parts[3].ends_with(".parquet")
        }),
        "{files:?}"
    );
}

/// Scenario: fleetpipe is killed (SIGKILL) while the archive's files are open, then started
/// again and stopped cleanly after more spans.
/// Guarantees: the kill leaves only hidden temporary files, which no reader lists and every
/// Parquet file left is readable; the next start removes them, and what it archives is read.
#[tokio::test]
async fn kill_leaves_no_unreadable_file_and_restart_cleans_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("archive");
    let fleetpipe = archiving(dir.path(), "    max_file_age: 1h").await;
    grpc_send(
        &fleetpipe.grpc_endpoint(),
        Payload::Traces(fixtures::agent_trace("planner-1", 40)),
        None,
    )
    .await
    .expect("accepted");
    let mut hidden = Vec::new();
    for _ in 0..100 {
        hidden = read_hidden(&archive);
        if !hidden.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!hidden.is_empty(), "an open file while writing");
    drop(fleetpipe); // SIGKILL
    let read = read_archive(&archive);
    assert_eq!(read["unreadable"], serde_json::json!([]), "{read}");
    assert_eq!(read["files"], serde_json::json!([]), "{read}");
    assert_eq!(read["spans"]["rows"], 0, "{read}");

    let fleetpipe = archiving(dir.path(), "    max_file_age: 1h").await;
    assert_eq!(
        read_hidden(&archive),
        Vec::<String>::new(),
        "temporary files removed at start"
    );
    assert!(fleetpipe.log().contains("Removed the archive's unfinished files"));
    let trace = fixtures::agent_trace("planner-1", 10);
    grpc_send(&fleetpipe.grpc_endpoint(), Payload::Traces(trace.clone()), None)
        .await
        .expect("accepted");
    let (status, log) = fleetpipe.terminate().await;
    assert!(status.success(), "{log}");
    let read = read_archive(&archive);
    assert_eq!(read["unreadable"], serde_json::json!([]), "{read}");
    assert_eq!(read["spans"]["rows"], 10, "{read}");
    let ids: Vec<String> = trace.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| hex(&s.span_id))
        .collect();
    for id in ids {
        assert!(read["spans"]["spans"].get(&id).is_some(), "{id} in {read}");
    }
}

/// Scenario (issue 30): two fleetpipes archive into one root, the second started while the
/// first has a file open; each gets traces of its own; both stop.
/// Guarantees: the second does not remove the first's unfinished file at its start; every
/// file name carries its writer's instance; `fleetpipe report` counts every span once, and
/// the Spark command gives the same summary.
#[tokio::test]
async fn two_replicas_archive_into_one_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("archive");
    let first = archiving(dir.path(), "    max_file_age: 1h").await;
    let traces = [
        fixtures::agent_trace("planner-1", 30),
        fixtures::agent_trace("planner-2", 20),
    ];
    grpc_send(&first.grpc_endpoint(), Payload::Traces(traces[0].clone()), None)
        .await
        .expect("accepted");
    for _ in 0..100 {
        if !read_hidden(&archive).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open = read_hidden(&archive);
    assert!(!open.is_empty(), "the first has a file open");
    let second = archiving(dir.path(), "    max_file_age: 1h").await;
    assert_eq!(
        read_hidden(&archive),
        open,
        "the second left the first's open file alone"
    );
    grpc_send(&second.grpc_endpoint(), Payload::Traces(traces[1].clone()), None)
        .await
        .expect("accepted");
    for fleetpipe in [first, second] {
        let (status, log) = fleetpipe.terminate().await;
        assert!(status.success(), "{log}");
    }
    let read = read_archive(&archive);
    let files = files_read(&read);
    assert_eq!(
        span_writers(&files).len(),
        2,
        "one writer (process) per file name: {files:?}"
    );
    let report = report::report_json(&archive, &[]);
    assert_eq!(report["summary"]["spans"], 50, "{report:#}");
    spark::assert_spark_agrees(&archive, &[]);
}

/// Checks `fleetpipe report` against what the test computes from `sent`: the summary's
/// counts and inference tokens, the Markdown scorecard; `--from`, `--to` and `--since` select
/// the spans of a period. The report's figures are checked in depth over a known fleet
/// (`archive/report.rs`).
fn assert_report(archive: &Path, sent: &[ExportTraceServiceRequest]) {
    let report = report::report_json(archive, &[]);
    let spans: Vec<_> = sent
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let traces: std::collections::BTreeSet<_> = spans.iter().map(|s| &s.trace_id).collect();
    let summary = &report["summary"];
    assert_eq!(summary["spans"], spans.len(), "{report:#}");
    assert_eq!(summary["traces"], traces.len());
    assert_eq!(summary["agents"], 1);
    let jira: Vec<_> = spans
        .iter()
        .filter(|s| {
            s.attributes
                .iter()
                .any(|a| a.key == "gen_ai.tool.name" && format!("{:?}", a.value).contains("jira_search"))
        })
        .collect();
    let failed = jira
        .iter()
        .filter(|s| s.status.as_ref().is_some_and(|s| s.code == 2))
        .count();
    let output = Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
        .args(["report", "--format", "md", "--archive"])
        .arg(archive)
        .output()
        .expect("fleetpipe report");
    let markdown = String::from_utf8_lossy(&output.stdout);
    let scorecard = format!("| work-tracking | Jira | mcp | {} | {failed} |", jira.len());
    assert!(markdown.contains(&scorecard), "{markdown}");
    assert!(markdown.contains(&format!("- Spans: {}", spans.len())), "{markdown}");
    // Periods: the shadow call is two days after the rest.
    let later = report::report_json(archive, &["--from", "2023-11-15T00:00:00Z"]);
    assert_eq!(later["summary"]["spans"], 1, "{later:#}");
    assert_eq!(later["integrations"], serde_json::json!([]));
    assert_eq!(later["shadow"][0]["target"], "confluence_search");
    let earlier = report::report_json(archive, &["--to", "2023-11-15T00:00:00Z"]);
    assert_eq!(earlier["summary"]["spans"], spans.len() - 1, "{earlier:#}");
    assert_eq!(earlier["shadow"], serde_json::json!([]));
    let recent = report::report_json(archive, &["--since", "24h"]);
    assert_eq!(
        recent["summary"]["spans"], 0,
        "the fixture's spans are from 2023: {recent:#}"
    );
}

/// Scenario: `fleetpipe run` on its built-in configuration (ports and data folder moved for
/// the test), with no CONFIG.yaml, receives four agents' GenAI traces.
/// Guarantees: it says how to point at the operating model; the built-in detectors run and
/// find the unregistered Jira tool; the archive holds the enriched spans and the findings, so
/// `fleetpipe report` right after shows the shadow tool with a registry entry for it and the
/// anomaly timeline.
#[tokio::test]
async fn built_in_defaults_enrich_detect_and_archive_for_the_report() {
    let data = tempfile::tempdir().expect("tempdir");
    let template = fleetpipe::config::DEFAULT_CONFIG
        .replace("127.0.0.1:4317", "@GRPC@")
        .replace("127.0.0.1:4318", "@HTTP@")
        .replace("127.0.0.1:8888", "@METRICS@")
        .replace("127.0.0.1:13133", "@HEALTH@")
        .replace("fleetpipe-data", &data.path().display().to_string());
    let fleetpipe = Fleetpipe::start(&template).await;
    assert!(
        fleetpipe.log().contains("No operating model here"),
        "{}",
        fleetpipe.log()
    );
    for agent in ["planner-1", "triage-agent", "code-reviewer", "deploy-executor"] {
        let request = fixtures::semconv_agent_trace(agent, 40);
        grpc_send(&fleetpipe.grpc_endpoint(), Payload::Traces(request), None)
            .await
            .expect("traces accepted");
    }
    // The first 10-second window closes, the detectors run, findings reach the logs pipeline.
    let signals = data.path().join("signals");
    for _ in 0..300 {
        if std::fs::read_dir(&signals).is_ok_and(|mut d| d.next().is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, log) = fleetpipe.terminate().await;
    assert!(status.success(), "{log}");
    let report = report::report_json(&data.path().join("archive"), &[]);
    assert_eq!(report["summary"]["spans"], 4 * 40, "{:#}", report["summary"]);
    assert_eq!(report["summary"]["agents"], 4);
    let shadow = report["shadow"].as_array().expect("shadow");
    let jira = shadow
        .iter()
        .find(|s| s["target"] == "jira_search")
        .expect("jira_search is shadow");
    assert_eq!(jira["agents"], 4, "{jira}");
    // Without a registry, the catalog still knows the tool: the entry to add is Jira's.
    assert!(
        jira["snippet"].as_str().is_some_and(|s| s.contains("name: \"Jira\"")),
        "{jira}"
    );
    assert_eq!(
        jira["reason"],
        "the catalog lists tool prefix \"jira_\" under Jira; nothing of Atlassian is registered"
    );
    let anomalies = report["anomalies"].as_array().expect("anomalies");
    assert!(
        anomalies.iter().any(|a| a["detector"] == "shadow-integration"
            && a["key"].as_str().is_some_and(|k| k.starts_with("jira_search"))),
        "{anomalies:#?}\n{log}"
    );
    assert!(
        report["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .all(|a| a["layer"] == "unknown")
    );
}

/// Scenario: a known fleet of two agents over two days (failures, a loop, shadow tools, cache
/// tokens, an unpriced model, anomaly findings) goes through `fleetpipe run` into the archive.
/// Guarantees: `fleetpipe report --format json` gives the counts, tokens, list-price cost,
/// per-call integration figures (p95 between the ranks around it), agents, shadow tools with
/// registry snippets, waste and anomalies the test computes; a configured price re-prices
/// only the spans from its day on; `--compare previous` sets the summary against the period
/// before; the report's SQL on Spark (`tools/spark_summary.py`) gives the same summary, with
/// and without the configured price; the HTML page renders in headless Chromium without a
/// console message.
#[tokio::test]
async fn report_of_a_known_fleet_matches_what_the_test_computes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleetpipe = archiving(dir.path(), "    max_file_age: 1s").await;
    let spans = report::send_fleet(fleetpipe).await;
    let archive = dir.path().join("archive");
    report::assert_report_of(&archive, &spans);
    report::assert_prices_and_comparison(&archive, dir.path(), &spans);
    // The same summary on Spark, with the built-in prices and with a price change mid-archive.
    let prices = dir.path().join("prices.yaml");
    spark::assert_spark_agrees(&archive, &[]);
    spark::assert_spark_agrees(&archive, &["--config", prices.to_str().expect("utf-8 path")]);
    report::assert_html_renders(&archive, dir.path(), &spans);
}

/// The spans of `expected` attributed to an integration.
fn tool_calls_of(expected: &BTreeMap<String, (Option<&'static str>, Option<i64>)>) -> usize {
    expected.values().filter(|(i, _)| i.is_some()).count()
}

/// Runs `fleetpipe query --archive`; returns (stdout, stderr).
fn query_archive(archive: &Path, sql: &str) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
        .args(["query", "--format", "csv", "--archive"])
        .arg(archive)
        .arg(sql)
        .output()
        .expect("fleetpipe query");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    (String::from_utf8_lossy(&output.stdout).into_owned(), stderr)
}

/// The hidden (temporary) files under `archive`.
fn read_hidden(archive: &Path) -> Vec<String> {
    files_under(archive, |name| name.starts_with('.'))
        .iter()
        .map(|path| path.display().to_string())
        .collect()
}

/// The writers (process ids) in the names of the span files among `files`, paths relative to
/// the archive (`table=spans/…/part-{millis}-{host}-{pid}-{sequence}.parquet`).
fn span_writers<'a>(files: &[&'a str]) -> std::collections::BTreeSet<&'a str> {
    files
        .iter()
        .filter(|f| f.starts_with("table=spans/"))
        .filter_map(|f| f.rsplit('/').next()?.rsplit('-').nth(1))
        .collect()
}

/// The files pyarrow read, as [`read_archive`] lists them.
fn files_read(read: &serde_json::Value) -> Vec<&str> {
    read["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f.as_str())
        .collect()
}

/// The files under `root`, at any depth, whose names `wanted` takes.
fn files_under(root: &Path, wanted: impl Fn(&str) -> bool) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if wanted(&entry.file_name().to_string_lossy()) {
                found.push(path);
            }
        }
    }
    found
}

/// Scenario: `fleetpipe query --archive` is pointed at a folder that does not exist, then at
/// an archive with a file that is not Parquet, then asked for a column no table has.
/// Guarantees: exit code 1 and an error naming the path each time; DataFusion's error is said
/// once, not once per cause it wraps.
#[test]
fn query_of_a_missing_or_broken_archive_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");
    let run = |archive: &Path| {
        Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
            .args(["query", "--archive"])
            .arg(archive)
            .arg("SELECT count(*) FROM spans")
            .output()
            .expect("fleetpipe query")
    };
    let output = run(&missing);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: no archive here", missing.display())),
        "{stderr}"
    );
    let folder = dir.path().join("archive/table=spans/date=2026-12-05/hour=09");
    std::fs::create_dir_all(&folder).expect("folder");
    let broken = folder.join("part-1.parquet");
    std::fs::write(&broken, b"not parquet").expect("write");
    let output = run(&dir.path().join("archive"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&broken.display().to_string()), "{stderr}");
    std::fs::remove_file(&broken).expect("remove");
    let output = Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
        .args(["query", "--archive"])
        .arg(dir.path().join("archive"))
        .arg("SELECT nope FROM spans")
        .output()
        .expect("fleetpipe query");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("No field named nope").count(), 1, "said once: {stderr}");
}
