//! What the `kafka` exporter and receiver share: the brokers they reach, the topic of each
//! signal, and the librdkafka client settings made from them.
//!
//! The client is librdkafka (through `rdkafka`, built from the source it ships, so no system
//! library is needed): the one Kafka client with an idempotent producer, consumer groups with
//! cooperative rebalancing, and the protocol versions of every broker in use, maintained by
//! Kafka's own community. The pure-Rust clients lack consumer groups (`rskafka`) or the
//! idempotent producer (`kafka`).

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::config::Problem;
use crate::config::client_tls::TlsConfig;
use crate::otlp::Signal;

/// The topic of each signal; the defaults are the OpenTelemetry Collector's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    pub traces: String,
    pub metrics: String,
    pub logs: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            traces: "otlp_spans".to_owned(),
            metrics: "otlp_metrics".to_owned(),
            logs: "otlp_logs".to_owned(),
        }
    }
}

impl Topics {
    pub fn of(&self, signal: Signal) -> &str {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }

    /// Topics that are empty or shared by two signals, at their keys below `topics`.
    pub fn problems(&self) -> Vec<Problem> {
        let named = [
            ("topics.traces", &self.traces),
            ("topics.metrics", &self.metrics),
            ("topics.logs", &self.logs),
        ];
        let mut problems = Vec::new();
        for (at, (key, topic)) in named.iter().enumerate() {
            if !is_topic_name(topic) {
                problems.push(Problem::new(
                    key,
                    format!("`{topic}` is not a Kafka topic name (1 to 249 of a-z, A-Z, 0-9, `.`, `_`, `-`)"),
                ));
            } else if named[..at].iter().any(|(_, other)| other == topic) {
                problems.push(Problem::new(
                    key,
                    format!("`{topic}` is another signal's topic too: each signal needs its own"),
                ));
            }
        }
        problems
    }
}

/// Kafka's rule for topic names.
pub fn is_topic_name(topic: &str) -> bool {
    (1..=249).contains(&topic.len())
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub fn default_brokers() -> Vec<String> {
    vec!["localhost:9092".to_owned()]
}

pub fn default_client_id() -> String {
    "fleetpipe".to_owned()
}

/// What both `kafka` components have: brokers, client id, TLS and further librdkafka options.
pub type ClusterSettings<'a> = (
    &'a [String],
    &'a str,
    Option<&'a TlsConfig>,
    &'a BTreeMap<String, String>,
);

/// A `kafka` component's settings, as far as reaching the cluster goes.
pub trait Cluster {
    fn cluster(&self) -> ClusterSettings<'_>;

    fn connection(&self) -> Connection<'_> {
        let (brokers, client_id, tls, options) = self.cluster();
        Connection {
            brokers,
            client_id,
            tls,
            options,
        }
    }
}

/// How a `kafka` component reaches its cluster.
pub struct Connection<'a> {
    pub brokers: &'a [String],
    pub client_id: &'a str,
    pub tls: Option<&'a TlsConfig>,
    /// Further librdkafka properties (`sasl.*`, `linger.ms`, …), as Vector's
    /// `librdkafka_options`.
    pub options: &'a BTreeMap<String, String>,
}

