//! Builders of agent-like OTLP requests for tests and benches.

use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() as u64) << 40
}

/// Eight bytes of a trace or span id: unique as `next_id` is (the mix is a bijection), and
/// with random-looking low bits as SDKs' ids have, which trace-id sampling decides by.
fn id_bytes() -> [u8; 8] {
    let mut z = next_id().wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).to_be_bytes()
}

pub(crate) fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

pub(crate) fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![
            string("service.name", service),
            string("gen_ai.agent.name", service),
            KeyValue {
                key: "host.tags".into(),
                value: Some(AnyValue {
                    value: Some(Value::ArrayValue(ArrayValue {
                        values: vec![
                            AnyValue {
                                value: Some(Value::BoolValue(true)),
                            },
                            AnyValue {
                                value: Some(Value::DoubleValue(1.5)),
                            },
                        ],
                    })),
                }),
                ..Default::default()
            },
        ],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "agent-runtime".into(),
        version: "1.2.3".into(),
        attributes: vec![string("scope.kind", "sdk")],
        dropped_attributes_count: 1,
    }
}

/// A trace of an agent turn: one `invoke_agent` root and `spans - 1` tool and model calls, with
/// every span field set so that round trips compare everything.
pub(crate) fn agent_trace(service: &str, spans: usize) -> ExportTraceServiceRequest {
    let trace_id = [id_bytes(), id_bytes()].concat();
    let root_id = id_bytes().to_vec();
    let start = 1_700_000_000_000_000_000u64 + next_id();
    let spans = (0..spans)
        .map(|i| {
            let (name, kind, attributes) = match i % 3 {
                0 if i == 0 => (
                    "invoke_agent triage".to_owned(),
                    SpanKind::Internal,
                    vec![string("gen_ai.operation.name", "invoke_agent")],
                ),
                1 => (
                    "execute_tool jira_search".to_owned(),
                    SpanKind::Client,
                    vec![
                        string("gen_ai.operation.name", "execute_tool"),
                        string("gen_ai.tool.name", "jira_search"),
                        string("server.address", "mcp.jira.acme.internal"),
                    ],
                ),
                _ => (
                    "chat claude-sonnet".to_owned(),
                    SpanKind::Client,
                    vec![
                        string("gen_ai.operation.name", "chat"),
                        string("gen_ai.request.model", "claude-sonnet"),
                        int("gen_ai.usage.input_tokens", 1200 + i as i64),
                        int("gen_ai.usage.output_tokens", 300),
                    ],
                ),
            };
            Span {
                trace_id: trace_id.clone(),
                span_id: if i == 0 { root_id.clone() } else { id_bytes().to_vec() },
                trace_state: "vendor=1".into(),
                parent_span_id: if i == 0 { Vec::new() } else { root_id.clone() },
                flags: 0x301,
                name,
                kind: kind as i32,
                start_time_unix_nano: start + i as u64 * 1_000,
                end_time_unix_nano: start + i as u64 * 1_000 + 500_000,
                attributes,
                dropped_attributes_count: 2,
                events: vec![Event {
                    time_unix_nano: start + 10,
                    name: "gen_ai.content.prompt".into(),
                    attributes: vec![int("len", 42)],
                    dropped_attributes_count: 0,
                }],
                dropped_events_count: 0,
                links: vec![Link {
                    trace_id: trace_id.clone(),
                    span_id: root_id.clone(),
                    trace_state: String::new(),
                    attributes: vec![],
                    dropped_attributes_count: 0,
                    flags: 1,
                }],
                dropped_links_count: 3,
                status: Some(Status {
                    message: if i % 5 == 4 {
                        "tool failed".into()
                    } else {
                        String::new()
                    },
                    code: if i % 5 == 4 {
                        StatusCode::Error as i32
                    } else {
                        StatusCode::Ok as i32
                    },
                }),
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(service)),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
        }],
    }
}

fn number_point(value: f64, at: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![string("gen_ai.token.type", "input")],
        start_time_unix_nano: at - 1_000,
        time_unix_nano: at,
        exemplars: vec![],
        flags: 0,
        value: Some(number_data_point::Value::AsDouble(value)),
    }
}

