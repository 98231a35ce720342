//! Issue 30, acceptance 4: spans into Kafka through the `kafka` exporter and out of it through
//! the `kafka` receiver, against a real Kafka-protocol broker: `tansu` from crates.io (memory
//! storage), on a loopback port, installed under the target folder on first use. The test's
//! own Kafka client is librdkafka (`rdkafka`), as another producer or consumer would be. Not in
//! the `delivery` binary: the broker's load beside its memory tests disturbed their resident-size
//! bounds (a peak of 177 MiB against 160 once).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::support::sink::Sink;
use super::support::tls::Authority;
use super::support::{
    Fleetpipe, fixtures, free_port, grpc_send, hex, installed_tool, otlp_exporter, pipeline_config, spans_by_id,
    spans_of,
};

/// A Kafka-protocol broker on a loopback port, ended with the test.
struct Broker {
    /// tansu, and socat in front of it when clients reach it over TLS.
    processes: Vec<Child>,
    /// Where clients reach it, and what it advertises.
    address: SocketAddr,
    /// The authority of its certificate, when reached over TLS.
    ca: Option<PathBuf>,
}

/// What the broker's TLS front presents: certificate and key, and the authority that signed
/// them.
struct TlsFront {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl Broker {
    /// A broker logging into `dir`, with the topics of the tests: `otlp_spans` (3 partitions)
    /// and `fleetpipe_dead_letter`.
    async fn start(dir: &Path) -> Broker {
        Broker::start_behind(dir, None).await
    }

