//! The unit that travels the data path: one OTLP export request of one signal.
//!
//! Decoding and encoding for the three wire forms (protobuf, OTLP/JSON) live here so that
//! receivers, exporters and tests share a single definition of "exactly as sent".

use std::fmt;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

/// The three OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The gRPC service that carries this signal.
    pub fn grpc_service(self) -> &'static str {
        match self {
            Signal::Traces => "opentelemetry.proto.collector.trace.v1.TraceService",
            Signal::Metrics => "opentelemetry.proto.collector.metrics.v1.MetricsService",
            Signal::Logs => "opentelemetry.proto.collector.logs.v1.LogsService",
        }
    }

    /// The OTLP/HTTP path, e.g. `/v1/traces`.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }

    pub fn from_name(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request body that could not be turned into an OTLP request. Always the sender's mistake.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The protobuf bytes do not form the signal's export request.
    #[error("malformed {signal} protobuf: {source}")]
    Protobuf {
        signal: Signal,
        #[source]
        source: prost::DecodeError,
    },
    /// The protobuf framing is broken; says where in the request.
    #[error("malformed {signal} protobuf at {source}")]
    Wire {
        signal: Signal,
        #[source]
        source: super::wire::WireError,
    },
    /// The JSON does not follow the OTLP/JSON encoding of the signal's export request.
    #[error("malformed {signal} OTLP/JSON: {source}")]
    Json {
        signal: Signal,
        #[source]
        source: serde_json::Error,
    },
    /// A metric's data or a point's value that the JSON has but that does not decode.
    #[error("malformed {signal} OTLP/JSON at {path}: {problem}")]
    JsonOneof {
        signal: Signal,
        path: String,
        problem: String,
    },
}

/// One decoded OTLP export request.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

impl Payload {
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Traces(_) => Signal::Traces,
            Payload::Metrics(_) => Signal::Metrics,
            Payload::Logs(_) => Signal::Logs,
        }
    }

    /// An empty request of the given signal, the identity for [`Payload::merge`].
    pub fn empty(signal: Signal) -> Payload {
        match signal {
            Signal::Traces => Payload::Traces(Default::default()),
            Signal::Metrics => Payload::Metrics(Default::default()),
            Signal::Logs => Payload::Logs(Default::default()),
        }
    }

    /// Spans, metric data points or log records in the request: the unit that limits and
    /// counters are expressed in, as in the Collector.
    pub fn item_count(&self) -> usize {
        match self {
            Payload::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum(),
            Payload::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(|m| data_point_count(m.data.as_ref()))
                .sum(),
            Payload::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum(),
        }
    }

    /// Appends the other request's resources. Both must be of the same signal; a request of
    /// another signal is a bug in the caller and is ignored.
    pub fn merge(&mut self, other: Payload) {
        match (self, other) {
            (Payload::Traces(a), Payload::Traces(b)) => a.resource_spans.extend(b.resource_spans),
            (Payload::Metrics(a), Payload::Metrics(b)) => a.resource_metrics.extend(b.resource_metrics),
            (Payload::Logs(a), Payload::Logs(b)) => a.resource_logs.extend(b.resource_logs),
            (this, other) => {
                debug_assert!(false, "merge of {} into {}", other.signal(), this.signal())
            }
        }
    }

    pub fn decode_protobuf(signal: Signal, bytes: &[u8]) -> Result<Payload, DecodeError> {
        let wrap = |source| DecodeError::Protobuf { signal, source };
        Ok(match signal {
            Signal::Traces => Payload::Traces(Message::decode(bytes).map_err(wrap)?),
            Signal::Metrics => Payload::Metrics(Message::decode(bytes).map_err(wrap)?),
            Signal::Logs => Payload::Logs(Message::decode(bytes).map_err(wrap)?),
        })
    }

    /// Decodes OTLP/JSON: see [`super::json`] for what it accepts beyond the generated types.
    pub fn decode_json(signal: Signal, bytes: &[u8]) -> Result<Payload, DecodeError> {
        super::json::decode(signal, bytes)
    }

    pub fn encode_protobuf(&self) -> Bytes {
        Bytes::from(match self {
            Payload::Traces(r) => r.encode_to_vec(),
            Payload::Metrics(r) => r.encode_to_vec(),
            Payload::Logs(r) => r.encode_to_vec(),
        })
    }

    /// Encodes OTLP/JSON, NaN and the infinities as the proto3 JSON mapping spells them.
    pub fn encode_json(&self) -> Vec<u8> {
        super::json::encode(self)
    }
}

fn data_point_count(data: Option<&Data>) -> usize {
    match data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// Items removed by [`Payload::reject_invalid`], reported to the sender via `partial_success`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub count: i64,
    pub message: String,
}