/// One metric of each kind: gauge, sum, histogram, exponential histogram and summary.
pub(crate) fn all_metric_kinds(service: &str) -> ExportMetricsServiceRequest {
    let at = 1_700_000_000_000_000_000u64 + next_id();
    let metric = |name: &str, data| Metric {
        name: name.into(),
        description: format!("{name} of the agent"),
        unit: "1".into(),
        metadata: vec![],
        data: Some(data),
    };
    let metrics = vec![
        metric(
            "agent.queue.depth",
            metric::Data::Gauge(Gauge {
                data_points: vec![
                    number_point(3.0, at),
                    NumberDataPoint {
                        value: Some(number_data_point::Value::AsInt(-7)),
                        ..number_point(0.0, at)
                    },
                ],
            }),
        ),
        metric(
            "gen_ai.client.token.usage.total",
            metric::Data::Sum(Sum {
                data_points: vec![number_point(1234.0, at)],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "gen_ai.client.operation.duration",
            metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![string("gen_ai.operation.name", "chat")],
                    start_time_unix_nano: at - 1_000,
                    time_unix_nano: at,
                    count: 6,
                    sum: Some(4.5),
                    bucket_counts: vec![1, 2, 3],
                    explicit_bounds: vec![0.5, 1.0],
                    exemplars: vec![],
                    flags: 0,
                    min: Some(0.1),
                    max: Some(2.0),
                }],
                aggregation_temporality: 1,
            }),
        ),
        metric(
            "mcp.tool.latency",
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: at - 1_000,
                    time_unix_nano: at,
                    count: 5,
                    sum: Some(10.0),
                    scale: 3,
                    zero_count: 1,
                    positive: Some(Buckets {
                        offset: -2,
                        bucket_counts: vec![1, 3],
                    }),
                    negative: Some(Buckets {
                        offset: 1,
                        bucket_counts: vec![0],
                    }),
                    flags: 0,
                    exemplars: vec![],
                    min: Some(0.0),
                    max: Some(4.0),
                    zero_threshold: 0.001,
                }],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "agent.turn.seconds",
            metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: at - 1_000,
                    time_unix_nano: at,
                    count: 10,
                    sum: 12.5,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.5,
                            value: 1.0,
                        },
                        ValueAtQuantile {
                            quantile: 0.99,
                            value: 3.5,
                        },
                    ],
                    flags: 0,
                }],
            }),
        ),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource(service)),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// `records` log records of an agent, correlated with a trace.
pub(crate) fn agent_logs(service: &str, records: usize) -> ExportLogsServiceRequest {
    let at = 1_700_000_000_000_000_000u64 + next_id();
    let trace_id = [id_bytes(), id_bytes()].concat();
    let log_records = (0..records)
        .map(|i| LogRecord {
            time_unix_nano: at + i as u64,
            observed_time_unix_nano: at + i as u64 + 5,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(Value::StringValue(format!("tool call {i} finished"))),
            }),
            attributes: vec![
                string("gen_ai.tool.name", "servicenow.create_incident"),
                int("attempt", i as i64),
            ],
            dropped_attributes_count: 0,
            flags: 1,
            trace_id: trace_id.clone(),
            span_id: id_bytes().to_vec(),
            event_name: "agent.tool.result".into(),
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(service)),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// One span of `kind` with string attributes, for attribution tests.
pub(crate) fn span(name: &str, kind: SpanKind, attributes: &[(&str, &str)]) -> Span {
    Span {
        trace_id: [id_bytes(), id_bytes()].concat(),
        span_id: id_bytes().to_vec(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_500_000_000,
        attributes: attributes.iter().map(|(k, v)| string(k, v)).collect(),
        ..Default::default()
    }
}

/// A traces request of `spans` under one resource with string attributes.
pub(crate) fn traces(resource_attributes: &[(&str, &str)], spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource_attributes.iter().map(|(k, v)| string(k, v)).collect(),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn double(key: &str, value: f64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::DoubleValue(value)),
        }),
        ..Default::default()
    }
}

fn strings(key: &str, values: &[&str]) -> KeyValue {
    let values = values
        .iter()
        .map(|v| AnyValue {
            value: Some(Value::StringValue((*v).into())),
        })
        .collect();
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::ArrayValue(ArrayValue { values })),
        }),
        ..Default::default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A trace of an agent turn shaped as instrumented runtimes send it: the resource attributes
