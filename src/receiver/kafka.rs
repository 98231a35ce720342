//! The `kafka` receiver: a consumer group member reading OTLP protobuf export requests from
//! one topic per signal, at least once.
//!
//! A message's offset is committed only once its request is where the OTLP receiver would
//! acknowledge it (in the pipeline queues, or for a durable pipeline in every destination's
//! disk queue), in the order the partition holds them, so a crash reads again what was not
//! yet safe and never skips it. A message that is not a valid request goes, with the reason,
//! to the dead-letter topic and is counted; it never holds up its partition.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::auth::Client;
use super::body::HeldBody;
use super::{Format, Ingest, QUEUED_WITHIN, RETRY_DELAY, ReceiveError};
use crate::compression::Encoding;
use crate::config::Problem;
use crate::config::client_tls::TlsConfig;
use crate::kafka::{Cluster, ClusterSettings, Topics, default_brokers, default_client_id, is_topic_name};
use crate::memory::Part;
use crate::otlp::Signal;
use crate::pipeline::component::{ReceiverContext, ReceiverSettings, Settings, StartError};

/// `receivers.kafka`, named as the OpenTelemetry Collector's `kafka` receiver where it has
/// the same setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaReceiverConfig {
    /// Bootstrap brokers, `host:port`.
    #[serde(default = "default_brokers")]
    pub brokers: Vec<String>,
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// The consumer group: replicas with the same group share the partitions.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// The topic read for each signal that has a pipeline.
    #[serde(default)]
    pub topics: Topics,
    /// TLS to the brokers; without it, plaintext.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Where messages that are not valid export requests go, with the reason in their
    /// `fleetpipe.error` header.
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
    /// Where a group with no committed offset starts: `earliest` (the default: what is
    /// already in the topic is not skipped) or `latest` (the Collector's default).
    #[serde(default)]
    pub initial_offset: InitialOffset,
    /// Largest message taken, in MiB; larger ones go to the dead-letter topic.
    #[serde(default = "default_max_request_size_mib")]
    pub max_request_size_mib: usize,
    /// Messages taken whose requests are not yet queued as their pipelines require, at most.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Further librdkafka consumer properties (`security.protocol`, `sasl.*`, …); those the
    /// at-least-once guarantee rests on cannot be changed.
    #[serde(default)]
    pub librdkafka_options: BTreeMap<String, String>,
}

fn default_group_id() -> String {
    "fleetpipe".to_owned()
}

fn default_dead_letter_topic() -> String {
    "fleetpipe_dead_letter".to_owned()
}

fn default_max_request_size_mib() -> usize {
    64
}

fn default_max_in_flight() -> usize {
    1000
}

/// See [`KafkaReceiverConfig::initial_offset`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialOffset {
    #[default]
    Earliest,
    Latest,
}

/// The consumer properties the guarantee rests on: offsets are committed in the background,
/// but only those the receiver stored, which it does once a message is safe.
const CONSUMER_GUARANTEES: [(&str, &str); 2] = [("enable.auto.commit", "true"), ("enable.auto.offset.store", "false")];

/// The dead-letter producer's: the cluster has a poison message before its offset moves on.
const DEAD_LETTER_GUARANTEES: [(&str, &str); 2] = [("acks", "all"), ("enable.idempotence", "true")];

/// Properties set from this receiver's own keys.
const FROM_SETTINGS: [(&str, &str); 2] = [("group.id", "group_id"), ("auto.offset.reset", "initial_offset")];

impl Cluster for KafkaReceiverConfig {
    fn cluster(&self) -> ClusterSettings<'_> {
        (
            &self.brokers,
            &self.client_id,
            self.tls.as_ref(),
            &self.librdkafka_options,
        )
    }
}

impl KafkaReceiverConfig {
    fn consumer(&self) -> Result<StreamConsumer, rdkafka::error::KafkaError> {
        let offset = match self.initial_offset {
            InitialOffset::Earliest => "earliest",
            InitialOffset::Latest => "latest",
        };
        self.connection()
            .client_config(&CONSUMER_GUARANTEES)
            .set("group.id", &self.group_id)
            .set("auto.offset.reset", offset)
            .create()
    }

    /// A producer with the consumer's connection (librdkafka ignores, with a log line, the
    /// consumer-only properties among the options).
    fn dead_letter_producer(&self) -> Result<FutureProducer, rdkafka::error::KafkaError> {
        self.connection().client_config(&DEAD_LETTER_GUARANTEES).create()
    }
}

impl Settings for KafkaReceiverConfig {
    fn problems(&self) -> Vec<Problem> {
        let fixed: Vec<(&str, &str)> = CONSUMER_GUARANTEES.iter().chain(&FROM_SETTINGS).copied().collect();
        let mut problems = self.connection().problems(&fixed);
        problems.extend(self.topics.problems());
        if !is_topic_name(&self.dead_letter_topic) {
            problems.push(Problem::new("dead_letter_topic", "is not a Kafka topic name"));
        } else if [&self.topics.traces, &self.topics.metrics, &self.topics.logs].contains(&&self.dead_letter_topic) {
            problems.push(Problem::new(
                "dead_letter_topic",
                "is a topic this receiver reads: a poison message would come back forever",
            ));
        }
        if self.group_id.is_empty() {
            problems.push(Problem::new("group_id", "must not be empty"));
        }
        if self.max_request_size_mib == 0 || self.max_in_flight == 0 {
            problems.push(Problem::new(
                "max_request_size_mib",
                "max_request_size_mib and max_in_flight must be at least 1",
            ));
        }
        problems
    }

