//! Issue 3 acceptance over the running binary: spans of a simulated fleet arrive tagged with
//! the shared fixture registry's metadata, layers resolve, shadow calls are counted, other
//! SDKs' spellings attribute alike, and registry edits take effect without losing a span.
//! `governance`: issue 29, each exporter's governed data flow.

#[path = "enrich/catalog.rs"]
mod catalog;
#[path = "enrich/governance.rs"]
mod governance;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use support::sink::Sink;
use support::{Fleetpipe, fixtures, grpc_send, pipeline_config, registered_otlp_exporter};

const FIXTURE: &str = include_str!("fixtures/operating-model/CONFIG.yaml");

/// fleetpipe with `enrich` in front of `sink`, the registry at `registry`, and agent globs.
async fn start(sink: &Sink, registry: &Path, batch: bool) -> Fleetpipe {
    let base = pipeline_config(&registered_otlp_exporter("otlp", &sink.endpoint()), &["otlp"], batch);
    let processors = if batch { "[enrich, batch]" } else { "[enrich]" };
    let config = base.replace("processors: [batch]", &format!("processors: {processors}")).replace("processors: []", &format!("processors: {processors}")).replace(
        "processors:\n",
        &format!(
            "registry:\n  path: '{}'\n  reload_interval: 100ms\n  agents:\n    \"planner-*\": strategy\n    \"*-reviewer\": quality\nprocessors:\n  enrich: {{}}\n",
            registry.display()
        ),
    );
    Fleetpipe::start(&config).await
}

fn write_registry(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("CONFIG.yaml");
    std::fs::write(&path, text).expect("write registry");
    path
}

/// The string and bool attributes of a span, as text.
fn attributes(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| {
            let value = match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => s.clone(),
                Value::BoolValue(b) => b.to_string(),
                Value::IntValue(i) => i.to_string(),
                _ => return None,
            };
            Some((kv.key.clone(), value))
        })
        .collect()
}

type Attributes = BTreeMap<String, String>;

/// Received spans by name: (resource attributes, span attributes).
fn received_spans(sink: &Sink) -> BTreeMap<String, (Attributes, Attributes)> {
    let mut spans = BTreeMap::new();
    for payload in sink.received() {
        let Payload::Traces(request) = payload else { continue };
        for rs in request.resource_spans {
            let resource = attributes(&rs.resource.map(|r| r.attributes).unwrap_or_default());
            for span in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                spans.insert(span.name.clone(), (resource.clone(), attributes(&span.attributes)));
            }
        }
    }
    spans
}

