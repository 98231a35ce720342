//! The conversion of OTLP to window rows, checked value by value.

use super::builder::CHUNK_ROWS;
use super::builders::{IdColumn, write_hex};
use super::*;
use crate::otlp::wire::codec::Malformed;
use crate::otlp::{Payload, Request, Signal};
use crate::rows::sampling::TraceSampler;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampNanosecondType};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Summary, SummaryDataPoint, metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            string("service.name", "triage-svc"),
            string("operating_model.layer", "execution"),
        ],
        ..Default::default()
    })
}

/// A traces request of `spans` from the `resource()` service.
fn traces(spans: Vec<Span>) -> Payload {
    Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn window(payload: Payload) -> [RecordBatch; 3] {
    let mut builder = WindowBuilder::new(7);
    builder.add(&Request::from_payload(&payload)).expect("well-formed");
    builder.finish().expect("batches").map(|chunks| match &chunks[..] {
        [] => RecordBatch::new_empty(Arc::clone(&SPANS)),
        [batch] => batch.clone(),
        more => panic!("{} chunks for one request", more.len()),
    })
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(column).expect(column).as_string::<i32>();
    array.iter().map(|v| v.map(str::to_owned)).collect()
}

fn ints(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
    let array = batch.column_by_name(column).expect(column).as_primitive::<Int64Type>();
    array.iter().collect()
}

fn floats(batch: &RecordBatch, column: &str) -> Vec<Option<f64>> {
    let array = batch
        .column_by_name(column)
        .expect(column)
        .as_primitive::<Float64Type>();
    array.iter().collect()
}

/// The `attributes` map of each row, as `key=value` texts.
fn attribute_maps(batch: &RecordBatch) -> Vec<Vec<String>> {
    let maps = batch.column_by_name("attributes").expect("attributes").as_map();
    (0..maps.len())
        .map(|row| {
            let entries = maps.value(row);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            (0..entries.len())
                .map(|i| format!("{}={}", keys.value(i), values.value(i)))
                .collect()
        })
        .collect()
}

/// Guarantees: the attributes a cost report reads (response model, cache and reasoning
/// tokens, conversation, the agent on the span) fill their columns and stay out of the map.
#[test]
fn cost_attributes_have_columns() {
    let span = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x02; 8],
        name: "chat claude-sonnet".into(),
        attributes: vec![
            string("gen_ai.response.model", "claude-sonnet-4-20250514"),
            kv("gen_ai.usage.cache_read.input_tokens", Value::IntValue(900)),
            kv("gen_ai.usage.cache_write.input_tokens", Value::IntValue(120)),
            kv("gen_ai.usage.reasoning.output_tokens", Value::StringValue("64".into())),
            string("gen_ai.conversation.id", "conv-7"),
            string("gen_ai.agent.id", "agent-42"),
            string("gen_ai.agent.name", "triage"),
            string("gen_ai.agent.version", "1.3.0"),
        ],
        ..Default::default()
    };
    let [spans, _, _] = window(traces(vec![span]));
    let one = |s: &str| Some(s.to_owned());
    assert_eq!(strings(&spans, "response_model"), [one("claude-sonnet-4-20250514")]);
    assert_eq!(ints(&spans, "cache_read_tokens"), [Some(900)]);
    assert_eq!(ints(&spans, "cache_write_tokens"), [Some(120)]);
    assert_eq!(ints(&spans, "reasoning_tokens"), [Some(64)]);
    assert_eq!(strings(&spans, "conversation_id"), [one("conv-7")]);
    assert_eq!(strings(&spans, "agent_id"), [one("agent-42")]);
    assert_eq!(strings(&spans, "agent_name"), [one("triage")]);
    assert_eq!(strings(&spans, "agent_version"), [one("1.3.0")]);
    assert_eq!(attribute_maps(&spans), [Vec::<String>::new()]);
}