/// of an OpenTelemetry SDK, an `invoke_agent` root, then model calls, `execute_tool` spans and
/// the MCP `tools/call` client spans under them, each with the attributes the GenAI and MCP
/// semantic conventions require or recommend (no opt-in content), in three instrumentation
/// scopes. Two spans in three call the Jira tool; unlike [`agent_trace`], spans carry no
/// events or links, as most do not.
pub(crate) fn semconv_agent_trace(service: &str, spans: usize) -> ExportTraceServiceRequest {
    let trace_id = [id_bytes(), id_bytes()].concat();
    let root_id = id_bytes().to_vec();
    let conversation = hex(&[id_bytes(), id_bytes()].concat());
    let start = 1_700_000_000_000_000_000u64 + next_id();
    let span = |i: usize, parent: &[u8], name: String, kind: SpanKind, attributes: Vec<KeyValue>| Span {
        trace_id: trace_id.clone(),
        span_id: if i == 0 { root_id.clone() } else { id_bytes().to_vec() },
        parent_span_id: parent.to_vec(),
        flags: 0x101,
        name,
        kind: kind as i32,
        start_time_unix_nano: start + i as u64 * 1_000_000,
        end_time_unix_nano: start + i as u64 * 1_000_000 + 800_000,
        attributes,
        status: Some(Status::default()),
        ..Default::default()
    };
    let mut scopes: [Vec<Span>; 3] = Default::default();
    scopes[0].push(span(
        0,
        &[],
        format!("invoke_agent {service}"),
        SpanKind::Internal,
        vec![
            string("gen_ai.operation.name", "invoke_agent"),
            string("gen_ai.provider.name", "anthropic"),
            string("gen_ai.agent.name", service),
            string("gen_ai.agent.id", &format!("asst_{}", hex(&id_bytes()))),
            string("gen_ai.conversation.id", &conversation),
            string("gen_ai.request.model", "claude-sonnet-4"),
        ],
    ));
    let mut tool_span = root_id.clone();
    for i in 1..spans {
        let call_id = format!("toolu_{}", hex(&[id_bytes(), id_bytes()].concat()));
        match i % 3 {
            1 => scopes[1].push(span(
                i,
                &root_id,
                "chat claude-sonnet-4".into(),
                SpanKind::Client,
                vec![
                    string("gen_ai.operation.name", "chat"),
                    string("gen_ai.provider.name", "anthropic"),
                    string("gen_ai.request.model", "claude-sonnet-4"),
                    int("gen_ai.request.max_tokens", 4096),
                    double("gen_ai.request.temperature", 0.2),
                    string("gen_ai.response.model", "claude-sonnet-4-20250514"),
                    string("gen_ai.response.id", &format!("msg_{}", hex(&id_bytes()))),
                    strings("gen_ai.response.finish_reasons", &["tool_use"]),
                    string("gen_ai.conversation.id", &conversation),
                    int("gen_ai.usage.input_tokens", 1200 + i as i64),
                    int("gen_ai.usage.output_tokens", 300),
                    string("server.address", "api.anthropic.com"),
                    int("server.port", 443),
                ],
            )),
            2 => {
                let executed = span(
                    i,
                    &root_id,
                    "execute_tool jira_search".into(),
                    SpanKind::Internal,
                    vec![
                        string("gen_ai.operation.name", "execute_tool"),
                        string("gen_ai.tool.name", "jira_search"),
                        string("gen_ai.tool.call.id", &call_id),
                        string("gen_ai.tool.type", "extension"),
                        string("gen_ai.tool.description", "Search Jira issues with JQL"),
                    ],
                );
                tool_span = executed.span_id.clone();
                scopes[0].push(executed);
            }
            _ => scopes[2].push(span(
                i,
                &tool_span,
                "tools/call jira_search".into(),
                SpanKind::Client,
                vec![
                    string("mcp.method.name", "tools/call"),
                    string("gen_ai.operation.name", "execute_tool"),
                    string("gen_ai.tool.name", "jira_search"),
                    string("mcp.session.id", &conversation),
                    string("mcp.protocol.version", "2025-06-18"),
                    string("jsonrpc.request.id", &i.to_string()),
                    string("network.transport", "tcp"),
                    string("network.protocol.name", "http"),
                    string("server.address", "mcp.jira.acme.internal"),
                    int("server.port", 443),
                ],
            )),
        }
    }
    let scope_names = [
        "opentelemetry.instrumentation.agents",
        "opentelemetry.instrumentation.anthropic",
        "opentelemetry.instrumentation.mcp",
    ];
    let scope_spans = scopes
        .into_iter()
        .zip(scope_names)
        .map(|(spans, name)| ScopeSpans {
            scope: Some(InstrumentationScope {
                name: name.into(),
                version: "0.47.1".into(),
                ..Default::default()
            }),
            spans,
            schema_url: "https://opentelemetry.io/schemas/1.37.0".into(),
        })
        .collect();
    let resource = Resource {
        attributes: vec![
            string("service.name", service),
            string("service.version", "2.4.1"),
            string("service.instance.id", &hex(&[id_bytes(), id_bytes()].concat())),
            string("deployment.environment.name", "production"),
            string("gen_ai.agent.name", service),
            string("telemetry.sdk.name", "opentelemetry"),
            string("telemetry.sdk.language", "python"),
            string("telemetry.sdk.version", "1.38.0"),
            string("host.name", "agents-7f9c6d5b8-x2k4p"),
            string("os.type", "linux"),
            int("process.pid", 4242),
        ],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans,
            schema_url: "https://opentelemetry.io/schemas/1.37.0".into(),
        }],
    }
}
