//! The `kafka` exporter: each batch as OTLP protobuf export requests, one Kafka message per
//! partition key (`partition_by`), from an idempotent producer whose messages count as sent
//! only once every in-sync replica has them (`acks=all`).

use std::cell::RefCell;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::de::{Error as _, IntoDeserializer};
use serde::{Deserialize, Deserializer};

use super::config::{QueueConfig, RetryConfig};
use super::error::ExportError;
use crate::config::Problem;
use crate::config::client_tls::TlsConfig;
use crate::kafka::{Cluster, ClusterSettings, Topics, default_brokers, default_client_id};
use crate::otlp::split::{self, RoutingKey};
use crate::otlp::{Rejected, Request};

/// `exporters.kafka`, named as the OpenTelemetry Collector's `kafka` exporter where it has
/// the same setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaExporterConfig {
    /// Bootstrap brokers, `host:port`.
    #[serde(default = "default_brokers")]
    pub brokers: Vec<String>,
    #[serde(default = "default_client_id")]
    pub client_id: String,
    #[serde(default)]
    pub topics: Topics,
    /// TLS to the brokers; without it, plaintext.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// What a message's key is, and so which partition its records go to: `traceID` (a whole
    /// trace on one partition, so one consumer of a group sees all of it), `agent`, `service`,
    /// `resource`, or `none` (one message per batch, spread over the partitions).
    #[serde(default = "by_trace", deserialize_with = "partition_key")]
    pub partition_by: Option<RoutingKey>,
    /// Message compression: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default)]
    pub compression: KafkaCompression,
    /// Time a message may take to be acknowledged by the cluster, librdkafka's own retries
    /// included, before the attempt counts as failed (`retry_on_failure` then applies).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Further librdkafka producer properties (`security.protocol`, `sasl.*`, `ssl.*`, …);
    /// those fleetpipe's delivery guarantee rests on cannot be changed.
    #[serde(default)]
    pub librdkafka_options: BTreeMap<String, String>,
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
    #[serde(default)]
    pub sending_queue: QueueConfig,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// `partition_by`: a routing key's name, or `none`.
fn partition_key<'de, D: Deserializer<'de>>(names: D) -> Result<Option<RoutingKey>, D::Error> {
    let name = String::deserialize(names)?;
    if name == "none" {
        return Ok(None);
    }
    RoutingKey::deserialize(IntoDeserializer::<D::Error>::into_deserializer(name))
        .map(Some)
        .map_err(|e| D::Error::custom(format!("{e}, or `none`")))
}

fn by_trace() -> Option<RoutingKey> {
    Some(RoutingKey::TraceId)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaCompression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl KafkaCompression {
    fn property(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::Snappy => "snappy",
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
        }
    }
}

/// The producer properties the exporter's guarantee rests on: every in-sync replica has a
/// message before it counts as sent, and librdkafka's own retries neither duplicate nor
/// reorder messages. The partitioner is the Java client's, so a key lands on the partition
/// other producers of the topic would give it.
const PRODUCER_GUARANTEES: [(&str, &str); 3] = [
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("partitioner", "murmur2_random"),
];

impl Cluster for KafkaExporterConfig {
    fn cluster(&self) -> ClusterSettings<'_> {
        (
            &self.brokers,
            &self.client_id,
            self.tls.as_ref(),
            &self.librdkafka_options,
        )
    }
}

impl KafkaExporterConfig {
    pub fn warnings(&self) -> Vec<Problem> {
        self.connection().warnings()
    }

    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = self.connection().problems(&PRODUCER_GUARANTEES);
        problems.extend(self.topics.problems());
        if self.timeout < Duration::from_millis(1) {
            problems.push(Problem::new("timeout", "must be at least 1ms"));
        }
        problems
    }
}

/// A message's key (none with `partition_by: none`) and value, an OTLP export request.
type KafkaMessage = (Option<Vec<u8>>, Vec<u8>);

/// Sends batches to the cluster.
pub(super) struct KafkaSender {
    producer: FutureProducer,
    topics: Topics,
    partition_by: Option<RoutingKey>,
}

impl KafkaSender {
    pub(super) fn new(config: &KafkaExporterConfig) -> Result<KafkaSender, ExportError> {
        let timeout_ms = config.timeout.as_millis().to_string();
        let producer = config
            .connection()
            .client_config(&PRODUCER_GUARANTEES)
            .set("message.timeout.ms", timeout_ms)
            .set("compression.type", config.compression.property())
            .create()
            .map_err(|e| ExportError::Setup(e.to_string()))?;
        Ok(KafkaSender {
            producer,
            topics: config.topics.clone(),
            partition_by: config.partition_by,
        })
    }

