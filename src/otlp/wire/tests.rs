use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Proto;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::Event};
use prost::Message;

use super::*;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Proto::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn span(name: &str, kind: i32, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        kind,
        attributes,
        events: vec![Event {
            name: "e".into(),
            attributes: vec![kv("inside", "event")],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn traces() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "planner")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        span(
                            "tool",
                            3,
                            vec![kv("gen_ai.tool.name", "jira_search"), kv("replace.me", "old")],
                        ),
                        span("internal", 1, vec![]),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            },
            // No resource at all: the visitor's resource attributes create one.
            ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    spans: vec![span("client", 3, vec![kv("server.address", "x")])],
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
    }
}

/// Two metrics (a gauge of two points, a histogram of one), every point with an attribute.
fn metrics() -> ExportMetricsServiceRequest {
    let point = NumberDataPoint {
        attributes: vec![kv("a", "b")],
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "g".into(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: vec![point.clone(), point],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "h".into(),
                        data: Some(Data::Histogram(opentelemetry_proto::tonic::metrics::v1::Histogram {
                            data_points: vec![HistogramDataPoint::default()],
                            aggregation_temporality: 1,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Two log records, the second with a 3-byte trace id.
fn logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord::default(),
                    LogRecord {
                        trace_id: vec![0; 3],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Tags client spans and every resource; replaces `replace.me`.
struct Tagging {
    seen: Vec<(RecordKind, u64, Vec<String>)>,
}

impl Visitor for Tagging {
    fn resource(&mut self, attributes: &[Attribute<'_>], edit: &mut Edit<'_>) {
        let service = attributes
            .iter()
            .find(|a| a.has_key("service.name"))
            .and_then(Attribute::string);
        edit.add(
            "layer",
            NewValue::String(if service.is_some() { "strategy" } else { "unknown" }),
        );
    }

    fn record(&mut self, record: &Record<'_, '_>, edit: &mut Edit<'_>) {
        self.seen.push((
            record.kind,
            record.span_kind,
            record
                .attributes
                .iter()
                .map(|a| String::from_utf8_lossy(a.key).into_owned())
                .collect(),
        ));
        if record.span_kind == SPAN_KIND_CLIENT {
            edit.add("integration.registered", NewValue::Bool(true));
        }
        if let Some(old) = record.attributes.iter().find(|a| a.has_key("replace.me")) {
            edit.drop(old);
            edit.add("replace.me", NewValue::String("new"));
        }
    }
}

/// Guarantees: the rewritten bytes decode with prost as the original request plus exactly the
/// visitor's edits; untouched records are unchanged (events included); a missing resource is
/// created; the visitor sees every record with its kind and attributes.
#[test]
fn rewrite_matches_the_edit_made_on_objects() {
    let original = traces();
    let bytes = original.encode_to_vec();
    let mut visitor = Tagging { seen: Vec::new() };
    let (rewritten, scan) = rewrite(Signal::Traces, &bytes, &mut visitor).expect("valid");
    let rewritten = rewritten.expect("changed");
    assert_eq!(
        scan,
        Scan {
            items: 3,
            invalid_ids: 0,
            highest_trace_randomness: ONES_RANDOMNESS,
        }
    );
    let decoded = ExportTraceServiceRequest::decode(&rewritten[..]).expect("decodes");

    let mut expected = original;
    let bool_kv = |key: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Proto::BoolValue(true)),
        }),
        ..Default::default()
    };
    let first = &mut expected.resource_spans[0];
    first
        .resource
        .as_mut()
        .expect("resource")
        .attributes
        .push(kv("layer", "strategy"));
    let tool = &mut first.scope_spans[0].spans[0];
    tool.attributes.remove(1);
    tool.attributes.push(bool_kv("integration.registered"));
    tool.attributes.push(kv("replace.me", "new"));
    let second = &mut expected.resource_spans[1];
    second.resource = Some(Resource {
        attributes: vec![kv("layer", "unknown")],
        ..Default::default()
    });
    second.scope_spans[0].spans[0]
        .attributes
        .push(bool_kv("integration.registered"));
    assert_eq!(decoded, expected);
    assert_eq!(
        visitor.seen,
        vec![
            (
                RecordKind::Span,
                3,
                vec!["gen_ai.tool.name".to_owned(), "replace.me".to_owned()]
            ),
            (RecordKind::Span, 1, vec![]),
            (RecordKind::Span, 3, vec!["server.address".to_owned()]),
        ]
    );
}

/// Guarantees: rewrites on one thread, which plan in the same buffers, give each request the
/// bytes a rewrite of it alone gives: after a larger request and after a malformed one.
#[test]
fn rewrites_on_one_thread_are_independent() {
    let run = |bytes: &[u8]| rewrite(Signal::Traces, bytes, &mut Tagging { seen: Vec::new() }).map(|(out, _)| out);
    let small = traces().encode_to_vec();
    let mut large = traces();
    for _ in 0..50 {
        large.resource_spans.extend(traces().resource_spans);
    }
    // Planned in another order than `small`, so that a plan left over would show.
    large.resource_spans.reverse();
    let large = large.encode_to_vec();
    let malformed = small[..small.len() - 3].to_vec();
    let sequence = [&large, &malformed, &small, &large, &small];
    let alone: Vec<_> = sequence
        .iter()
        .map(|bytes| {
            let bytes = bytes.to_vec();
            std::thread::spawn(move || run(&bytes)).join().expect("thread")
        })
        .collect();
    let in_turn: Vec<_> = sequence.iter().map(|bytes| run(bytes)).collect();
    assert!(alone[1].is_err() && alone[2].as_ref().is_ok_and(Option::is_some));
    assert_eq!(in_turn, alone);
}

/// Guarantees: an unchanged span whose length is encoded in more bytes than needed, between
/// edited ones, is written so that every enclosing length agrees with the bytes.
#[test]
fn unchanged_records_with_padded_lengths_stay_consistent() {
    let field = |out: &mut Vec<u8>, number: u8, bytes: &[u8]| {
        out.push(number << 3 | 2);
        prost::encoding::encode_varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    };
    let internal = span("internal", 1, vec![]).encode_to_vec();
    assert!(internal.len() < 0x80);
    let mut scope = Vec::new();
    field(&mut scope, 2, &span("before", 3, vec![]).encode_to_vec());
    // Field 2 with its length as a two-byte varint, which encoders may write.
    scope.extend([2 << 3 | 2, internal.len() as u8 | 0x80, 0]);
    scope.extend_from_slice(&internal);
    field(&mut scope, 2, &span("after", 3, vec![]).encode_to_vec());
    let mut resource_spans = Vec::new();
    field(&mut resource_spans, 2, &scope);
    let mut request = Vec::new();
    field(&mut request, 1, &resource_spans);

    let (rewritten, _) = rewrite(Signal::Traces, &request, &mut Tagging { seen: Vec::new() }).expect("valid");
    let decoded = ExportTraceServiceRequest::decode(&rewritten.expect("changed")[..]).expect("decodes");
    let mut expected = ExportTraceServiceRequest::decode(&request[..]).expect("original decodes");
    let first = &mut expected.resource_spans[0];
    first.resource = Some(Resource {
        attributes: vec![kv("layer", "unknown")],
        ..Default::default()
    });
    let registered = KeyValue {
        key: "integration.registered".into(),
        value: Some(AnyValue {
            value: Some(Proto::BoolValue(true)),
        }),
        ..Default::default()
    };
    let spans = &mut first.scope_spans[0].spans;
    spans[0].attributes.push(registered.clone());
    spans[2].attributes.push(registered);
    assert_eq!(decoded, expected);
}

/// A visitor that changes nothing.
struct Nothing;

impl Visitor for Nothing {
    fn resource(&mut self, _: &[Attribute<'_>], _: &mut Edit<'_>) {}
    fn record(&mut self, _: &Record<'_, '_>, _: &mut Edit<'_>) {}
}

/// Guarantees: a request nobody edits is not copied.
#[test]
fn unchanged_requests_keep_their_bytes() {
    let bytes = traces().encode_to_vec();
    assert_eq!(
        rewrite(Signal::Traces, &bytes, &mut Nothing),
        Ok((
            None,
            Scan {
                items: 3,
                invalid_ids: 0,
                highest_trace_randomness: ONES_RANDOMNESS,
            }
        ))
    );
}

/// Guarantees: records are counted for every signal and every metric type; ids of the wrong
/// length are counted as invalid.
#[test]
fn scan_counts_records_and_invalid_ids() {
    let mut request = traces();
    request.resource_spans[0].scope_spans[0].spans[1].span_id = vec![1; 4];
    let scan_traces = scan(Signal::Traces, &request.encode_to_vec()).expect("valid");
    assert_eq!(
        scan_traces,
        Scan {
            items: 3,
            invalid_ids: 1,
            highest_trace_randomness: ONES_RANDOMNESS,
        }
    );

    let metrics = metrics();
    let scan_metrics = scan(Signal::Metrics, &metrics.encode_to_vec()).expect("valid");
    assert_eq!(
        scan_metrics,
        Scan {
            items: 3,
            invalid_ids: 0,
            highest_trace_randomness: u64::MAX,
        }
    );

    let scan_logs = scan(Signal::Logs, &logs().encode_to_vec()).expect("valid");
    assert_eq!(
        scan_logs,
        Scan {
            items: 2,
            invalid_ids: 1,
            highest_trace_randomness: u64::MAX,
        }
    );
}

/// The randomness of the trace id `[1; 16]` that the spans above carry: its last 7 bytes.
const ONES_RANDOMNESS: u64 = 0x0001_0101_0101_0101;

/// Guarantees: a request's highest trace randomness is that of its most random trace, so
/// that no kept trace is passed over; a span without a 16-byte trace id, which a sampler
/// keeps, makes it the highest possible; a request without spans has none.
#[test]
fn scan_finds_the_highest_trace_randomness() {
    let with_trace_ids = |ids: &[Vec<u8>]| {
        let mut request = traces();
        request.resource_spans.truncate(1);
        let spans = &mut request.resource_spans[0].scope_spans[0].spans;
        *spans = ids
            .iter()
            .map(|id| Span {
                trace_id: id.clone(),
                ..spans[0].clone()
            })
            .collect();
        scan(Signal::Traces, &request.encode_to_vec())
            .expect("valid")
            .highest_trace_randomness
    };
    let id = |randomness: u64| [vec![0xEE; 9], randomness.to_be_bytes()[1..].to_vec()].concat();
    assert_eq!(with_trace_ids(&[id(5), id(1 << 55), id(7)]), 1 << 55);
    assert_eq!(with_trace_ids(&[id((1 << 56) - 1)]), (1 << 56) - 1);
    assert_eq!(with_trace_ids(&[id(5), vec![1; 8]]), u64::MAX);
    assert_eq!(with_trace_ids(&[]), 0);
    assert_eq!(trace_randomness(&id(42)), 42);
    assert_eq!(trace_randomness(&[]), u64::MAX);
}

/// Guarantees: a broken record is reported with the path to it; a broken outer frame too.
#[test]
fn errors_name_the_place() {
    let wrap = |field: u8, inner: &[u8]| [&[field, inner.len() as u8][..], inner].concat();
    let span = [0x0b];
    let request = wrap(0x0a, &wrap(0x12, &wrap(0x12, &span)));
    let error = scan(Signal::Traces, &request).expect_err("group wire type");
    assert_eq!(
        error.to_string(),
        "resource_spans[0].scope_spans[0].spans[0]: field 1: wire type 3 is not used by OTLP"
    );
    let mut truncated = traces().encode_to_vec();
    truncated.pop();
    let error = scan(Signal::Traces, &truncated).expect_err("truncated");
    assert!(
        error.to_string().contains("runs past the end of the message"),
        "{error}"
    );
}

/// Scenario: 3,000 corruptions of a valid request of each signal (a byte changed, or the
/// request cut short).
/// Guarantees: the walk never panics; whatever it accepts it rewrites into a request that
/// walks again with the same records but those with invalid ids, which it leaves out.
#[test]
fn corrupted_requests_are_refused_or_rewritten_consistently() {
    let requests = [
        (Signal::Traces, traces().encode_to_vec()),
        (Signal::Metrics, metrics().encode_to_vec()),
        (Signal::Logs, logs().encode_to_vec()),
    ];
    let mut rng = fastrand::Rng::with_seed(7);
    for (signal, original) in requests {
        for _ in 0..3_000 {
            let mut bytes = original.clone();
            if rng.bool() {
                let at = rng.usize(..bytes.len());
                bytes[at] = rng.u8(..);
            } else {
                bytes.truncate(rng.usize(..bytes.len()));
            }
            let Ok(scanned) = scan(signal, &bytes) else {
                continue;
            };
            let mut visitor = Tagging { seen: Vec::new() };
            let (rewritten, walked) = rewrite(signal, &bytes, &mut visitor).expect("accepted by scan");
            assert_eq!(walked, scanned);
            let again = scan(signal, rewritten.as_deref().unwrap_or(&bytes)).expect("rewritten is valid");
            assert_eq!(again.items, scanned.items - scanned.invalid_ids);
            assert_eq!(again.invalid_ids, 0);
        }
    }
}