impl Connection<'_> {
    /// The client settings: the user's options first, then `fixed`, the properties the
    /// component's guarantees rest on (which [`Connection::problems`] refuses in `options`).
    pub fn client_config(&self, fixed: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in self.options {
            config.set(key, value);
        }
        config
            .set("bootstrap.servers", self.brokers.join(","))
            .set("client.id", self.client_id);
        for (key, value) in self.tls_properties() {
            config.set(key, value);
        }
        for (key, value) in fixed {
            config.set(*key, *value);
        }
        config
    }

    /// librdkafka's properties for `tls`; SASL credentials among the options then go over it.
    fn tls_properties(&self) -> Vec<(&'static str, String)> {
        let Some(tls) = self.tls else {
            return Vec::new();
        };
        let with_sasl = self.options.keys().any(|key| key.starts_with("sasl."));
        let protocol = if with_sasl { "sasl_ssl" } else { "ssl" };
        let mut properties = vec![("security.protocol", protocol.to_owned())];
        let files = [
            ("ssl.ca.location", &tls.ca_file),
            ("ssl.certificate.location", &tls.cert_file),
            ("ssl.key.location", &tls.key_file),
        ];
        for (key, file) in files {
            if let Some(file) = file {
                properties.push((key, file.display().to_string()));
            }
        }
        if tls.insecure_skip_verify {
            properties.push(("enable.ssl.certificate.verification", "false".to_owned()));
            properties.push(("ssl.endpoint.identification.algorithm", "none".to_owned()));
        }
        properties
    }

    /// `tls.insecure_skip_verify`.
    pub fn warnings(&self) -> Vec<Problem> {
        match self.tls {
            Some(tls) if tls.insecure_skip_verify => vec![Problem::new(
                "tls.insecure_skip_verify",
                "the brokers' certificates are not checked: whoever is on the network path can read and change the data",
            )],
            _ => Vec::new(),
        }
    }

    /// No broker, a broker that is not `host:port`, or an option that would undo one of
    /// `fixed`'s properties.
    pub fn problems(&self, fixed: &[(&str, &str)]) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.brokers.is_empty() {
            problems.push(Problem::new("brokers", "needs at least one `host:port`"));
        }
        for (index, broker) in self.brokers.iter().enumerate() {
            let port = broker.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
            if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
                problems.push(Problem::new(
                    &format!("brokers.{index}"),
                    format!("`{broker}` is not `host:port`"),
                ));
            }
        }
        let tls = self.tls_properties();
        for key in self.options.keys() {
            let taken = fixed.iter().any(|(fixed, _)| fixed == key)
                || tls.iter().any(|(tls, _)| tls == key)
                || matches!(key.as_str(), "bootstrap.servers" | "client.id");
            if taken {
                problems.push(Problem::new(
                    &format!("librdkafka_options.{key}"),
                    "is set by fleetpipe (brokers, client_id, tls, or what its delivery guarantee needs)",
                ));
            }
        }
        if let Some(tls) = self.tls {
            problems.extend(tls_problems(tls));
        }
        problems
    }
}

/// Files that cannot be read, and a client certificate without its key.
fn tls_problems(tls: &TlsConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(message) = tls.identity() {
        problems.push(Problem::new("tls", message));
    }
    let files = [
        ("tls.ca_file", &tls.ca_file),
        ("tls.cert_file", &tls.cert_file),
        ("tls.key_file", &tls.key_file),
    ];
    for (key, file) in files {
        if let Some(file) = file
            && let Err(error) = std::fs::File::open(file)
        {
            problems.push(Problem::new(key, format!("{}: {error}", file.display())));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Guarantees: misnamed or shared topics, unusable brokers and options, and TLS files that
    /// cannot be read are refused at their keys.
    #[test]
    fn unusable_connection_settings_are_located() {
        let topics = Topics {
            traces: "spans".to_owned(),
            metrics: "spans".to_owned(),
            logs: "no spaces".to_owned(),
        };
        let keys: Vec<String> = topics.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["topics.metrics", "topics.logs"]);
        let options = BTreeMap::from([
            ("acks".to_owned(), "1".to_owned()),
            ("linger.ms".to_owned(), "5".to_owned()),
        ]);
        let brokers = ["kafka:9092".to_owned(), "kafka".to_owned()];
        let tls = TlsConfig {
            ca_file: Some(PathBuf::from("/no/such/ca.pem")),
            cert_file: Some(PathBuf::from("/no/such/cert.pem")),
            ..TlsConfig::default()
        };
        let connection = Connection {
            brokers: &brokers,
            client_id: "fleetpipe",
            tls: Some(&tls),
            options: &options,
        };
        let keys: Vec<String> = connection
            .problems(&[("acks", "all")])
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(
            keys,
            [
                "brokers.1",
                "librdkafka_options.acks",
                "tls",
                "tls.ca_file",
                "tls.cert_file"
            ]
        );
        assert!(Topics::default().problems().is_empty());
    }
}
