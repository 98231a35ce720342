//! Issue 29 over the running binary: each exporter gets only what its data flow allows, and
//! what it removes or hashes never reaches it; checked on what the sinks received.

use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, exemplar, metric::Data};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};

use crate::support::sink::Sink;
use crate::support::{Fleetpipe, fixtures, grpc_send, otlp_exporter, pipeline_config, spans_in};

/// A config with the given exporters (YAML under `exporters:`) on every pipeline.
async fn start(exporters: &str, names: &[&str]) -> Fleetpipe {
    Fleetpipe::start(&pipeline_config(exporters, names, false)).await
}

fn requests() -> [Payload; 3] {
    [
        Payload::Traces(fixtures::agent_trace("gov-agent", 4)),
        Payload::Metrics(fixtures::all_metric_kinds("gov-agent")),
        Payload::Logs(fixtures::agent_logs("gov-agent", 3)),
    ]
}

async fn send_all(fleetpipe: &Fleetpipe, payloads: &[Payload]) {
    for payload in payloads {
        grpc_send(&fleetpipe.grpc_endpoint(), payload.clone(), None)
            .await
            .expect("accepted");
    }
}

/// Acceptance 1: one exporter restricted to metrics, the other unrestricted.
/// Guarantees: the first sink gets the data points and no span or log record; the second
/// everything; `/metrics` counts the spans and log records withheld, by reason `signal`.
#[tokio::test]
async fn an_exporter_restricted_to_metrics_gets_no_spans_or_logs() {
    let (metrics_only, everything) = (Sink::start().await, Sink::start().await);
    let exporters = format!(
        "{}  data_flow: {{signals: [metrics]}}\n{}",
        otlp_exporter("otlp/metrics", &metrics_only.endpoint()),
        otlp_exporter("otlp/all", &everything.endpoint())
    );
    let fleetpipe = start(&exporters, &["otlp/metrics", "otlp/all"]).await;
    let sent = requests();
    send_all(&fleetpipe, &sent).await;
    let counts = sent.clone().map(|p| p.item_count());
    for (signal, count) in Signal::ALL.into_iter().zip(counts) {
        everything.wait_for(signal, count, Duration::from_secs(10)).await;
    }
    metrics_only
        .wait_for(Signal::Metrics, counts[1], Duration::from_secs(10))
        .await;
    assert_eq!(
        (
            metrics_only.item_count(Signal::Traces),
            metrics_only.item_count(Signal::Logs)
        ),
        (0, 0)
    );
    for (signal, count) in [("traces", counts[0]), ("logs", counts[2]), ("metrics", 0)] {
        let signal = format!("signal=\"{signal}\"");
        let labels = [r#"exporter="otlp/metrics""#, signal.as_str(), r#"reason="signal""#];
        let withheld = fleetpipe
            .metric("fleetpipe_exporter_withheld_items_total", &labels)
            .await;
        assert_eq!(withheld, count as f64, "{signal}");
    }
}

/// GenAI content keys, current and older spellings, one concrete key for each listed name.
const CONTENT_KEYS: [&str; 17] = [
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.tool.definitions",
    "gen_ai.prompt",
    "gen_ai.prompt.0.content",
    "gen_ai.completion",
    "gen_ai.completion.0.content",
    "llm.input_messages.0.message.content",
    "llm.output_messages.0.message.content",
    "llm.prompts.0",
    "input.value",
    "output.value",
    "traceloop.entity.input",
    "traceloop.entity.output",
];

fn span_keys(payloads: &[Payload]) -> Vec<String> {
    spans_in(payloads)
        .flat_map(|span| span.attributes.iter().map(|kv| kv.key.clone()))
        .collect()
}

/// Acceptance 2: a span carrying every GenAI content key, to an `otlp` exporter, a second
/// one with `genai_content: keep`, and a `file` exporter.
/// Guarantees: the first sink gets the span without any of them (its other attributes
/// intact), the second and the file with all of them.
#[tokio::test]
async fn genai_content_stays_home_unless_allowed() {
    let (vendor, allowed) = (Sink::start().await, Sink::start().await);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("spans.jsonl");
    let exporters = format!(
        "{}{}  redaction: {{genai_content: keep}}\nfile:\n  path: '{}'\n",
        otlp_exporter("otlp/vendor", &vendor.endpoint()),
        otlp_exporter("otlp/allowed", &allowed.endpoint()),
        file.display()
    );
    let fleetpipe = start(&exporters, &["otlp/vendor", "otlp/allowed", "file"]).await;
    let mut attributes: Vec<(&str, &str)> = CONTENT_KEYS
        .iter()
        .map(|k| (*k, "[{\"role\":\"user\",\"content\":\"secret plan\"}]"))
        .collect();
    attributes.push(("gen_ai.request.model", "claude-sonnet"));
    let span = fixtures::span("chat claude-sonnet", SpanKind::Client, &attributes);
    let sent = Payload::Traces(fixtures::traces(&[("service.name", "gov-agent")], vec![span]));
    send_all(&fleetpipe, std::slice::from_ref(&sent)).await;
    vendor.wait_for(Signal::Traces, 1, Duration::from_secs(10)).await;
    allowed.wait_for(Signal::Traces, 1, Duration::from_secs(10)).await;
    assert_eq!(span_keys(&vendor.received()), ["gen_ai.request.model"]);
    assert_eq!(span_keys(&allowed.received()), span_keys(std::slice::from_ref(&sent)));
    let written = wait_for_file(&file).await;
    assert_eq!(span_keys(&written), span_keys(&[sent]));
    let removed = fleetpipe
        .metric(
            "fleetpipe_exporter_redacted_attributes_total",
            &[r#"exporter="otlp/vendor""#, r#"action="removed""#],
        )
        .await;
    assert_eq!(removed, CONTENT_KEYS.len() as f64);
}

async fn wait_for_file(path: &std::path::Path) -> Vec<Payload> {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text
                .lines()
                .map(|line| Payload::decode_json(Signal::Traces, line.as_bytes()).expect("OTLP/JSON line"))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing written to {}", path.display());
}

fn string(key: &str, value: &str) -> KeyValue {
    fixtures::string(key, value)
}

/// The attributes planted at every level: one removed, one hashed, and a map holding one of
/// each and one kept.
fn planted() -> Vec<KeyValue> {
    vec![
        string("secret.token", "s3cr3t"),
        string("user.email", "a@example.com"),
        KeyValue {
            key: "ctx".into(),
            value: Some(AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![
                        string("secret.token", "s3cr3t"),
                        string("user.email", "a@example.com"),
                        string("kept", "k"),
                    ],
                })),
            }),
            ..Default::default()
        },
    ]
}