    fn warnings(&self) -> Vec<Problem> {
        self.connection().warnings()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait::async_trait]
impl ReceiverSettings for KafkaReceiverConfig {
    async fn start(&self, context: ReceiverContext<'_>) -> Result<(), StartError> {
        let key = |rest: &str| format!("receivers.{}{rest}", context.name);
        for warning in Settings::warnings(self) {
            tracing::warn!(receiver = context.name, key = %warning.key, "{}", warning.message);
        }
        let consumer = self.consumer().map_err(|e| StartError::new(key(""), e))?;
        let signals: HashMap<String, Signal> = context
            .feeds
            .keys()
            .map(|signal| (self.topics.of(*signal).to_owned(), *signal))
            .collect();
        let topics: Vec<&str> = signals.keys().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| StartError::new(key(".topics"), e))?;
        let dead_letters = self.dead_letter_producer().map_err(|e| StartError::new(key(""), e))?;
        let max_request_bytes = self.max_request_size_mib.saturating_mul(1 << 20);
        context.memory.bound_large_requests(max_request_bytes);
        tracing::info!(receiver = context.name, brokers = %self.brokers.join(","), group = %self.group_id, ?topics, "Kafka receiver: joining the group.");
        let reader = Arc::new(Reader {
            name: context.name.to_owned(),
            consumer,
            signals,
            dead_letters,
            dead_letter_topic: self.dead_letter_topic.clone(),
            ingest: Arc::new(Ingest {
                receiver: context.name.to_owned(),
                pipelines: context.feeds,
                metrics: Arc::clone(context.metrics),
                max_request_bytes,
                memory: Arc::clone(context.memory),
                auth: None,
            }),
        });
        let (taken, in_order) = mpsc::channel(self.max_in_flight);
        let shutdown = context.shutdown.clone();
        context.tasks.spawn(async move {
            let committer = tokio::spawn(Arc::clone(&reader).commit_in_order(in_order, shutdown.clone()));
            reader.read(taken, shutdown).await;
            let _ = committer.await;
        });
        Ok(())
    }
}

/// A message taken, waiting for its request to be safe before its offset is stored.
struct Taken {
    topic: String,
    partition: i32,
    offset: i64,
    /// For durable pipelines: resolves once the request is in every destination queue.
    queued: Option<oneshot::Receiver<()>>,
}

/// One receiver's consumer and what it hands messages to.
struct Reader {
    name: String,
    consumer: StreamConsumer,
    /// The signal of each topic read.
    signals: HashMap<String, Signal>,
    dead_letters: FutureProducer,
    dead_letter_topic: String,
    ingest: Arc<Ingest>,
}