/// Guarantees: a span's fields, lifted attributes (of any value type) and the rest of its
/// attributes arrive in their columns as OTLP/JSON would write them.
#[test]
fn span_rows_read_from_the_wire() {
    let span = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        name: "execute_tool jira_search".into(),
        kind: 3,
        start_time_unix_nano: 1_000_000,
        end_time_unix_nano: 3_500_000,
        attributes: vec![
            string("gen_ai.tool.name", "jira_search"),
            string("integration.id", "work-tracking"),
            kv("integration.registered", Value::BoolValue(true)),
            kv("gen_ai.usage.input_tokens", Value::IntValue(1200)),
            kv("http.response.status_code", Value::StringValue("429".into())),
            kv("retries", Value::IntValue(-2)),
            kv("ratio", Value::DoubleValue(0.5)),
            kv("blob", Value::BytesValue(vec![1, 255])),
            kv(
                "tags",
                Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::StringValue("a".into())),
                    }],
                }),
            ),
        ],
        status: Some(Status {
            message: "tool failed".into(),
            code: 2,
        }),
        ..Default::default()
    };
    let [spans, _, _] = window(traces(vec![span]));
    assert_eq!(spans.num_rows(), 1);
    let one = |s: &str| Some(s.to_owned());
    assert_eq!(strings(&spans, "trace_id"), [one(&"ab".repeat(16))]);
    assert_eq!(strings(&spans, "span_id"), [one("0101010101010101")]);
    assert_eq!(strings(&spans, "parent_span_id"), [None]);
    assert_eq!(strings(&spans, "kind"), [one("client")]);
    assert_eq!(strings(&spans, "status_code"), [one("error")]);
    assert_eq!(strings(&spans, "status_message"), [one("tool failed")]);
    assert_eq!(floats(&spans, "duration_ms"), [Some(2.5)]);
    let start = spans
        .column_by_name("start_time")
        .expect("start")
        .as_primitive::<TimestampNanosecondType>();
    assert_eq!(start.value(0), 1_000_000);
    assert_eq!(
        strings(&spans, "agent"),
        [one("triage-svc")],
        "the service name stands for the agent"
    );
    assert_eq!(strings(&spans, "layer"), [one("execution")]);
    assert_eq!(strings(&spans, "tool_name"), [one("jira_search")]);
    assert_eq!(strings(&spans, "integration_id"), [one("work-tracking")]);
    assert_eq!(strings(&spans, "integration_name"), [None]);
    let registered = spans
        .column_by_name("integration_registered")
        .expect("registered")
        .as_boolean();
    assert!(registered.value(0));
    assert_eq!(ints(&spans, "input_tokens"), [Some(1200)]);
    assert_eq!(ints(&spans, "http_status_code"), [Some(429)], "numeric strings count");
    assert_eq!(ints(&spans, "output_tokens"), [None]);
    assert_eq!(
        attribute_maps(&spans),
        [vec!["retries=-2", "ratio=0.5", "blob=01ff", "tags=[a]"]],
        "lifted keys are left out of the map"
    );
}

/// Guarantees: every kind of metric data point becomes a row with its value, or count and
/// sum, and lifted integration attributes.
#[test]
fn metric_points_of_every_kind() {
    let number = |value| NumberDataPoint {
        attributes: vec![string("integration.id", "work-tracking"), string("route", "/a")],
        time_unix_nano: 5,
        value: Some(value),
        ..Default::default()
    };
    let metric = |name: &str, data| Metric {
        name: name.into(),
        unit: "1".into(),
        data: Some(data),
        ..Default::default()
    };
    let metrics = vec![
        metric(
            "gauge",
            Data::Gauge(Gauge {
                data_points: vec![number(number_data_point::Value::AsDouble(1.5))],
            }),
        ),
        metric(
            "sum",
            Data::Sum(opentelemetry_proto::tonic::metrics::v1::Sum {
                data_points: vec![number(number_data_point::Value::AsInt(-3))],
                ..Default::default()
            }),
        ),
        metric(
            "histogram",
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    count: 4,
                    sum: Some(10.0),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        ),
        metric(
            "exponential",
            Data::ExponentialHistogram(opentelemetry_proto::tonic::metrics::v1::ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    count: 6,
                    sum: None,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        ),
        metric(
            "summary",
            Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    count: 2,
                    sum: 0.0,
                    ..Default::default()
                }],
            }),
        ),
    ];
    let [_, points, _] = window(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }));
    let some = |s: &[&str]| s.iter().map(|v| Some((*v).to_owned())).collect::<Vec<_>>();
    assert_eq!(
        strings(&points, "metric_type"),
        some(&["gauge", "sum", "histogram", "exponential_histogram", "summary"])
    );
    assert_eq!(floats(&points, "value"), [Some(1.5), Some(-3.0), None, None, None]);
    assert_eq!(ints(&points, "count"), [None, None, Some(4), Some(6), Some(2)]);
    assert_eq!(floats(&points, "sum"), [None, None, Some(10.0), None, Some(0.0)]);
    assert_eq!(strings(&points, "unit"), some(&["1"; 5]));
    assert_eq!(
        strings(&points, "integration_id"),
        [
            Some("work-tracking".to_owned()),
            Some("work-tracking".to_owned()),
            None,
            None,
            None
        ]
    );
    assert_eq!(attribute_maps(&points)[0], ["route=/a"]);
}