fn tags(id: &str, name: &str, category: &str, kind: &str, connection: &str) -> BTreeMap<String, String> {
    [
        ("integration.id", id),
        ("integration.name", name),
        ("integration.category", category),
        ("integration.kind", kind),
        ("integration.connection", connection),
        ("integration.registered", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Only the `integration.*` attributes.
fn integration_tags(span: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    span.iter()
        .filter(|(k, _)| k.starts_with("integration."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn fleet() -> Vec<ExportTraceServiceRequest> {
    use SpanKind::{Client, Internal};
    vec![
        fixtures::traces(
            &[("service.name", "planner-eu-1")],
            vec![
                fixtures::span(
                    "mcp tools/call servicenow",
                    Client,
                    &[
                        ("mcp.method.name", "tools/call"),
                        ("gen_ai.tool.name", "servicenow.create_incident"),
                        ("server.address", "mcp.servicenow.acme.internal"),
                    ],
                ),
                fixtures::span(
                    "execute_tool jira_search",
                    Internal,
                    &[
                        ("gen_ai.operation.name", "execute_tool"),
                        ("gen_ai.tool.name", "jira_search"),
                    ],
                ),
                fixtures::span(
                    "GET zendesk",
                    Client,
                    &[
                        ("http.request.method", "GET"),
                        ("url.full", "https://acme.zendesk.com/api/v2/tickets/7"),
                    ],
                ),
                fixtures::span(
                    "chat claude-sonnet",
                    Client,
                    &[
                        ("gen_ai.operation.name", "chat"),
                        ("gen_ai.provider.name", "anthropic"),
                        ("server.address", "api.anthropic.com"),
                    ],
                ),
                fixtures::span(
                    "execute_tool confluence_search",
                    Internal,
                    &[
                        ("gen_ai.operation.name", "execute_tool"),
                        ("gen_ai.tool.name", "confluence_search"),
                    ],
                ),
                fixtures::span(
                    "POST pastebin",
                    Client,
                    &[
                        ("url.full", "https://pastebin.example.com/upload"),
                        ("server.address", "pastebin.example.com"),
                    ],
                ),
                fixtures::span("plan next step", Internal, &[("step", "3")]),
                fixtures::span(
                    "execute_tool jira with own id",
                    Internal,
                    &[
                        ("gen_ai.tool.name", "jira_create_issue"),
                        ("integration.id", "set-by-the-agent"),
                    ],
                ),
            ],
        ),
        fixtures::traces(
            &[
                ("service.name", "code-reviewer"),
                ("operating_model.layer", "execution"),
            ],
            vec![fixtures::span(
                "execute_tool slack",
                Internal,
                &[("gen_ai.tool.name", "slack_post_message")],
            )],
        ),
        fixtures::traces(
            &[("service.name", "code-reviewer")],
            vec![fixtures::span(
                "execute_tool snyk",
                Internal,
                &[("gen_ai.tool.name", "snyk_test")],
            )],
        ),
        fixtures::traces(
            &[("service.name", "mystery-bot")],
            vec![fixtures::span(
                "execute_tool backstage",
                Internal,
                &[("gen_ai.tool.name", "backstage.catalog_get")],
            )],
        ),
    ]
}

/// Scenario: a fleet's MCP tool calls, execute_tool spans, HTTP client calls and LLM calls
/// with the shared fixture registry.
/// Guarantees: registered integrations get exactly the registry's tags; unregistered tools and
/// hosts get `integration.registered=false` with their target and are counted; model calls and
/// internal work are left untagged; a tag the span already carries is kept; every resource gets its layer by claim, mapping or unknown.
#[tokio::test]
async fn tags_a_simulated_fleet() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = write_registry(dir.path(), FIXTURE);
    let fleetpipe = start(&sink, &registry, false).await;
    for request in fleet() {
        grpc_send(&fleetpipe.grpc_endpoint(), Payload::Traces(request), None)
            .await
            .expect("accepted");
    }
    sink.wait_for(Signal::Traces, 11, Duration::from_secs(10)).await;
    let spans = received_spans(&sink);
    let tag_of = |name: &str| integration_tags(&spans[name].1);
    assert_eq!(
        tag_of("mcp tools/call servicenow"),
        tags(
            "incident-management",
            "ServiceNow",
            "enterprise_toolchain",
            "itsm",
            "mcp"
        )
    );
    assert_eq!(
        tag_of("execute_tool jira_search"),
        tags("work-tracking", "Jira", "enterprise_toolchain", "itsm", "mcp")
    );
    let mut own_id = tags("work-tracking", "Jira", "enterprise_toolchain", "itsm", "mcp");
    own_id.insert("integration.id".into(), "set-by-the-agent".into());
    assert_eq!(
        tag_of("execute_tool jira with own id"),
        own_id,
        "an attribute the span already has is kept, the other tags are added"
    );
    assert_eq!(
        tag_of("GET zendesk"),
        tags("customer-support", "Zendesk", "business_systems", "support", "api")
    );
    assert_eq!(
        tag_of("execute_tool slack"),
        tags("team-chat", "Slack", "communication", "chat", "mcp")
    );
    assert_eq!(
        tag_of("execute_tool snyk"),
        tags(
            "vulnerability-scanning",
            "Snyk",
            "enterprise_toolchain",
            "security",
            "webhook"
        )
    );
    assert_eq!(
        tag_of("execute_tool backstage"),
        tags("service-catalog", "Backstage", "enterprise_toolchain", "catalog", "api")
    );
    let shadow = |target: &str| {
        BTreeMap::from([
            ("integration.registered".to_owned(), "false".to_owned()),
            ("integration.target".to_owned(), target.to_owned()),
        ])
    };
    assert_eq!(tag_of("execute_tool confluence_search"), shadow("confluence_search"));
    assert_eq!(tag_of("POST pastebin"), shadow("pastebin.example.com"));
    assert_eq!(
        tag_of("chat claude-sonnet"),
        BTreeMap::new(),
        "model inference is not a tool call"
    );
    assert_eq!(tag_of("plan next step"), BTreeMap::new());
    assert_eq!(
        spans["GET zendesk"].1["url.full"], "https://acme.zendesk.com/api/v2/tickets/7",
        "original attributes stay"
    );

    let layer = |name: &str| spans[name].0.get("operating_model.layer").cloned();
    assert_eq!(
        layer("execute_tool jira_search").as_deref(),
        Some("strategy"),
        "agents glob planner-*"
    );
    assert_eq!(
        layer("execute_tool slack").as_deref(),
        Some("execution"),
        "the runtime's claim wins over *-reviewer"
    );
    assert_eq!(
        layer("execute_tool snyk").as_deref(),
        Some("quality"),
        "agents glob *-reviewer"
    );
    assert_eq!(layer("execute_tool backstage").as_deref(), Some("unknown"));

    let shadow_calls = |target: &str| format!("target=\"{target}\"");
    assert_eq!(
        fleetpipe
            .metric(
                "fleetpipe_shadow_integration_calls_total",
                &[&shadow_calls("confluence_search")]
            )
            .await,
        1.0
    );
    assert_eq!(
        fleetpipe
            .metric(
                "fleetpipe_shadow_integration_calls_total",
                &[&shadow_calls("pastebin.example.com")]
            )
            .await,
        1.0
    );
    assert!(
        fleetpipe.log().contains("Shadow integration"),
        "logged once per new target"
    );
    assert_eq!(fleetpipe.metric("fleetpipe_registry_integrations", &[]).await, 15.0);
}

/// Scenario: an agent turn shaped as instrumented runtimes send it (SDK resource attributes,
/// three scopes, the GenAI and MCP attributes the conventions recommend, arrays and doubles
/// among them), as the `enrich` bench's second request.
/// Guarantees: `execute_tool` and MCP `tools/call` spans gain the Jira tags, model calls and
/// the root none; everything else about every span and the resource arrives as sent.
#[tokio::test]
async fn tags_spans_shaped_as_the_semantic_conventions() {
    use opentelemetry_proto::tonic::trace::v1::Span;
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fleetpipe = start(&sink, &write_registry(dir.path(), FIXTURE), false).await;
    let sent = fixtures::semconv_agent_trace("triage-agent", 30);
    grpc_send(&fleetpipe.grpc_endpoint(), Payload::Traces(sent.clone()), None)
        .await
        .expect("accepted");
    sink.wait_for(Signal::Traces, 30, Duration::from_secs(10)).await;
    let is_tag = |kv: &KeyValue| kv.key.starts_with("integration.");
    let mut received: BTreeMap<Vec<u8>, (Span, BTreeMap<String, String>)> = BTreeMap::new();
    let mut resources = Vec::new();
    for payload in sink.received() {
        let Payload::Traces(request) = payload else { continue };
        for rs in request.resource_spans {
            resources.push(rs.resource.unwrap_or_default());
            for mut span in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                let (tags, others): (Vec<KeyValue>, Vec<KeyValue>) =
                    std::mem::take(&mut span.attributes).into_iter().partition(is_tag);
                span.attributes = others;
                received.insert(span.span_id.clone(), (span, attributes(&tags)));
            }
        }
    }
    let sent_resource = sent.resource_spans[0].resource.clone().expect("resource");
    for mut resource in resources {
        let layer = resource.attributes.pop().expect("the layer, added last");
        assert_eq!(
            attributes(&[layer]),
            BTreeMap::from([("operating_model.layer".to_owned(), "unknown".to_owned())])
        );
        assert_eq!(resource, sent_resource);
    }
    let jira = tags("work-tracking", "Jira", "enterprise_toolchain", "itsm", "mcp");
    let sent_spans: Vec<&Span> = sent.resource_spans[0]
        .scope_spans
        .iter()
        .flat_map(|ss| &ss.spans)
        .collect();
    assert_eq!(received.len(), sent_spans.len());
    let mut tagged = 0;
    for span in sent_spans {
        let (arrived, tags) = &received[&span.span_id];
        assert_eq!(arrived, span, "span {:?} arrives as sent, tags aside", span.name);
        let is_tool_call = span.name.starts_with("execute_tool ") || span.name.starts_with("tools/call ");
        let expected = if is_tool_call { jira.clone() } else { BTreeMap::new() };
        assert_eq!(tags, &expected, "tags of {:?}", span.name);
        tagged += usize::from(is_tool_call);
    }
    assert_eq!(tagged, 19, "two spans in three after the root are tool calls");
}

/// Scenario: the same tool call written with current GenAI names, deprecated ones,
/// OpenInference's and OpenLLMetry's.
/// Guarantees: all four are attributed to the same integration and gain the current names.
#[tokio::test]
async fn other_sdk_spellings_attribute_alike() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fleetpipe = start(&sink, &write_registry(dir.path(), FIXTURE), false).await;
    use SpanKind::Internal;
    let spans = vec![
        fixtures::span(
            "current",
            Internal,
            &[
                ("gen_ai.operation.name", "execute_tool"),
                ("gen_ai.tool.name", "jira_search"),
                ("gen_ai.provider.name", "anthropic"),
            ],
        ),
        fixtures::span(
            "deprecated",
            Internal,
            &[
                ("gen_ai.operation.name", "execute_tool"),
                ("gen_ai.tool.name", "jira_search"),
                ("gen_ai.system", "anthropic"),
            ],
        ),
        fixtures::span(
            "openinference",
            Internal,
            &[
                ("openinference.span.kind", "TOOL"),
                ("tool.name", "jira_search"),
                ("llm.provider", "anthropic"),
            ],
        ),
        fixtures::span(
            "openllmetry",
            Internal,
            &[
                ("traceloop.span.kind", "tool"),
                ("traceloop.entity.name", "jira_search"),
                ("gen_ai.system", "anthropic"),
            ],
        ),
    ];
    grpc_send(
        &fleetpipe.grpc_endpoint(),
        Payload::Traces(fixtures::traces(&[("service.name", "planner-1")], spans)),
        None,
    )
    .await
    .expect("accepted");
    sink.wait_for(Signal::Traces, 4, Duration::from_secs(10)).await;
    let received = received_spans(&sink);
    for name in ["current", "deprecated", "openinference", "openllmetry"] {
        let span = &received[name].1;
        assert_eq!(
            integration_tags(span),
            tags("work-tracking", "Jira", "enterprise_toolchain", "itsm", "mcp"),
            "{name}"
        );
        assert_eq!(span["gen_ai.tool.name"], "jira_search", "{name}");
        assert_eq!(span["gen_ai.operation.name"], "execute_tool", "{name}");
        assert_eq!(span["gen_ai.provider.name"], "anthropic", "{name}");
    }
    let mut tokens = fixtures::span("old tokens", Internal, &[]);
    tokens.attributes = vec![
        fixtures::int("gen_ai.usage.prompt_tokens", 120),
        fixtures::int("gen_ai.usage.completion_tokens", 30),
    ];
    grpc_send(
        &fleetpipe.grpc_endpoint(),
        Payload::Traces(fixtures::traces(&[], vec![tokens])),
        None,
    )
    .await
    .expect("accepted");
    sink.wait_for(Signal::Traces, 5, Duration::from_secs(10)).await;
    let span = &received_spans(&sink)["old tokens"].1;
    assert_eq!(
        (
            span["gen_ai.usage.input_tokens"].as_str(),
            span["gen_ai.usage.output_tokens"].as_str()
        ),
        ("120", "30")
    );
}

/// Scenario: load runs while CONFIG.yaml is edited: Jira's id is renamed, then a broken
/// version is written, then a valid one again.
/// Guarantees: later spans carry the new id; the broken edit is refused (old tags stay) and
/// counted; every span sent arrives exactly once with one consistent tag set.
#[tokio::test]
async fn reloads_without_losing_or_duplicating_spans() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_registry(dir.path(), FIXTURE);
    let fleetpipe = start(&sink, &path, true).await;
    let send = |phase: &'static str| {
        let endpoint = fleetpipe.grpc_endpoint();
        async move {
            for i in 0..20 {
                let span = fixtures::span(
                    &format!("{phase}-{i}"),
                    SpanKind::Internal,
                    &[("gen_ai.tool.name", "jira_search")],
                );
                grpc_send(
                    &endpoint,
                    Payload::Traces(fixtures::traces(&[("service.name", "planner-1")], vec![span])),
                    None,
                )
                .await
                .expect("accepted");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    send("original").await;
    let version_of = |text: String| {
        text.lines()
            .find(|l| l.starts_with("fleetpipe_registry_info{"))
            .map(str::to_owned)
            .expect("registry_info")
    };
    let first_version = version_of(fleetpipe.metrics_text().await);

    // A concurrent sender keeps load running across the edit.
    let during = tokio::spawn(send("during"));
    std::fs::write(&path, FIXTURE.replace("id: \"work-tracking\"", "id: \"jira-cloud\"")).expect("edit");
    during.await.expect("sender");
    for _ in 0..100 {
        if version_of(fleetpipe.metrics_text().await) != first_version {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(
        version_of(fleetpipe.metrics_text().await),
        first_version,
        "the edit was loaded"
    );
    send("renamed").await;

    std::fs::write(
        &path,
        FIXTURE.replace("connection: \"api\"", "connection: \"telepathy\""),
    )
    .expect("broken edit");
    for _ in 0..100 {
        if fleetpipe
            .metric("fleetpipe_registry_reloads_total", &["outcome=\"failed\""])
            .await
            > 0.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        fleetpipe
            .metric("fleetpipe_registry_reloads_total", &["outcome=\"failed\""])
            .await
            > 0.0
    );
    send("after-broken").await;

    sink.wait_for(Signal::Traces, 80, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut count = 0;
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for payload in sink.received() {
        let Payload::Traces(request) = payload else { continue };
        for span in request
            .resource_spans
            .into_iter()
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
        {
            count += 1;
            let tags = integration_tags(&attributes(&span.attributes));
            assert_eq!(tags.len(), 6, "{} fully tagged: {tags:?}", span.name);
            assert_eq!(tags["integration.name"], "Jira");
            assert!(
                ids.insert(span.name.clone(), tags["integration.id"].clone()).is_none(),
                "{} arrived twice",
                span.name
            );
        }
    }
    assert_eq!(count, 80, "every span exactly once");
    for i in 0..20 {
        assert_eq!(ids[&format!("original-{i}")], "work-tracking");
        assert_eq!(ids[&format!("renamed-{i}")], "jira-cloud");
        assert_eq!(
            ids[&format!("after-broken-{i}")],
            "jira-cloud",
            "the broken edit was refused"
        );
    }
    assert!(
        fleetpipe.log().contains("unknown connection `telepathy`"),
        "the refusal names the problem"
    );
}
