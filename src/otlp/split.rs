//! Splitting an export request by routing key on the wire, without decoding it: whole
//! resources go to the owner of their key (`service`, `agent`, `resource`); with `traceID`,
//! each span or log record goes to the owner of its trace id, under copies of its resource and
//! scope. Metrics have no trace id: with `traceID` they go by service.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::otlp::Signal;
use crate::otlp::fields::{log_record, request, resource, resource_data, scope_data, span};
use crate::otlp::wire::codec::{Attribute, Malformed, fields, put_len_header};

/// What decides where a record goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum RoutingKey {
    /// The trace id: every span of a trace (and the logs of it) in one place.
    #[default]
    #[serde(rename = "traceID")]
    TraceId,
    /// `gen_ai.agent.name`, else `service.name`: an agent's whole telemetry in one place,
    /// for per-agent baselines.
    #[serde(rename = "agent")]
    Agent,
    #[serde(rename = "service")]
    Service,
    /// The resource's attributes, as encoded.
    #[serde(rename = "resource")]
    Resource,
}

/// One backend's share of a request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Share {
    pub request: Vec<u8>,
    pub items: usize,
}

/// The request's records by the backend `owner` gives their key.
pub fn split(
    signal: Signal,
    bytes: &[u8],
    key: RoutingKey,
    owner: impl Fn(&[u8]) -> usize,
) -> Result<BTreeMap<usize, Share>, Malformed> {
    let mut shares: BTreeMap<usize, Share> = BTreeMap::new();
    for field in fields(bytes) {
        let field = field?;
        if field.number != request::RESOURCE_DATA {
            continue;
        }
        let data = field.bytes()?;
        let per_record = key == RoutingKey::TraceId && signal != Signal::Metrics;
        if !per_record {
            let share = shares.entry(owner(&resource_key(data, key)?)).or_default();
            share.request.extend_from_slice(field.raw);
            share.items += records(signal, data)?;
            continue;
        }
        let mut head = Vec::new();
        let mut scopes: BTreeMap<usize, (Vec<u8>, usize)> = BTreeMap::new();
        for inner in fields(data) {
            let inner = inner?;
            if inner.number == resource_data::SCOPE_DATA {
                split_scope(signal, inner.bytes()?, &owner, &mut scopes)?;
            } else {
                head.extend_from_slice(inner.raw);
            }
        }
        for (backend, (scope_messages, items)) in scopes {
            let share = shares.entry(backend).or_default();
            put_len_header(
                &mut share.request,
                request::RESOURCE_DATA,
                head.len() + scope_messages.len(),
            );
            share.request.extend_from_slice(&head);
            share.request.extend_from_slice(&scope_messages);
            share.items += items;
        }
    }
    Ok(shares)
}

/// Adds one scope's records to `scopes`: per backend, a copy of the scope holding its records
/// (as `scope_*` fields of a resource), and how many.
fn split_scope(
    signal: Signal,
    scope: &[u8],
    owner: &impl Fn(&[u8]) -> usize,
    scopes: &mut BTreeMap<usize, (Vec<u8>, usize)>,
) -> Result<(), Malformed> {
    let trace_id_field = match signal {
        Signal::Logs => log_record::TRACE_ID,
        _ => span::TRACE_ID,
    };
    let mut head = Vec::new();
    let mut records: BTreeMap<usize, (Vec<u8>, usize)> = BTreeMap::new();
    for field in fields(scope) {
        let field = field?;
        if field.number != scope_data::RECORDS {
            head.extend_from_slice(field.raw);
            continue;
        }
        let mut trace_id: &[u8] = &[];
        for record_field in fields(field.bytes()?) {
            let record_field = record_field?;
            if record_field.number == trace_id_field {
                trace_id = record_field.bytes()?;
            }
        }
        let (bytes, count) = records.entry(owner(trace_id)).or_default();
        bytes.extend_from_slice(field.raw);
        *count += 1;
    }
    for (backend, (bytes, count)) in records {
        let (out, items) = scopes.entry(backend).or_default();
        put_len_header(out, resource_data::SCOPE_DATA, head.len() + bytes.len());
        out.extend_from_slice(&head);
        out.extend_from_slice(&bytes);
        *items += count;
    }
    Ok(())
}

