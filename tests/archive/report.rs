//! `fleetpipe report` over a known fleet: two agents on two days, with injected failures, a
//! tool-call loop, shadow tools, cache tokens, an unpriced model and anomaly findings. The
//! test computes every figure it checks from the spans it builds, on its own.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use fleetpipe::otlp::Payload;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::support::fixtures::{int, string};
use super::support::{Fleetpipe, grpc_send};

/// 2026-11-19T10:00:00Z and 2026-11-21T10:00:00Z, in seconds.
const DAY_A: u64 = 1_795_082_400;
const DAY_B: u64 = 1_795_255_200;
/// The configured price change's day, 2026-11-20.
const PRICE_CHANGE: u64 = 1_795_132_800;

/// One span of the fleet as the test knows it.
#[derive(Debug, Clone)]
pub(super) struct Known {
    agent: &'static str,
    trace: u64,
    span: u64,
    parent: Option<u64>,
    operation: &'static str,
    tool: Option<&'static str>,
    /// Whether it is the MCP client span under an `execute_tool` span.
    mcp_child: bool,
    model: Option<&'static str>,
    /// input (cache included), output, cache read, cache write.
    tokens: Option<[i64; 4]>,
    start: u64,
    duration_ms: u64,
    error: Option<&'static str>,
}

/// US dollars per million tokens (input, output, cache read, cache write) of
/// `claude-sonnet-4*`: the built-in list price, and the configured one from PRICE_CHANGE.
const LIST_PRICE: [f64; 4] = [3.0, 15.0, 0.30, 3.75];
const CONTRACT_PRICE: [f64; 4] = [2.0, 10.0, 0.20, 2.50];

const PRICES_CONFIG: &str = "report:
  prices:
    - model: 'claude-sonnet-4*'
      from: '2026-11-20'
      input: 2.0
      output: 10.0
      cache_read: 0.20
      cache_write: 2.50
";

impl Known {
    fn is_inference(&self) -> bool {
        self.operation == "chat"
    }

    /// Its cost at `prices` for spans on or after `change`, the list price before; `None`
    /// when no price covers its model.
    fn cost(&self, change: Option<u64>) -> Option<f64> {
        let [input, output, read, write] = self.tokens?;
        if !self.model?.starts_with("claude-sonnet-4") {
            return None;
        }
        let price = match change {
            Some(day) if self.start >= day * 1_000_000_000 => CONTRACT_PRICE,
            _ => LIST_PRICE,
        };
        let uncached = (input - read - write) as f64;
        Some((uncached * price[0] + output as f64 * price[1] + read as f64 * price[2] + write as f64 * price[3]) / 1e6)
    }

    /// The integration the registry gives it, or the shadow target.
    fn integration(&self) -> Option<&'static str> {
        match self.tool? {
            "jira_search" => Some("work-tracking"),
            "github_actions_run" => Some("primary-pipeline"),
            other => Some(other),
        }
    }

    fn is_registered(&self) -> bool {
        matches!(self.integration(), Some("work-tracking" | "primary-pipeline"))
    }

    /// A call as the report counts them: a tool span not under an `execute_tool` span.
    fn is_call(&self) -> bool {
        self.tool.is_some() && !self.mcp_child
    }
}