/// Every request with [`planted`] added to every attribute list the issue names.
fn planted_requests() -> [Payload; 3] {
    let [mut traces, mut metrics, mut logs] = requests();
    if let Payload::Traces(request) = &mut traces {
        for rs in &mut request.resource_spans {
            rs.resource.get_or_insert_default().attributes.extend(planted());
            for ss in &mut rs.scope_spans {
                ss.scope.get_or_insert_default().attributes.extend(planted());
                for span in &mut ss.spans {
                    span.attributes.extend(planted());
                    span.events.push(Event {
                        name: "e".into(),
                        attributes: planted(),
                        ..Default::default()
                    });
                    span.links.push(Link {
                        trace_id: vec![5; 16],
                        span_id: vec![6; 8],
                        attributes: planted(),
                        ..Default::default()
                    });
                }
            }
        }
    }
    if let Payload::Metrics(request) = &mut metrics {
        for metric in request
            .resource_metrics
            .iter_mut()
            .flat_map(|r| &mut r.scope_metrics)
            .flat_map(|s| &mut s.metrics)
        {
            match &mut metric.data {
                Some(Data::Gauge(gauge)) => gauge.data_points.iter_mut().for_each(|p| {
                    p.attributes.extend(planted());
                    p.exemplars.push(Exemplar {
                        filtered_attributes: planted(),
                        value: Some(exemplar::Value::AsDouble(1.0)),
                        ..Default::default()
                    });
                }),
                Some(Data::Histogram(histogram)) => histogram
                    .data_points
                    .iter_mut()
                    .for_each(|p| p.attributes.extend(planted())),
                _ => {}
            }
        }
    }
    if let Payload::Logs(request) = &mut logs {
        for record in request
            .resource_logs
            .iter_mut()
            .flat_map(|r| &mut r.scope_logs)
            .flat_map(|s| &mut s.log_records)
        {
            record.attributes.extend(planted());
            record.body = Some(AnyValue {
                value: Some(Value::KvlistValue(KeyValueList { values: planted() })),
            });
        }
    }
    [traces, metrics, logs]
}