/// Guarantees: log records keep their time (observed time when unset), severity, body and
/// ids; fleetpipe's own anomaly records are left out.
#[test]
fn log_rows_leave_out_anomaly_records() {
    let records = vec![
        LogRecord {
            observed_time_unix_nano: 9,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: Some(AnyValue {
                value: Some(Value::StringValue("tool failed".into())),
            }),
            trace_id: vec![0x0f; 16],
            attributes: vec![string("integration.target", "pastebin.example.com")],
            ..Default::default()
        },
        LogRecord {
            event_name: crate::otlp::semconv::ANOMALY_EVENT.into(),
            ..Default::default()
        },
    ];
    let [_, _, logs] = window(Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }));
    assert_eq!(logs.num_rows(), 1);
    let time = logs
        .column_by_name("time")
        .expect("time")
        .as_primitive::<TimestampNanosecondType>();
    assert_eq!(time.value(0), 9);
    assert_eq!(ints(&logs, "severity_number"), [Some(17)]);
    assert_eq!(strings(&logs, "body"), [Some("tool failed".to_owned())]);
    assert_eq!(strings(&logs, "trace_id"), [Some("0f".repeat(16))]);
    assert_eq!(strings(&logs, "span_id"), [None]);
    assert_eq!(
        strings(&logs, "integration_target"),
        [Some("pastebin.example.com".to_owned())]
    );
}

/// Guarantees: hex is lowercase, two digits a byte, at any length, written as text and
/// into an id column (where an empty id is null).
#[test]
fn hex_is_lowercase_two_digits_a_byte() {
    let hex = |bytes: &[u8]| {
        let mut out = String::new();
        write_hex(&mut out, bytes).expect("writes");
        out
    };
    let every_byte: Vec<u8> = (0..=255).collect();
    let formatted: String = every_byte.iter().map(|b| format!("{b:02x}")).collect();
    let cases: [(&[u8], &str); 4] = [
        (&[0x00, 0xab, 0x0f, 0xf0], "00ab0ff0"),
        (&[0xc3; 40], &"c3".repeat(40)),
        (&every_byte, &formatted),
        (&[], ""),
    ];
    let mut ids = IdColumn::new();
    for (bytes, expected) in cases {
        assert_eq!(hex(bytes), expected);
        ids.append(bytes);
    }
    let column = ids.finish().expect("hex is UTF-8");
    let column: Vec<Option<&str>> = column.as_string::<i32>().iter().collect();
    let expected: Vec<Option<&str>> = cases
        .iter()
        .map(|(_, text)| Some(*text).filter(|t| !t.is_empty()))
        .collect();
    assert_eq!(column, expected);
}

/// Guarantees: a span whose name is not UTF-8 is skipped and reported when the `name`
/// column is built; the spans around it are kept. A window that does not build `name`
/// keeps the span.
#[test]
fn malformed_span_is_skipped_whole() {
    let span = |name: &str| Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span("first"), span("BAD!"), span("last")],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut bytes = Payload::Traces(request).encode_protobuf().to_vec();
    let at = bytes.windows(4).position(|w| w == b"BAD!").expect("name");
    bytes[at] = 0xff;
    let request = Request::from_protobuf(Signal::Traces, bytes.into(), None)
        .expect("framing is valid")
        .0;
    let mut builder = WindowBuilder::new(0);
    assert!(matches!(
        builder.add(&request),
        Err(RowError::Malformed(Malformed::Utf8 { field: 5 }))
    ));
    let [spans, _, _] = builder.finish().expect("batches");
    let spans = &spans[0];
    assert_eq!(
        strings(spans, "name"),
        [Some("first".to_owned()), Some("last".to_owned())]
    );

    let mut kept = KeptColumns::WINDOW_START;
    kept.keep("spans", Some(&[SPANS.index_of("span_id").expect("span column")]));
    let mut builder = WindowBuilder::keeping(0, kept);
    builder.add(&request).expect("the name is not read");
    let [spans, _, _] = builder.finish().expect("batches");
    assert_eq!(
        strings(&spans[0], "span_id"),
        vec![Some("0202020202020202".to_owned()); 3]
    );
}