/// The fleet: per agent and day, five invocations of an `invoke_agent` root (repeating its
/// children's token counts), two chat calls and three Jira calls, each an `execute_tool`
/// span with its MCP client span under it; plus a failed invocation, a failed-then-retried
/// call, a loop of twelve calls, two shadow tools, a registered CI call and an unpriced model.
fn fleet() -> Vec<Known> {
    let mut spans = Vec::new();
    let mut next = 1u64;
    let mut id = || {
        next += 1;
        next
    };
    for (agent, day) in [
        ("planner-1", DAY_A),
        ("triage-agent", DAY_A),
        ("planner-1", DAY_B),
        ("triage-agent", DAY_B),
    ] {
        for i in 0..5u64 {
            let trace = id();
            let root = id();
            let t0 = (day + i * 600) * 1_000_000_000;
            let mut children = Vec::new();
            let mut at = t0;
            let mut span = |operation, tool, model, tokens, duration_ms, error| {
                at += 1_000_000;
                let known = Known {
                    agent,
                    trace,
                    span: id(),
                    parent: Some(root),
                    operation,
                    tool,
                    mcp_child: false,
                    model,
                    tokens,
                    start: at,
                    duration_ms,
                    error,
                };
                children.push(known.clone());
                known
            };
            for k in 0..2i64 {
                let tokens = [1000 + 10 * i as i64, 200 + i as i64, 300, if k == 1 { 50 } else { 0 }];
                span(
                    "chat",
                    None,
                    Some("claude-sonnet-4-20250514"),
                    Some(tokens),
                    800 + 100 * k as u64,
                    None,
                );
            }
            let looping = agent == "planner-1" && day == DAY_B && i == 2;
            let jira_calls = if looping { 12 } else { 3 };
            for k in 0..jira_calls {
                let failed = agent == "triage-agent" && day == DAY_B && i == 1 && k == 2;
                span(
                    "execute_tool",
                    Some("jira_search"),
                    None,
                    None,
                    20 + (i * 3 + k) * 7,
                    failed.then_some("timeout"),
                );
            }
            if agent == "triage-agent" && day == DAY_B && i == 1 {
                span("execute_tool", Some("jira_search"), None, None, 31, None);
            }
            if agent == "triage-agent" && day == DAY_A && i == 0 {
                span("execute_tool", Some("confluence_search"), None, None, 40, None);
            }
            if agent == "planner-1" && day == DAY_B && i == 0 {
                span("execute_tool", Some("pipeline_status"), None, None, 45, None);
                span("execute_tool", Some("github_actions_run"), None, None, 60, None);
            }
            if agent == "triage-agent" && day == DAY_B && i == 3 {
                span("chat", None, Some("llama-local"), Some([500, 100, 0, 0]), 300, None);
            }
            // The MCP client span of each Jira call, under it.
            let mcp: Vec<Known> = children
                .iter()
                .filter(|c| c.tool == Some("jira_search"))
                .map(|call| Known {
                    span: id(),
                    parent: Some(call.span),
                    mcp_child: true,
                    start: call.start + 1000,
                    duration_ms: call.duration_ms - 1,
                    ..call.clone()
                })
                .collect();
            let tokens = children.iter().filter_map(|c| c.tokens).fold([0; 4], |sum, t| {
                [sum[0] + t[0], sum[1] + t[1], sum[2] + t[2], sum[3] + t[3]]
            });
            let failed = agent == "planner-1" && day == DAY_A && i == 4;
            spans.push(Known {
                agent,
                trace,
                span: root,
                parent: None,
                operation: "invoke_agent",
                tool: None,
                mcp_child: false,
                model: None,
                tokens: Some(tokens),
                start: t0,
                duration_ms: 1000 + 100 * i,
                error: failed.then_some("agent_failed"),
            });
            spans.extend(children);
            spans.extend(mcp);
        }
    }
    spans
}

fn id_bytes(id: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len - 8];
    bytes.extend(id.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    bytes
}

fn otlp(known: &Known) -> Span {
    let mut attributes = vec![string("gen_ai.operation.name", known.operation)];
    if let Some(tool) = known.tool {
        attributes.push(string("gen_ai.tool.name", tool));
    }
    if known.mcp_child {
        attributes.push(string("mcp.method.name", "tools/call"));
        attributes.push(string("server.address", "mcp.jira.acme.internal"));
    }
    if let Some(model) = known.model {
        attributes.push(string("gen_ai.request.model", model.trim_end_matches("-20250514")));
        attributes.push(string("gen_ai.response.model", model));
        attributes.push(string("gen_ai.provider.name", "anthropic"));
    }
    if let Some([input, output, read, write]) = known.tokens {
        attributes.push(int("gen_ai.usage.input_tokens", input));
        attributes.push(int("gen_ai.usage.output_tokens", output));
        attributes.push(int("gen_ai.usage.cache_read.input_tokens", read));
        attributes.push(int("gen_ai.usage.cache_write.input_tokens", write));
    }
    if let Some(error) = known.error {
        attributes.push(string("error.type", error));
    }
    if known.model == Some("llama-local") {
        // Instrumented by OpenInference, which says its span kind.
        attributes.push(string("openinference.span.kind", "LLM"));
    }
    let name = match (known.operation, known.tool, known.model) {
        (_, Some(tool), _) if known.mcp_child => format!("tools/call {tool}"),
        (operation, Some(target), _) | (operation, None, Some(target)) => format!("{operation} {target}"),
        (operation, None, None) => format!("{operation} {}", known.agent),
    };
    Span {
        trace_id: id_bytes(known.trace, 16),
        span_id: id_bytes(known.span, 8),
        parent_span_id: known.parent.map(|p| id_bytes(p, 8)).unwrap_or_default(),
        name,
        kind: if known.operation == "invoke_agent" {
            SpanKind::Internal
        } else {
            SpanKind::Client
        } as i32,
        start_time_unix_nano: known.start,
        end_time_unix_nano: known.start + known.duration_ms * 1_000_000,
        attributes,
        status: known.error.map(|message| Status {
            message: message.into(),
            code: StatusCode::Error as i32,
        }),
        ..Default::default()
    }
}