impl Reader {
    /// Takes messages until `shutdown`, handing each to the pipelines (or the dead-letter
    /// topic) in the order its partition holds them.
    async fn read(&self, taken: mpsc::Sender<Taken>, shutdown: CancellationToken) {
        loop {
            let received = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                received = self.consumer.recv() => received.map(|m| m.detach()),
            };
            let message = match received {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(receiver = %self.name, %error, "Kafka receiver: cannot read from the cluster; trying again.");
                    if pause(&shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            let Some(queued) = self.take(&message, &shutdown).await else {
                break;
            };
            let taken_message = Taken {
                topic: message.topic().to_owned(),
                partition: message.partition(),
                offset: message.offset(),
                queued,
            };
            if taken.send(taken_message).await.is_err() {
                break;
            }
        }
    }

    /// Hands one message to the pipelines, waiting while they are full; a message that is
    /// not a valid request goes to the dead-letter topic. `None` when fleetpipe stopped first
    /// (the message is read again at the next start).
    async fn take(
        &self,
        message: &OwnedMessage,
        shutdown: &CancellationToken,
    ) -> Option<Option<oneshot::Receiver<()>>> {
        let Some(signal) = self.signals.get(message.topic()).copied() else {
            return Some(None);
        };
        let payload = Bytes::copy_from_slice(message.payload().unwrap_or_default());
        loop {
            let body = match self.ingest.memory.admit(Part::Requests, payload.len()) {
                Ok(charge) => HeldBody {
                    bytes: payload.clone(),
                    charge,
                },
                Err(_) => {
                    if pause(shutdown).await {
                        return None;
                    }
                    continue;
                }
            };
            let accepted = self
                .ingest
                .accept(
                    "kafka",
                    signal,
                    Format::Protobuf,
                    Encoding::Identity,
                    body,
                    Client::default(),
                )
                .await;
            match accepted {
                Ok(accepted) => return Some(accepted.queued.map(|owed| owed.queued)),
                Err(error) if error.is_retryable() => {
                    if pause(shutdown).await {
                        return None;
                    }
                }
                Err(error) => return self.dead_letter(message, &error, shutdown).await.then_some(None),
            }
        }
    }

    /// Sends a message that cannot be taken to the dead-letter topic, trying until the
    /// cluster has it; `false` when fleetpipe stopped first.
    async fn dead_letter(&self, message: &OwnedMessage, error: &ReceiveError, shutdown: &CancellationToken) -> bool {
        let reason = error.to_string();
        let (partition, offset) = (message.partition().to_string(), message.offset().to_string());
        let headers = OwnedHeaders::new()
            .insert(header("fleetpipe.error", &reason))
            .insert(header("fleetpipe.topic", message.topic()))
            .insert(header("fleetpipe.partition", &partition))
            .insert(header("fleetpipe.offset", &offset));
        loop {
            let mut record = FutureRecord::to(&self.dead_letter_topic)
                .payload(message.payload().unwrap_or_default())
                .headers(headers.clone());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            let sent = tokio::select! {
                () = shutdown.cancelled() => return false,
                sent = self.dead_letters.send(record, Duration::from_secs(30)) => sent,
            };
            match sent {
                Ok(_) => {
                    tracing::warn!(receiver = %self.name, topic = message.topic(), partition = message.partition(), offset = message.offset(), %reason, dead_letter_topic = %self.dead_letter_topic, "Kafka receiver: a message is not a valid request; sent to the dead-letter topic.");
                    let labels = vec![
                        ("receiver".to_owned(), self.name.clone()),
                        ("topic".to_owned(), message.topic().to_owned()),
                    ];
                    self.ingest.metrics.receiver_dead_letters.get_or_create(&labels).inc();
                    return true;
                }
                Err((error, _)) => {
                    tracing::error!(receiver = %self.name, %error, dead_letter_topic = %self.dead_letter_topic, "Kafka receiver: cannot write to the dead-letter topic; trying again.");
                    if pause(shutdown).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Stores each taken message's offset once its request is safe, in the order taken, so
    /// the background commit never passes a message that is not; at the end commits what was
    /// stored before the consumer leaves the group.
    async fn commit_in_order(self: Arc<Self>, mut in_order: mpsc::Receiver<Taken>, shutdown: CancellationToken) {
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut stop_by = None;
        while let Some(taken) = in_order.recv().await {
            if let Some(queued) = taken.queued
                && !is_queued(queued, &shutdown, &mut stop_by).await
            {
                // Stopped before it was queued: it and those after it are read again.
                break;
            }
            if let Err(error) = self.consumer.store_offset(&taken.topic, taken.partition, taken.offset) {
                tracing::debug!(receiver = %self.name, %error, "Kafka receiver: offset not stored (the partition moved to another member).");
            }
            next.insert((taken.topic, taken.partition), taken.offset + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            let _ = offsets.add_partition_offset(&topic, partition, Offset::Offset(offset));
        }
        if offsets.count() > 0
            && let Err(error) = self.consumer.commit(&offsets, CommitMode::Sync)
        {
            tracing::warn!(receiver = %self.name, %error, "Kafka receiver: last offsets not committed; those messages will be read again.");
        }
    }
}

/// Whether a durable pipeline's request reaches every destination queue. Once fleetpipe is
/// stopping, those still waiting share one [`QUEUED_WITHIN`] from then (`stop_by`): a full
/// disk queue would otherwise hold the stop up.
async fn is_queued(
    queued: oneshot::Receiver<()>,
    shutdown: &CancellationToken,
    stop_by: &mut Option<tokio::time::Instant>,
) -> bool {
    tokio::pin!(queued);
    let deadline = match *stop_by {
        Some(deadline) => deadline,
        None => {
            tokio::select! {
                result = &mut queued => return result.is_ok(),
                () = shutdown.cancelled() => {}
            }
            *stop_by.insert(tokio::time::Instant::now() + QUEUED_WITHIN)
        }
    };
    matches!(tokio::time::timeout_at(deadline, queued).await, Ok(Ok(())))
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// Waits [`RETRY_DELAY`]; `true` when fleetpipe stopped meanwhile.
async fn pause(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(RETRY_DELAY) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let config: KafkaReceiverConfig = serde_yaml::from_str(yaml).expect("settings");
        Settings::problems(&config).into_iter().map(|p| p.key).collect()
    }

    /// Guarantees: a dead-letter topic the receiver reads (a poison message would come back
    /// forever), an option that would commit offsets before requests are safe, and an empty
    /// group are refused at their keys; the defaults are accepted.
    #[test]
    fn settings_that_would_lose_or_loop_are_refused() {
        assert!(problems("{}").is_empty());
        assert_eq!(
            problems(
                "{dead_letter_topic: otlp_spans, group_id: '', librdkafka_options: {enable.auto.offset.store: 'true'}}"
            ),
            [
                "librdkafka_options.enable.auto.offset.store",
                "dead_letter_topic",
                "group_id"
            ]
        );
    }
}