/// Every attribute in a payload, nested ones included, as (key, string value).
fn all_attributes(payload: &Payload) -> Vec<(String, String)> {
    fn walk(list: &[KeyValue], out: &mut Vec<(String, String)>) {
        for kv in list {
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::KvlistValue(inner)) => walk(&inner.values, out),
                Some(Value::StringValue(s)) => out.push((kv.key.clone(), s.clone())),
                _ => out.push((kv.key.clone(), String::new())),
            }
        }
    }
    // Through the JSON form every attribute list is an array of `{key, value}` objects.
    let json: serde_json::Value = serde_json::from_slice(&payload.encode_json()).expect("json");
    let mut lists = Vec::new();
    collect_lists(&json, &mut lists);
    let mut out = Vec::new();
    for list in lists {
        let parsed: Vec<KeyValue> = serde_json::from_value(list).unwrap_or_default();
        walk(&parsed, &mut out);
    }
    out
}

/// Every array of `{key, value}` objects in the JSON, outermost only.
fn collect_lists(json: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match json {
        serde_json::Value::Array(items) if items.first().is_some_and(|i| i.get("key").is_some()) => {
            out.push(json.clone())
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_lists(i, out)),
        serde_json::Value::Object(map) if map.contains_key("kvlistValue") => {
            out.push(map["kvlistValue"]["values"].clone())
        }
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_lists(v, out)),
        _ => {}
    }
}

/// Acceptance 3: `remove` and `hash` on resource, scope, span, event, link, data point,
/// exemplar and log attributes and the log body, nested maps included; two instances with
/// different keys.
/// Guarantees: no `secret.token` arrives; every `user.email` arrives as the HMAC-SHA256 of
/// its value under the instance's key: the same for the same key, different under another.
#[tokio::test]
async fn remove_and_hash_reach_every_level() {
    let mut hashes = Vec::new();
    for key in ["first-key-0123456789", "second-key-0123456789"] {
        let sink = Sink::start().await;
        let exporters = format!(
            "{}  redaction: {{remove: ['secret.*'], hash: ['user.*'], hash_key: '{key}'}}\n",
            otlp_exporter("otlp", &sink.endpoint())
        );
        let fleetpipe = start(&exporters, &["otlp"]).await;
        let sent = planted_requests();
        send_all(&fleetpipe, &sent).await;
        for payload in &sent {
            sink.wait_for(payload.signal(), payload.item_count(), Duration::from_secs(10))
                .await;
        }
        let received: Vec<(String, String)> = sink.received().iter().flat_map(all_attributes).collect();
        let sent_emails = sent
            .iter()
            .flat_map(all_attributes)
            .filter(|(k, _)| k == "user.email")
            .count();
        assert!(sent_emails >= 20, "planted at every level: {sent_emails}");
        assert!(
            received.iter().all(|(k, _)| k != "secret.token"),
            "a removed key arrived"
        );
        let emails: Vec<&String> = received
            .iter()
            .filter(|(k, _)| k == "user.email")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(emails.len(), sent_emails, "every hashed attribute arrives, hashed");
        let expected: String = fleetpipe::govern::hmac_sha256(key.as_bytes(), b"a@example.com")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(emails.iter().all(|v| **v == expected), "{emails:?}");
        assert!(
            received.iter().any(|(k, v)| k == "kept" && v == "k"),
            "the rest of a nested map arrives"
        );
        hashes.push(expected);
    }
    assert_ne!(hashes[0], hashes[1]);
}