/// The fleet as one traces request per agent.
fn requests(spans: &[Known]) -> Vec<ExportTraceServiceRequest> {
    let agents: BTreeSet<&str> = spans.iter().map(|s| s.agent).collect();
    agents
        .into_iter()
        .map(|agent| ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string("service.name", agent)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: spans.iter().filter(|s| s.agent == agent).map(otlp).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
        .collect()
}

/// Anomaly findings as fleetpipe's analytics writes them: the loop found in two runs, an
/// error-rate spike in one.
fn findings() -> ExportLogsServiceRequest {
    let record = |detector: &str, severity: &str, key: &str, at: u64| LogRecord {
        time_unix_nano: at * 1_000_000_000,
        event_name: "fleetpipe.anomaly".into(),
        severity_text: severity.to_uppercase(),
        attributes: vec![
            string("fleetpipe.detector", detector),
            string("fleetpipe.severity", severity),
            string("fleetpipe.key", key),
            string("integration.id", "work-tracking"),
        ],
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![string("service.name", "fleetpipe")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    record("tool-call-loop", "medium", "planner-1/jira_search", DAY_B + 1200),
                    record("tool-call-loop", "medium", "planner-1/jira_search", DAY_B + 1260),
                    record("error-rate-spike", "high", "work-tracking", DAY_B + 700),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Sends the fleet and the findings through `fleetpipe`, then stops it.
pub(super) async fn send_fleet(fleetpipe: Fleetpipe) -> Vec<Known> {
    let spans = fleet();
    for request in requests(&spans) {
        grpc_send(&fleetpipe.grpc_endpoint(), Payload::Traces(request), None)
            .await
            .expect("traces accepted");
    }
    grpc_send(&fleetpipe.grpc_endpoint(), Payload::Logs(findings()), None)
        .await
        .expect("findings accepted");
    let (status, log) = fleetpipe.terminate().await;
    assert!(status.success(), "{log}");
    spans
}

/// `fleetpipe report` with `args`, its standard output.
fn report(archive: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
        .arg("report")
        .arg("--archive")
        .arg(archive)
        .args(args)
        .env_remove("FLEETPIPE_CONFIG")
        .output()
        .expect("fleetpipe report");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

pub(super) fn report_json(archive: &Path, args: &[&str]) -> serde_json::Value {
    let args = [&["--format", "json"], args].concat();
    serde_json::from_slice(&report(archive, &args)).expect("JSON report")
}

fn close(actual: &serde_json::Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no number in {actual}"));
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: {actual} != {expected}"
    );
}

/// The value at rank `q` of `values` by linear interpolation, and the two values around it:
/// approx_percentile_cont must land between them.
fn rank_bounds(mut values: Vec<f64>, q: f64) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let rank = q * (values.len() - 1) as f64;
    (values[rank.floor() as usize], values[rank.ceil() as usize])
}

/// Checks the JSON report against the fleet: counts, tokens, cost at the list price,
/// integrations' calls, errors and p95, agents, shadow tools with their suggestions, the
/// waste ledger and the anomalies.
pub(super) fn assert_report_of(archive: &Path, spans: &[Known]) {
    let report = report_json(archive, &[]);
    let summary = &report["summary"];
    let inference: Vec<&Known> = spans.iter().filter(|s| s.is_inference()).collect();
    let sum = |n: usize| inference.iter().filter_map(|s| s.tokens).map(|t| t[n]).sum::<i64>();
    let traces: BTreeSet<u64> = spans.iter().map(|s| s.trace).collect();
    assert_eq!(summary["spans"], spans.len(), "{report:#}");
    assert_eq!(summary["traces"], traces.len());
    assert_eq!(summary["agents"], 2);
    assert_eq!(summary["invocations"], 20);
    assert_eq!(summary["errors"], spans.iter().filter(|s| s.error.is_some()).count());
    assert_eq!(
        summary["input_tokens"],
        sum(0),
        "the invoke_agent spans' repeated counts are not added"
    );
    assert_eq!(summary["output_tokens"], sum(1));
    assert_eq!(summary["cache_read_tokens"], sum(2));
    assert_eq!(summary["cache_write_tokens"], sum(3));
    assert_eq!(summary["unpriced_tokens"], 600, "llama-local's tokens");
    let cost: f64 = inference.iter().filter_map(|s| s.cost(None)).sum();
    close(&summary["cost_usd"], cost, "cost at the list price");
    assert_eq!(summary["anomalies"], 2);

    let calls: Vec<&Known> = spans.iter().filter(|s| s.is_call() && s.is_registered()).collect();
    let integrations = report["integrations"].as_array().expect("integrations");
    assert_eq!(integrations.len(), 2, "{integrations:#?}");
    for scorecard in integrations {
        let id = scorecard["id"].as_str().expect("id");
        let mine: Vec<&&Known> = calls.iter().filter(|c| c.integration() == Some(id)).collect();
        assert_eq!(
            scorecard["calls"],
            mine.len(),
            "{id}: one call per execute_tool span, not per MCP span"
        );
        assert_eq!(
            scorecard["errors"],
            mine.iter().filter(|c| c.error.is_some()).count(),
            "{id}"
        );
        let (low, high) = rank_bounds(mine.iter().map(|c| c.duration_ms as f64).collect(), 0.95);
        let p95 = scorecard["p95_ms"].as_f64().expect("p95");
        assert!(
            low - 1e-6 <= p95 && p95 <= high + 1e-6,
            "{id}: p95 {p95} not in [{low}, {high}]"
        );
    }
    assert_eq!(
        report["errors"],
        serde_json::json!([{"integration": "work-tracking", "error_type": "timeout", "calls": 1}])
    );
    for agent in report["agents"].as_array().expect("agents") {
        let name = agent["name"].as_str().expect("name");
        let mine = spans.iter().filter(|s| s.agent == name);
        let layer = if name == "planner-1" { "strategy" } else { "execution" };
        assert_eq!(agent["layer"], layer, "{agent}");
        assert_eq!(agent["invocations"], 10, "{agent}");
        close(&agent["cost_usd"], mine.filter_map(|s| s.cost(None)).sum(), name);
    }
    let shadow = &report["shadow"];
    assert_eq!(shadow.as_array().map(Vec::len), Some(2), "{shadow:#}");
    for row in shadow.as_array().into_iter().flatten() {
        let target = row["target"].as_str().expect("target");
        let snippet: serde_yaml::Value = serde_yaml::from_str(row["snippet"].as_str().expect("snippet")).expect("YAML");
        let entry = &snippet["unreviewed"]["tools"][0];
        assert_eq!(row["calls"], 1);
        assert_eq!(row["agents"], 1);
        // The catalog knows Confluence (Atlassian's, as is the registered Jira); nothing knows
        // pipeline_status but a word of the registered primary-pipeline's id.
        let (likely, name, rule) = match target {
            "pipeline_status" => ("primary-pipeline", "pipeline_status", Some("pipeline_status")),
            _ => ("work-tracking", "Confluence", None),
        };
        assert_eq!(row["likely"].as_str(), Some(likely), "{row}");
        assert_eq!(entry["name"].as_str(), Some(name), "{row}");
        assert_eq!(entry["match"]["tools"][0].as_str(), rule, "{row}");
    }
    let waste: Vec<(String, u64)> = report["waste"]
        .as_array()
        .expect("waste")
        .iter()
        .map(|w| {
            (
                w["kind"].as_str().unwrap_or_default().to_owned(),
                w["occurrences"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let kinds = [
        ("tool-call loop", 1),
        ("retried tool call", 1),
        ("failed tool call", 1),
        ("failed invocation", 1),
    ];
    assert_eq!(waste, kinds.map(|(k, n)| (k.to_owned(), n)), "{:#}", report["waste"]);
    let loop_trace = spans
        .iter()
        .filter(|s| s.is_call())
        .filter(|s| s.tool == Some("jira_search"));
    let loop_trace = loop_trace
        .map(|s| s.trace)
        .find(|t| spans.iter().filter(|s| s.trace == *t && s.is_call()).count() > 10);
    let loop_cost: f64 = spans
        .iter()
        .filter(|s| Some(s.trace) == loop_trace)
        .filter_map(|s| s.cost(None).filter(|_| s.is_inference()))
        .sum();
    close(&report["waste"][0]["cost_usd"], loop_cost, "the loop's trace's cost");
    let quality = &report["data_quality"];
    let triage = quality
        .as_array()
        .into_iter()
        .flatten()
        .find(|q| q["agent"] == "triage-agent")
        .expect("triage-agent");
    let triage_models = inference.iter().filter(|s| s.agent == "triage-agent").count();
    assert_eq!(triage["model_spans"], triage_models, "{quality:#}");
    assert_eq!(triage["openinference"], 1, "the llama-local span: {quality:#}");
    assert_eq!(triage["current"], triage_models - 1);
    let anomalies = &report["anomalies"];
    assert_eq!(anomalies.as_array().map(Vec::len), Some(2), "{anomalies:#}");
    assert_eq!(anomalies[0]["detector"], "error-rate-spike");
    assert_eq!(anomalies[0]["integration"], "work-tracking");
    assert_eq!(anomalies[1]["key"], "planner-1/jira_search");
    assert_eq!(anomalies[1]["reports"], 2);
    assert_eq!(anomalies[1]["first_seen"], "2026-11-21T10:20:00Z");
    assert_eq!(anomalies[1]["last_seen"], "2026-11-21T10:21:00Z");
}

/// Checks that configured prices re-price only the spans from their day on, and that
/// `--compare previous` sets the summary against the period before.
pub(super) fn assert_prices_and_comparison(archive: &Path, dir: &Path, spans: &[Known]) {
    let config = dir.join("prices.yaml");
    std::fs::write(&config, PRICES_CONFIG).expect("config");
    let config = config.to_str().expect("utf-8 path");
    let repriced = report_json(archive, &["--config", config]);
    let expected: f64 = spans
        .iter()
        .filter(|s| s.is_inference())
        .filter_map(|s| s.cost(Some(PRICE_CHANGE)))
        .sum();
    close(
        &repriced["summary"]["cost_usd"],
        expected,
        "cost with the contract price from 2026-11-20",
    );
    assert_eq!(repriced["prices"]["configured"], 1);
    let before_change = ["--config", config, "--to", "2026-11-20T00:00:00Z"];
    let list_before: f64 = spans
        .iter()
        .filter(|s| s.is_inference() && s.start < PRICE_CHANGE * 1_000_000_000)
        .filter_map(|s| s.cost(None))
        .sum();
    close(
        &report_json(archive, &before_change)["summary"]["cost_usd"],
        list_before,
        "spans before the change",
    );

    let compared = report_json(
        archive,
        &[
            "--from",
            "2026-11-20T12:00:00Z",
            "--to",
            "2026-11-22T12:00:00Z",
            "--compare",
            "previous",
        ],
    );
    let on = |day: u64| {
        spans
            .iter()
            .filter(|s| s.start / 1_000_000_000 / 86_400 == day / 86_400)
            .count()
    };
    assert_eq!(compared["summary"]["spans"], on(DAY_B), "{:#}", compared["summary"]);
    assert_eq!(compared["summary"]["previous"]["spans"], on(DAY_A));
    assert_eq!(compared["period"]["from"], "2026-11-20T12:00:00Z");
}

/// Writes the HTML report, has headless Chromium load it and take a screenshot, and checks
/// that the page rendered the report's figures without a console error.
pub(super) fn assert_html_renders(archive: &Path, dir: &Path, spans: &[Known]) {
    let page = dir.join("report.html");
    report(
        archive,
        &[
            "--format",
            "html",
            "--compare",
            "previous",
            "--since",
            "36500d",
            "--out",
            page.to_str().expect("path"),
        ],
    );
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(!html.contains("<script"), "self-contained, no script");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from the network"
    );
    let chromium = which_chromium();
    let browse = |extra: &[&str]| {
        let profile = tempfile::tempdir().expect("profile");
        let output = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("run chromium");
        assert!(
            output.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };
    let dom = browse(&["--dump-dom"]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let stderr = String::from_utf8_lossy(&dom.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(dom_text.contains("Fleet performance report"), "{dom_text}");
    assert!(
        dom_text.contains(&format!(">{}<", spans.len())),
        "the span count is on the page"
    );
    assert!(dom_text.contains("<svg"), "charts drawn");
    assert!(
        dom_text.contains("2 agents ran 20 invocations (95 % succeeded)"),
        "the headline: {dom_text}"
    );
    let png = dir.join("report.png");
    browse(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1280,3000",
        "--hide-scrollbars",
    ]);
    let image = std::fs::read(&png).expect("screenshot written");
    assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
    assert!(image.len() > 20_000, "a page, not a blank: {} bytes", image.len());
    if let Ok(keep) = std::env::var("FLEETPIPE_KEEP_REPORT") {
        std::fs::copy(&png, Path::new(&keep).with_extension("png")).expect("keep screenshot");
        std::fs::copy(&page, Path::new(&keep).with_extension("html")).expect("keep page");
    }
}

/// Debian's Chromium; installed with apt when missing and the tests run as root (as `.ci/run`
/// also does), so that the test command needs nothing installed beforehand.
fn which_chromium() -> std::path::PathBuf {
    let found = || {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(chromium) = found() {
        return chromium;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "chromium"]);
    }
    found().expect("chromium is not installed and could not be: `apt-get install chromium` as root")
}