    /// Produces the batch's messages and waits until the cluster has them all; an attempt
    /// fails as a whole (a retry may send again those that got through: at least once).
    pub(super) async fn send(&self, request: &Request) -> Result<Option<Rejected>, ExportError> {
        let topic = self.topics.of(request.signal());
        let messages = self.messages(request)?;
        let deliveries = messages.iter().map(|(key, payload)| {
            let record = FutureRecord::to(topic).payload(payload.as_slice());
            let record = match key {
                Some(key) => record.key(key.as_slice()),
                None => record,
            };
            // librdkafka's local queue is bounded (`queue.buffering.max.*`): waiting for room
            // there is the push-back to this exporter's own queue.
            self.producer.send(record, rdkafka::util::Timeout::Never)
        });
        for delivery in futures::future::join_all(deliveries).await {
            delivery.map_err(|(error, _)| ExportError::Kafka(error))?;
        }
        Ok(None)
    }

    /// The messages of a batch.
    fn messages(&self, request: &Request) -> Result<Vec<KafkaMessage>, ExportError> {
        let Some(routing_key) = self.partition_by else {
            return Ok(vec![(None, request.parts().concat())]);
        };
        let signal = request.signal();
        // The split asks once per record: a lookup of the key's bytes, and an allocation only
        // for a key not seen yet (the `kafka` comparison of `benches/process_cpu.sh`).
        let keys: RefCell<HashMap<Vec<u8>, usize, foldhash::fast::RandomState>> = RefCell::default();
        let key_index = |key: &[u8]| {
            let mut keys = keys.borrow_mut();
            if let Some(index) = keys.get(key) {
                return *index;
            }
            let next = keys.len();
            keys.insert(key.to_vec(), next);
            next
        };
        let mut payloads: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        for part in request.parts() {
            let shares = split::split(signal, part, routing_key, key_index).map_err(|source| {
                ExportError::Undecodable(crate::otlp::DecodeError::Wire {
                    signal,
                    source: source.into(),
                })
            })?;
            for (index, share) in shares {
                match payloads.entry(index) {
                    Entry::Vacant(first) => {
                        first.insert(share.request);
                    }
                    Entry::Occupied(mut more) => more.get_mut().extend_from_slice(&share.request),
                }
            }
        }
        let mut keys: Vec<(Vec<u8>, usize)> = keys.into_inner().into_iter().collect();
        keys.sort_by_key(|(_, index)| *index);
        Ok(keys
            .into_iter()
            .filter_map(|(key, index)| Some((Some(message_key(routing_key, &key)), payloads.remove(&index)?)))
            .collect())
    }
}

/// A message key as other Kafka clients show it: a trace id in hex, as the Collector writes
/// it; a name as its text; a resource as its encoding.
fn message_key(routing_key: RoutingKey, key: &[u8]) -> Vec<u8> {
    if routing_key != RoutingKey::TraceId {
        return key.to_vec();
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    key.iter()
        .flat_map(|byte| [DIGITS[usize::from(byte >> 4)], DIGITS[usize::from(byte & 0xf)]])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::{Payload, Signal};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn spans(trace_ids: &[u8]) -> Request {
        let spans = trace_ids
            .iter()
            .map(|id| Span {
                trace_id: vec![*id; 16],
                span_id: vec![1; 8],
                name: format!("span of {id}"),
                ..Span::default()
            })
            .collect();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        Request::from_payload(&Payload::Traces(request))
    }

    /// Guarantees: with `partition_by: traceID` a batch becomes one message per trace, keyed
    /// by the trace id in hex, holding exactly that trace's spans; with `none`, one message;
    /// `partition_by` names a routing key or `none`, and nothing else.
    #[test]
    fn a_batch_becomes_one_message_per_trace() {
        let config: KafkaExporterConfig = serde_yaml::from_str("{}").expect("defaults");
        assert_eq!(config.partition_by, Some(RoutingKey::TraceId));
        let none: KafkaExporterConfig = serde_yaml::from_str("{partition_by: none}").expect("none");
        assert_eq!(none.partition_by, None);
        let wrong = serde_yaml::from_str::<KafkaExporterConfig>("{partition_by: span}").expect_err("no such key");
        assert!(wrong.to_string().contains("expected one of `traceID`"), "{wrong}");
        let sender = KafkaSender::new(&config).expect("producer");
        let messages = sender.messages(&spans(&[7, 9, 7])).expect("split");
        let keyed: Vec<(String, usize)> = messages
            .iter()
            .map(|(key, payload)| {
                let key = String::from_utf8(key.clone().expect("key")).expect("hex");
                let payload = Payload::decode_protobuf(Signal::Traces, payload).expect("a request");
                (key, payload.item_count())
            })
            .collect();
        assert_eq!(keyed, [("07".repeat(16), 2), ("09".repeat(16), 1)]);
        let whole = KafkaSender {
            partition_by: None,
            ..sender
        };
        let messages = whole.messages(&spans(&[7, 9, 7])).expect("whole");
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].0, None);
    }
}