/// The key of a whole resource: a string attribute of it, or its encoding.
fn resource_key(data: &[u8], key: RoutingKey) -> Result<Vec<u8>, Malformed> {
    let mut encoded: &[u8] = &[];
    let (mut service, mut agent) = (None, None);
    for field in fields(data) {
        let field = field?;
        if field.number != resource_data::RESOURCE {
            continue;
        }
        encoded = field.bytes()?;
        for attribute in fields(encoded) {
            let attribute = attribute?;
            if attribute.number != resource::ATTRIBUTES {
                continue;
            }
            let attribute = Attribute::parse(&attribute)?;
            if attribute.has_key("service.name") {
                service = attribute.string_bytes();
            } else if attribute.has_key("gen_ai.agent.name") {
                agent = attribute.string_bytes();
            }
        }
    }
    Ok(match key {
        RoutingKey::Resource => encoded,
        RoutingKey::Agent => agent.or(service).unwrap_or_default(),
        RoutingKey::Service | RoutingKey::TraceId => service.unwrap_or_default(),
    }
    .to_vec())
}

/// Spans or log records of a resource; data points of its metrics.
fn records(signal: Signal, data: &[u8]) -> Result<usize, Malformed> {
    let mut count = 0;
    for scope in fields(data) {
        let scope = scope?;
        if scope.number != resource_data::SCOPE_DATA {
            continue;
        }
        for record in fields(scope.bytes()?) {
            let record = record?;
            if record.number != scope_data::RECORDS {
                continue;
            }
            count += match signal {
                Signal::Metrics => data_points(record.bytes()?)?,
                _ => 1,
            };
        }
    }
    Ok(count)
}

/// The data points of one metric, whatever its type.
fn data_points(metric: &[u8]) -> Result<usize, Malformed> {
    use crate::otlp::fields::{metric, metric_data};
    let mut count = 0;
    for field in fields(metric) {
        let field = field?;
        if matches!(
            field.number,
            metric::GAUGE | metric::SUM | metric::HISTOGRAM | metric::EXPONENTIAL_HISTOGRAM | metric::SUMMARY
        ) {
            count += fields(field.bytes()?)
                .filter(|point| point.as_ref().is_ok_and(|p| p.number == metric_data::DATA_POINTS))
                .count();
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::Payload;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn resource(service: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(service.into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    /// Guarantees: with `traceID`, each log record goes by its trace id under a copy of its
    /// resource and scope, and the shares decode to the records in, none lost or doubled.
    #[test]
    fn logs_split_by_trace_id() {
        let records = (0u8..6)
            .map(|i| LogRecord {
                trace_id: vec![i % 2; 16],
                severity_text: format!("r{i}"),
                ..Default::default()
            })
            .collect();
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource("a"),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bytes = Payload::Logs(request).encode_protobuf();
        let shares = split(Signal::Logs, &bytes, RoutingKey::TraceId, |key| usize::from(key[0])).expect("splits");
        assert_eq!(shares.keys().copied().collect::<Vec<_>>(), [0, 1]);
        for (backend, share) in shares {
            let Payload::Logs(part) = Payload::decode_protobuf(Signal::Logs, &share.request).expect("decodes") else {
                panic!("logs")
            };
            let logs = &part.resource_logs[0];
            assert_eq!(logs.resource, resource("a"));
            let texts: Vec<&str> = logs.scope_logs[0]
                .log_records
                .iter()
                .map(|r| r.severity_text.as_str())
                .collect();
            let expected: Vec<String> = (0..6).filter(|i| i % 2 == backend).map(|i| format!("r{i}")).collect();
            assert_eq!(texts, expected);
            assert_eq!(share.items, 3);
        }
    }

    /// Guarantees: metrics go whole by service (there is no trace id), counted in data points.
    #[test]
    fn metrics_go_whole_by_service() {
        let metrics = |service: &str, points: usize| ResourceMetrics {
            resource: resource(service),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "m".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint::default(); points],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![metrics("a", 2), metrics("b", 3), metrics("a", 1)],
        };
        let bytes = Payload::Metrics(request).encode_protobuf();
        let shares = split(Signal::Metrics, &bytes, RoutingKey::TraceId, |key| {
            usize::from(key == b"b")
        })
        .expect("splits");
        assert_eq!((shares[&0].items, shares[&1].items), (3, 3));
    }
}
