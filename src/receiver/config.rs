//! Settings of the `otlp` receiver.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::auth::AuthSettings;
use super::tls::TlsSettings;
use crate::config::Problem;
use crate::server::DEFAULT_IDLE_TIMEOUT;

/// The OTLP receiver: gRPC and HTTP listeners sharing limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    /// The transports to listen on; a protocol left out is not started.
    pub protocols: Protocols,
    /// Largest request accepted, in MiB, measured after decompression (default 64, as the
    /// OTLP specification recommends). Larger requests get RESOURCE_EXHAUSTED / 413.
    pub max_request_size_mib: usize,
    /// Bearer tokens clients must present (on both transports); without it, anyone who can
    /// reach the port may send.
    pub auth: Option<AuthSettings>,
}

impl Default for OtlpReceiverConfig {
    fn default() -> Self {
        OtlpReceiverConfig {
            protocols: Protocols::default(),
            max_request_size_mib: 64,
            auth: None,
        }
    }
}

impl OtlpReceiverConfig {
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_size_mib.saturating_mul(1024 * 1024)
    }

    /// The listeners: key, address and TLS settings.
    fn listeners(&self) -> impl Iterator<Item = (&'static str, SocketAddr, Option<&TlsSettings>)> {
        let grpc = self
            .protocols
            .grpc
            .as_ref()
            .map(|c| ("grpc", c.endpoint, c.tls.as_ref()));
        let http = self
            .protocols
            .http
            .as_ref()
            .map(|c| ("http", c.endpoint, c.tls.as_ref()));
        grpc.into_iter().chain(http)
    }

    /// Certificates that do not load and tokens that cannot be used.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (protocol, _, tls) in self.listeners() {
            if let Some(Err(error)) = tls.map(TlsSettings::check) {
                problems.push(Problem::new(&format!("protocols.{protocol}.tls"), error.to_string()));
            }
        }
        if let Some(auth) = &self.auth {
            problems.extend(auth.problems().into_iter().map(|problem| Problem {
                key: match problem.key.as_str() {
                    "" => "auth".to_owned(),
                    key => format!("auth.{key}"),
                },
                message: problem.message,
            }));
        }
        problems
    }

    /// Listeners any host can reach without TLS or without tokens: whoever reaches the port
    /// can read what agents send, or send as them.
    pub fn warnings(&self) -> Vec<Problem> {
        self.listeners()
            .filter(|(_, endpoint, _)| !endpoint.ip().is_loopback())
            .filter_map(|(protocol, endpoint, tls)| {
                let missing = match (tls.is_some(), self.auth.is_some()) {
                    (true, true) => return None,
                    (false, true) => "without TLS: tokens and telemetry cross the network in the clear",
                    (true, false) => "without auth: any host that reaches it can send telemetry",
                    (false, false) => "without TLS or auth: any host that reaches it can send telemetry, in the clear",
                };
                Some(Problem::new(
                    &format!("protocols.{protocol}.endpoint"),
                    format!("{endpoint} is reachable beyond this host {missing}"),
                ))
            })
            .collect()
    }
}

/// Which listeners the receiver opens.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    /// OTLP/gRPC listener.
    pub grpc: Option<GrpcConfig>,
    /// OTLP/HTTP listener.
    pub http: Option<HttpConfig>,
}

/// OTLP/gRPC listener settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Address to listen on (default `127.0.0.1:4317`).
    pub endpoint: SocketAddr,
    /// Most client connections open at once; further connections wait to be accepted.
    pub max_connections: usize,
    /// Most concurrent HTTP/2 streams (in-flight requests) per connection.
    pub max_concurrent_streams: u32,
    /// Time a request may take to arrive and be answered before it is cancelled.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// A connection that starts no request for this long, with none being answered, is closed
    /// (clients reconnect when they next export); when every connection place is taken, the
    /// connection idle longest (at least 1 s) makes room for a new one.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// TLS (and mutual TLS with `client_ca_file`); without it, h2c in the clear.
    pub tls: Option<TlsSettings>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            endpoint: SocketAddr::from(([127, 0, 0, 1], 4317)),
            max_connections: 1024,
            max_concurrent_streams: 128,
            read_timeout: Duration::from_secs(30),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            tls: None,
        }
    }
}

/// OTLP/HTTP listener settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on (default `127.0.0.1:4318`).
    pub endpoint: SocketAddr,
    /// Most client connections open at once; further connections wait to be accepted.
    pub max_connections: usize,
    /// Time allowed to receive a request's headers and body; a slower client gets 408.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// A connection that starts no request for this long, with none being answered, is closed;
    /// when every place is taken, the one idle longest (at least 1 s) makes room.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// TLS (and mutual TLS with `client_ca_file`); without it, plain HTTP.
    pub tls: Option<TlsSettings>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            endpoint: SocketAddr::from(([127, 0, 0, 1], 4318)),
            max_connections: 1024,
            read_timeout: Duration::from_secs(30),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            tls: None,
        }
    }
}