    /// With `tls`, clients reach the broker only over TLS: socat (Debian's) terminates it in
    /// front of tansu, which advertises socat's port.
    async fn start_behind(dir: &Path, tls: Option<TlsFront>) -> Broker {
        let loopback = || SocketAddr::from(([127, 0, 0, 1], free_port()));
        let address = loopback();
        let inner = if tls.is_some() { loopback() } else { address };
        let mut processes = vec![
            Command::new(installed_tool("tansu", "tansu@0.6.0", &["dynostore"]))
                .args(["broker", "--listener-url", &format!("tcp://{inner}")])
                .args(["--advertised-listener-url", &format!("tcp://{address}")])
                .args(["--storage-engine", "memory://tansu/"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("tansu.log")).expect("broker log"))
                .spawn()
                .expect("start tansu"),
        ];
        if let Some(front) = &tls {
            let listen = format!(
                "OPENSSL-LISTEN:{},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                address.port(),
                front.cert.display(),
                front.key.display()
            );
            processes.push(
                Command::new("socat")
                    .args([listen, format!("TCP:{inner}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start socat (apt install socat)"),
            );
        }
        let broker = Broker {
            processes,
            address,
            ca: tls.map(|front| front.ca),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(inner).await.is_ok()
                && tokio::net::TcpStream::connect(address).await.is_ok()
            {
                broker
                    .create_topics(&[("otlp_spans", 3), ("fleetpipe_dead_letter", 1)])
                    .await;
                return broker;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the broker did not listen on {address}");
    }

    /// What fleetpipe's `kafka` components need to reach it, as YAML mapping entries.
    fn settings(&self) -> String {
        let tls = match &self.ca {
            Some(ca) => format!(", tls: {{ca_file: '{}'}}", ca.display()),
            None => String::new(),
        };
        format!("brokers: ['{}']{tls}", self.address)
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.address.to_string());
        if let Some(ca) = &self.ca {
            config
                .set("security.protocol", "ssl")
                .set("ssl.ca.location", ca.display().to_string());
        }
        config
    }

    async fn create_topics(&self, topics: &[(&str, i32)]) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().expect("admin client");
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
            .collect();
        for created in admin
            .create_topics(&new, &AdminOptions::new())
            .await
            .expect("create topics")
        {
            created.expect("topic created");
        }
    }

    async fn produce(&self, topic: &str, payload: &[u8]) {
        let producer: FutureProducer = self.client().create().expect("producer");
        producer
            .send(
                FutureRecord::<(), _>::to(topic).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
    }

    /// The first `count` messages of `topic`, read by a group of its own.
    async fn read(&self, topic: &str, count: usize) -> Vec<OwnedMessage> {
        let consumer: StreamConsumer = self
            .client()
            .set("group.id", format!("test-reader-{}", free_port()))
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let mut messages = Vec::new();
        while messages.len() < count {
            let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .unwrap_or_else(|_| panic!("{} of {count} messages of {topic} read", messages.len()))
                .expect("a message");
            messages.push(message.detach());
        }
        messages
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// fleetpipe forwarding what it receives over OTLP to the broker, one message per trace.
fn producing_config(broker: &Broker) -> String {
    let exporter = format!(
        "kafka: {{{}, timeout: 10s, retry_on_failure: {{initial_interval: 100ms, max_interval: 500ms}}}}\n",
        broker.settings()
    );
    pipeline_config(&exporter, &["kafka"], true)
}

/// fleetpipe reading the broker's span topic in group `fleet` and forwarding to `sink`, with
/// `queue` settings for its `otlp` exporter. A member that died leaves the group after the
/// session timeout, 6 s here (the broker's least): until then its partitions wait for it.
fn consuming_config(broker: &Broker, sink: &Sink, queue: &str) -> String {
    let exporter = otlp_exporter("otlp", &sink.endpoint());
    let exporter: String = exporter.lines().map(|line| format!("  {line}\n")).collect();
    format!(
        "receivers:
  kafka: {{{}, group_id: fleet, librdkafka_options: {{session.timeout.ms: '6000'}}}}
exporters:
{exporter}{queue}service:
  pipelines:
    traces: {{receivers: [kafka], exporters: [otlp]}}
  health: {{endpoint: '@HEALTH@'}}
  telemetry:
    metrics: {{endpoint: '@METRICS@'}}
",
        broker.settings()
    )
}

/// Requests of two traces each, sent to `fleetpipe` over OTLP/gRPC.
async fn send_two_trace_requests(fleetpipe: &Fleetpipe, requests: usize) -> Vec<Payload> {
    let mut sent = Vec::new();
    for n in 0..requests {
        let mut request = fixtures::agent_trace(&format!("agent-{}", n % 3), 4);
        request
            .resource_spans
            .extend(fixtures::agent_trace("agent-x", 3).resource_spans);
        let payload = Payload::Traces(request);
        grpc_send(&fleetpipe.grpc_endpoint(), payload.clone(), None)
            .await
            .expect("accepted");
        sent.push(payload);
    }
    sent
}

/// Spans taken by the `kafka` receiver.
async fn taken(fleetpipe: &Fleetpipe) -> f64 {
    fleetpipe
        .metric("fleetpipe_receiver_accepted_items_total", &["transport=\"kafka\""])
        .await
}

/// Scenario: fleetpipe A takes 15 requests over OTLP (two traces of 7 spans each) and exports
/// them to Kafka (topic `otlp_spans`, 3 partitions); a message that is not an export request
/// is produced among them; 15 more requests follow. fleetpipe B reads the topic in a consumer
/// group and forwards to a sink.
/// Guarantees: the sink gets every span exactly once, unchanged, the ones after the poison
/// message too; A wrote one message per trace, keyed by its trace id in hex and holding just
/// its spans; the poison message is on `fleetpipe_dead_letter` with the reason and where it
/// came from, and is counted.
#[tokio::test]
async fn spans_cross_kafka_exactly_once_and_a_poison_message_is_set_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path()).await;
    let sink = Sink::start().await;
    let consumer = Fleetpipe::start(&consuming_config(&broker, &sink, "")).await;
    let producer = Fleetpipe::start(&producing_config(&broker)).await;
    let mut sent = send_two_trace_requests(&producer, 15).await;
    let poison = b"\x0a\xff\xff\xff\x0fnot an export request";
    broker.produce("otlp_spans", poison).await;
    sent.extend(send_two_trace_requests(&producer, 15).await);

    sink.wait_for(Signal::Traces, 30 * 7, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(spans_by_id(&sink), spans_of(&sent), "{}", consumer.log());

    let messages = broker.read("otlp_spans", 61).await;
    let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for message in messages.iter().filter(|m| m.payload() != Some(poison.as_slice())) {
        let key = String::from_utf8(message.key().expect("a key").to_vec()).expect("hex");
        let payload = Payload::decode_protobuf(Signal::Traces, message.payload().unwrap_or_default()).expect("OTLP");
        let Payload::Traces(request) = payload else {
            unreachable!()
        };
        let trace_ids = spans_of(&[Payload::Traces(request)])
            .values()
            .map(|s| hex(&s.trace_id))
            .collect();
        assert!(by_key.insert(key, trace_ids).is_none(), "one message per trace");
    }
    assert_eq!(by_key.len(), 60);
    assert!(by_key.iter().all(|(key, ids)| ids.len() == 1 && ids.contains(key)));

    let dead = broker.read("fleetpipe_dead_letter", 1).await;
    assert_eq!(dead[0].payload(), Some(poison.as_slice()));
    let headers: BTreeMap<&str, String> = dead[0]
        .headers()
        .expect("headers")
        .iter()
        .map(|h| (h.key, String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
        .collect();
    assert_eq!(headers["fleetpipe.topic"], "otlp_spans");
    assert!(
        headers["fleetpipe.error"].contains("malformed traces protobuf"),
        "{headers:?}"
    );
    assert_eq!(
        consumer
            .metric(
                "fleetpipe_receiver_dead_letter_messages_total",
                &["topic=\"otlp_spans\""]
            )
            .await,
        1.0
    );
}

/// Scenario: fleetpipe B reads in a consumer group, with a disk queue (`fsync: always`) in
/// front of a sink that is down. 10 requests go through A to Kafka; once B took them and its
/// offsets were committed (6 s, past the 5 s commit interval), 10 more are produced and B is
/// killed (SIGKILL) while taking them; 10 more are produced while it is dead. The sink comes
/// up and B starts again from the same configuration.
/// Guarantees: every span reaches the sink at least once: what B had queued on disk before
/// the kill is delivered after its restart, and what it had not yet made safe is read again
/// from Kafka.
#[tokio::test]
async fn a_consumer_killed_mid_run_loses_no_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path()).await;
    let sink = Sink::start().await;
    sink.stop();
    let queue = format!(
        "    sending_queue: {{storage: disk, fsync: always, directory: '{}'}}\n",
        dir.path().join("queue").display()
    );
    let config = consuming_config(&broker, &sink, &queue);
    let consumer = Fleetpipe::start(&config).await;
    let producer = Fleetpipe::start(&producing_config(&broker)).await;
    let mut sent = send_two_trace_requests(&producer, 10).await;
    for _ in 0..600 {
        if taken(&consumer).await >= 70.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(taken(&consumer).await, 70.0, "{}", consumer.log());
    tokio::time::sleep(Duration::from_secs(6)).await;
    sent.extend(send_two_trace_requests(&producer, 10).await);
    drop(consumer);
    sent.extend(send_two_trace_requests(&producer, 10).await);
    sink.serve().await;
    let restarted = Fleetpipe::start(&config).await;

    let want: BTreeSet<Vec<u8>> = spans_of(&sent).into_keys().collect();
    let mut arrived = BTreeSet::new();
    for _ in 0..1200 {
        arrived = super::support::spans_in(&sink.received())
            .map(|s| s.span_id.clone())
            .collect();
        if arrived.len() >= want.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(arrived, want, "{}", restarted.log());
}

/// Scenario: the broker is reached only over TLS, through a front presenting a certificate of
/// an authority the test makes. fleetpipe A exports trusting that authority and B reads
/// trusting it; fleetpipe C exports to the same broker trusting another authority.
/// Guarantees: A's spans reach B's sink exactly once over TLS; C sends nothing (none of its
/// spans arrive, none counted as sent), says why in its log, and stays up.
#[tokio::test]
async fn kafka_over_tls_trusts_only_the_configured_authority() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Authority::new(dir.path(), "kafka-ca");
    let other = Authority::new(dir.path(), "other-ca");
    let (cert, key) = ca.sign("broker", true);
    let front = TlsFront {
        cert,
        key,
        ca: ca.pem(),
    };
    let broker = Broker::start_behind(dir.path(), Some(front)).await;
    let sink = Sink::start().await;
    let consumer = Fleetpipe::start(&consuming_config(&broker, &sink, "")).await;
    let producer = Fleetpipe::start(&producing_config(&broker)).await;
    let trusted = format!("ca_file: '{}'", ca.pem().display());
    let untrusting_config =
        producing_config(&broker).replace(&trusted, &format!("ca_file: '{}'", other.pem().display()));
    let untrusting = Fleetpipe::start(&untrusting_config).await;
    send_two_trace_requests(&untrusting, 3).await;
    let sent = send_two_trace_requests(&producer, 10).await;

    sink.wait_for(Signal::Traces, 70, Duration::from_secs(60)).await;
    let mut refused = String::new();
    for _ in 0..400 {
        refused = untrusting.log();
        if refused.contains("certificate verify failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused.contains("certificate verify failed"), "{refused}");
    assert_eq!(spans_by_id(&sink), spans_of(&sent), "{}", consumer.log());
    let sent_by_untrusting = untrusting
        .metric("fleetpipe_exporter_sent_items_total", &["exporter=\"kafka\""])
        .await;
    assert_eq!(sent_by_untrusting, 0.0);
}