/// Guarantees: a window of more rows than a batch holds is split into full batches and a
/// last partial one, and rows in later batches (built by builders renewed at each batch)
/// keep every column, nulls and map entries included.
#[test]
fn window_larger_than_a_batch_is_split_without_losing_rows() {
    let span = |n: usize| Span {
        trace_id: vec![1; 16],
        span_id: (n as u64).to_be_bytes().to_vec(),
        name: format!("span {n}"),
        attributes: if n.is_multiple_of(2) {
            vec![
                string("gen_ai.tool.name", "jira_search"),
                string("ticket", &n.to_string()),
            ]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    let total = 2 * CHUNK_ROWS + 3;
    let spans: Vec<Span> = (0..total).map(span).collect();
    let mut builder = WindowBuilder::new(0);
    for part in spans.chunks(1000) {
        builder
            .add(&Request::from_payload(&traces(part.to_vec())))
            .expect("well-formed");
    }
    let [batches, _, _] = builder.finish().expect("batches");
    let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes.iter().sum::<usize>(), total);
    assert!(sizes[..sizes.len() - 1].iter().all(|rows| *rows >= CHUNK_ROWS));
    let last = batches.last().expect("a batch");
    let rows = last.num_rows();
    let first_row = total - rows;
    let expected = |n: usize| Some(format!("span {n}"));
    assert_eq!(
        strings(last, "name"),
        (first_row..total).map(expected).collect::<Vec<_>>()
    );
    let tools: Vec<Option<String>> = (first_row..total)
        .map(|n| (n.is_multiple_of(2)).then(|| "jira_search".to_owned()))
        .collect();
    assert_eq!(strings(last, "tool_name"), tools);
    let maps: Vec<Vec<String>> = (first_row..total)
        .map(|n| {
            if n.is_multiple_of(2) {
                vec![format!("ticket={n}")]
            } else {
                Vec::new()
            }
        })
        .collect();
    assert_eq!(attribute_maps(last), maps);
    assert_eq!(strings(last, "service_name"), vec![Some("triage-svc".to_owned()); rows]);
}

/// Guarantees: a sampling window keeps every span of the traces the sampler keeps and no
/// span of the others, in the order they came, and goes on sampling after it is closed
/// into the next window; a span without a trace id is kept.
#[test]
fn sampling_keeps_whole_traces() {
    let sampler = TraceSampler::percentage(30.0);
    let trace_id = |trace: u64| {
        let mut id = [0u8; 16];
        id[8..].copy_from_slice(&trace.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
        id
    };
    // 200 traces of 3 spans, interleaved as a batch of concurrent traces arrives.
    let spans: Vec<Span> = (0..3u64)
        .flat_map(|step| (0..200u64).map(move |trace| (trace, step)))
        .map(|(trace, step)| Span {
            trace_id: trace_id(trace).to_vec(),
            name: format!("{trace}/{step}"),
            ..Default::default()
        })
        .chain([Span {
            name: "no trace id".into(),
            ..Default::default()
        }])
        .collect();
    let expected: Vec<Option<String>> = spans
        .iter()
        .filter(|span| sampler.keeps(&span.trace_id))
        .map(|span| Some(span.name.clone()))
        .collect();
    let kept_traces = (0..200).filter(|t| sampler.keeps(&trace_id(*t))).count();
    assert!(
        (40..=80).contains(&kept_traces),
        "{kept_traces} of 200 traces kept at 30%"
    );
    assert_eq!(expected.len(), 3 * kept_traces + 1);

    let request = Request::from_payload(&traces(spans));
    let mut builder = WindowBuilder::new(0).sampling(sampler);
    builder.add(&request).expect("well-formed");
    let [first, _, _] = builder.close(10, KeptColumns::ALL).expect("batches");
    builder.add(&request).expect("well-formed");
    let [second, _, _] = builder.finish().expect("batches");
    for batches in [first, second] {
        assert_eq!(strings(&batches[0], "name"), expected);
    }
}

/// Guarantees: a batch of requests of one trace each, and one of two traces, gives the
/// rows of exactly the kept traces when requests whose traces are all left out are passed
/// over unread.
#[test]
fn requests_of_left_out_traces_are_passed_over() {
    let sampler = TraceSampler::percentage(30.0);
    let trace_id = |trace: u64| [[0u8; 8], trace.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()].concat();
    let span = |trace: u64, step: u64| Span {
        trace_id: trace_id(trace),
        span_id: vec![1; 8],
        name: format!("{trace}/{step}"),
        ..Default::default()
    };
    let request_of = |traces_in_request: &[u64]| {
        let spans = (0..2).flat_map(|step| traces_in_request.iter().map(move |&trace| span(trace, step)));
        let bytes = traces(spans.collect()).encode_protobuf();
        Request::from_protobuf(Signal::Traces, bytes, None).expect("valid").0
    };
    let kept = |trace: &u64| sampler.keeps(&trace_id(*trace));
    let (one_kept, one_left_out) = (
        (0..).find(kept).expect("a kept trace"),
        (0..).find(|t| !kept(t)).expect("a left-out trace"),
    );
    let requests: Vec<Vec<u64>> = std::iter::once(vec![one_left_out, one_kept])
        .chain((100..160).map(|trace| vec![trace]))
        .collect();
    let mut batch = request_of(&requests[0]);
    for traces_in_request in &requests[1..] {
        batch.merge(request_of(traces_in_request));
    }
    let expected: Vec<Option<String>> = requests
        .iter()
        .flat_map(|traces| (0..2).flat_map(move |step| traces.iter().map(move |&trace| (trace, step))))
        .filter(|(trace, _)| kept(trace))
        .map(|(trace, step)| Some(format!("{trace}/{step}")))
        .collect();
    let kept_requests = (100..160).filter(kept).count();
    assert!(
        (5..55).contains(&kept_requests),
        "{kept_requests} of 60 one-trace requests kept"
    );

    let mut builder = WindowBuilder::new(0).sampling(sampler);
    builder.add(&batch).expect("well-formed");
    let [spans, _, _] = builder.finish().expect("batches");
    assert_eq!(strings(&spans[0], "name"), expected);
}

/// Guarantees: closing a window hands over exactly its rows, and the builder goes on
/// with the next window: its rows carry the new `window_start` and none of the old ones.
#[test]
fn closing_a_window_starts_the_next() {
    let request = |names: &[&str]| {
        let spans = names
            .iter()
            .map(|name| Span {
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                name: (*name).into(),
                ..Default::default()
            })
            .collect();
        Request::from_payload(&traces(spans))
    };
    let starts = |batch: &RecordBatch| -> Vec<i64> {
        let column = batch.column_by_name("window_start").expect("window_start");
        column.as_primitive::<TimestampNanosecondType>().values().to_vec()
    };
    let mut builder = WindowBuilder::new(10);
    builder.add(&request(&["a", "b"])).expect("well-formed");
    let [first, _, _] = builder.close(20, KeptColumns::ALL).expect("batches");
    assert_eq!((builder.window_start(), builder.rows), (20, 0));
    builder.add(&request(&["c"])).expect("well-formed");
    let [second, _, _] = builder.finish().expect("batches");
    assert_eq!(strings(&first[0], "name"), [Some("a".to_owned()), Some("b".to_owned())]);
    assert_eq!(starts(&first[0]), [10, 10]);
    assert_eq!(second.len(), 1);
    assert_eq!(strings(&second[0], "name"), [Some("c".to_owned())]);
    assert_eq!(starts(&second[0]), [20]);
}

/// Guarantees: a window keeping some columns builds exactly those and `window_start`; the
/// others are named by `left_out`; the next window builds the columns `close` is given.
#[test]
fn window_builds_only_the_kept_columns() {
    let position = |name: &str| SPANS.index_of(name).expect("span column");
    let mut kept = KeptColumns::WINDOW_START;
    kept.keep("spans", Some(&[position("tool_name"), position("layer")]));
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "call".into(),
        attributes: vec![string("gen_ai.tool.name", "jira_search"), string("ticket", "7")],
        ..Default::default()
    };
    let request = Request::from_payload(&traces(vec![span.clone(), span]));
    let mut builder = WindowBuilder::keeping(5, kept);
    builder.add(&request).expect("well-formed");
    let [pruned, _, _] = builder.close(6, KeptColumns::ALL).expect("batches");
    let batch = &pruned[0];
    let names: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["window_start", "layer", "tool_name"]);
    assert_eq!(strings(batch, "tool_name"), vec![Some("jira_search".to_owned()); 2]);
    assert_eq!(strings(batch, "layer"), vec![Some("execution".to_owned()); 2]);
    assert_eq!(
        kept.left_out("spans", Some(&[position("name"), position("tool_name")])),
        ["name"]
    );
    assert!(kept.left_out("integrations", None).is_empty());
    builder.add(&request).expect("well-formed");
    let [all, _, _] = builder.finish().expect("batches");
    assert_eq!(strings(&all[0], "name"), vec![Some("call".to_owned()); 2]);
    assert_eq!(attribute_maps(&all[0]), vec![vec!["ticket=7".to_owned()]; 2]);
}

/// Guarantees: every record table fits the 64-bit column mask.
#[test]
fn record_tables_fit_the_column_mask() {
    for (index, table) in RECORD_TABLES.iter().enumerate() {
        assert!(record_schema(index).fields().len() <= 64, "{table}");
    }
}