impl Rejected {
    /// `count` records of `signal` left out for ids of the wrong length; none when 0.
    pub fn of_invalid_ids(signal: Signal, count: usize) -> Rejected {
        if count == 0 {
            return Rejected::default();
        }
        let what = match signal {
            Signal::Logs => "log records with a trace_id other than 16 bytes or a span_id other than 8 bytes",
            _ => "spans with a trace_id other than 16 bytes or a span_id other than 8 bytes",
        };
        Rejected {
            count: count as i64,
            message: format!("rejected {count} {what}"),
        }
    }
}

impl Payload {
    /// Removes items that no backend can store: spans whose trace or span id is not 16/8 bytes,
    /// log records whose trace id or span id is present with the wrong length. The rest of the
    /// request is accepted, as OTLP's partial success allows.
    pub fn reject_invalid(&mut self) -> Rejected {
        let mut count = 0usize;
        match self {
            Payload::Traces(r) => {
                for ss in r.resource_spans.iter_mut().flat_map(|rs| &mut rs.scope_spans) {
                    let before = ss.spans.len();
                    ss.spans.retain(|s| s.trace_id.len() == 16 && s.span_id.len() == 8);
                    count += before - ss.spans.len();
                }
            }
            Payload::Logs(r) => {
                for sl in r.resource_logs.iter_mut().flat_map(|rl| &mut rl.scope_logs) {
                    let before = sl.log_records.len();
                    sl.log_records
                        .retain(|l| matches!(l.trace_id.len(), 0 | 16) && matches!(l.span_id.len(), 0 | 8));
                    count += before - sl.log_records.len();
                }
            }
            Payload::Metrics(_) => {}
        }
        Rejected::of_invalid_ids(self.signal(), count)
    }
}

/// The export response of one signal.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportResponse {
    Traces(ExportTraceServiceResponse),
    Metrics(ExportMetricsServiceResponse),
    Logs(ExportLogsServiceResponse),
}

impl ExportResponse {
    /// A response that reports `rejected` through `partial_success` when anything was rejected.
    pub fn new(signal: Signal, rejected: Rejected) -> ExportResponse {
        let partial = rejected.count > 0;
        let Rejected { count, message } = rejected;
        match signal {
            Signal::Traces => ExportResponse::Traces(ExportTraceServiceResponse {
                partial_success: partial.then_some(ExportTracePartialSuccess {
                    rejected_spans: count,
                    error_message: message,
                }),
            }),
            Signal::Metrics => ExportResponse::Metrics(ExportMetricsServiceResponse {
                partial_success: partial.then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: count,
                    error_message: message,
                }),
            }),
            Signal::Logs => ExportResponse::Logs(ExportLogsServiceResponse {
                partial_success: partial.then_some(ExportLogsPartialSuccess {
                    rejected_log_records: count,
                    error_message: message,
                }),
            }),
        }
    }

    pub fn encode_protobuf(&self) -> Bytes {
        Bytes::from(match self {
            ExportResponse::Traces(r) => r.encode_to_vec(),
            ExportResponse::Metrics(r) => r.encode_to_vec(),
            ExportResponse::Logs(r) => r.encode_to_vec(),
        })
    }

    pub fn encode_json(&self) -> Bytes {
        let encoded = match self {
            ExportResponse::Traces(r) => serde_json::to_vec(r),
            ExportResponse::Metrics(r) => serde_json::to_vec(r),
            ExportResponse::Logs(r) => serde_json::to_vec(r),
        };
        Bytes::from(encoded.unwrap_or_default())
    }

    /// Decodes a peer's response; used by the OTLP/HTTP exporter to read `partial_success`.
    pub fn decode_protobuf(signal: Signal, bytes: &[u8]) -> Result<ExportResponse, prost::DecodeError> {
        Ok(match signal {
            Signal::Traces => ExportResponse::Traces(Message::decode(bytes)?),
            Signal::Metrics => ExportResponse::Metrics(Message::decode(bytes)?),
            Signal::Logs => ExportResponse::Logs(Message::decode(bytes)?),
        })
    }

    /// What the peer rejected, if anything.
    pub fn rejected(&self) -> Option<Rejected> {
        let (count, message) = match self {
            ExportResponse::Traces(r) => r
                .partial_success
                .as_ref()
                .map(|p| (p.rejected_spans, &p.error_message))?,
            ExportResponse::Metrics(r) => r
                .partial_success
                .as_ref()
                .map(|p| (p.rejected_data_points, &p.error_message))?,
            ExportResponse::Logs(r) => r
                .partial_success
                .as_ref()
                .map(|p| (p.rejected_log_records, &p.error_message))?,
        };
        (count > 0 || !message.is_empty()).then(|| Rejected {
            count,
            message: message.clone(),
        })
    }
}
