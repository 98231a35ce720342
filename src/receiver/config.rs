//! Settings of the `otlp` receiver.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// The OTLP receiver: gRPC and HTTP listeners sharing limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    /// The transports to listen on; a protocol left out is not started.
    pub protocols: Protocols,
    /// Largest request accepted, in MiB, measured after decompression (default 64, as the
    /// OTLP specification recommends). Larger requests get RESOURCE_EXHAUSTED / 413.
    pub max_request_size_mib: usize,
}

impl Default for OtlpReceiverConfig {
    fn default() -> Self {
        OtlpReceiverConfig {
            protocols: Protocols::default(),
            max_request_size_mib: 64,
        }
    }
}

impl OtlpReceiverConfig {
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_size_mib.saturating_mul(1024 * 1024)
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
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            endpoint: SocketAddr::from(([127, 0, 0, 1], 4317)),
            max_connections: 1024,
            max_concurrent_streams: 128,
            read_timeout: Duration::from_secs(30),
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
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            endpoint: SocketAddr::from(([127, 0, 0, 1], 4318)),
            max_connections: 1024,
            read_timeout: Duration::from_secs(30),
        }
    }
}
