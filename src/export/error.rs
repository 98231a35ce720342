//! Why an export attempt failed, and whether the OTLP specification lets us retry it.

use std::time::Duration;

use rdkafka::error::RDKafkaErrorCode;
use tonic::Code;
use tonic_types::StatusExt;

/// A failed export attempt.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The destination answered with a gRPC error status; retryable or not by its code.
    #[error("destination answered {}: {}", .0.code(), printable(.0.message().as_bytes()))]
    Grpc(tonic::Status),
    /// The destination answered an HTTP error status; `message` is its body, made printable.
    #[error("destination answered HTTP {status}: {message}")]
    Http {
        status: http::StatusCode,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The destination could not be reached or the connection broke: a network condition,
    /// always retried.
    #[error("cannot reach the destination: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The Kafka cluster did not take a message within the exporter's `timeout` (librdkafka's
    /// own retries included), or refused it.
    #[error("Kafka: {0}")]
    Kafka(rdkafka::error::KafkaError),
    /// Writing local output failed (disk full, permissions): the user's environment.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// A local exporter could not decode a batch that was forwarded as received (fleetpipe
    /// checks the framing of requests, not every string in them): the sender's data.
    #[error("batch cannot be decoded: {0}")]
    Undecodable(#[from] crate::otlp::DecodeError),
    /// The exporter's own settings cannot be turned into a client (bad CA file, header):
    /// the user's configuration.
    #[error("invalid exporter settings: {0}")]
    Setup(String),
}

/// Most bytes of a destination's message kept in an error.
const MESSAGE_LIMIT: usize = 512;

/// A destination's message as it may go into a log line: at most [`MESSAGE_LIMIT`] bytes,
/// invalid UTF-8 replaced and control characters (newlines, NUL, terminal escapes) escaped, so a
/// destination cannot write lines of its own into fleetpipe's log.
pub(super) fn printable(message: &[u8]) -> String {
    let shortened = &message[..message.len().min(MESSAGE_LIMIT)];
    let mut text = String::with_capacity(shortened.len());
    for c in String::from_utf8_lossy(shortened).chars() {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    if message.len() > MESSAGE_LIMIT {
        text.push('…');
    }
    text
}

impl ExportError {
    /// The OTLP specification's retryable conditions: gRPC UNAVAILABLE and friends, HTTP 429,
    /// 502, 503 and 504, and network failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            ExportError::Grpc(status) => {
                matches!(
                    status.code(),
                    Code::Unavailable
                        | Code::Cancelled
                        | Code::DeadlineExceeded
                        | Code::Aborted
                        | Code::OutOfRange
                        | Code::DataLoss
                ) || (status.code() == Code::ResourceExhausted && self.retry_after().is_some())
            }
            ExportError::Http { status, .. } => matches!(status.as_u16(), 429 | 502 | 503 | 504),
            ExportError::Transport(_) | ExportError::Io(_) => true,
            ExportError::Kafka(error) => !kafka_refuses_for_good(error) && !self.is_too_large(),
            ExportError::Setup(_) | ExportError::Undecodable(_) => false,
        }
    }

    /// Whether the destination refused the batch for its size (a gRPC server's message limit,
    /// HTTP 413): sending it again as it is cannot succeed, sending it in parts may. gRPC has no
    /// code of its own for it: servers answer OUT_OF_RANGE or RESOURCE_EXHAUSTED with a message
    /// saying so (tonic: "message length too large", "size limit … exceeded while
    /// decompressing"; grpc-go: "received message larger than max").
    pub fn is_too_large(&self) -> bool {
        match self {
            ExportError::Grpc(status) => {
                matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted)
                    && ["too large", "larger than", "size limit"]
                        .iter()
                        .any(|m| status.message().contains(m))
            }
            ExportError::Http { status, .. } => *status == http::StatusCode::PAYLOAD_TOO_LARGE,
            ExportError::Kafka(error) => matches!(
                error.rdkafka_error_code(),
                Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize)
            ),
            _ => false,
        }
    }

    /// Whether the refusal may be about what one of the batch's requests holds (gRPC
    /// INVALID_ARGUMENT, or INTERNAL, which gRPC servers answer when a message does not decode,
    /// e.g. a string that is not UTF-8; HTTP 400; a local exporter that cannot decode the
    /// batch): sent in parts, the other requests may pass.
    pub fn may_be_one_requests_content(&self) -> bool {
        match self {
            ExportError::Grpc(status) => matches!(status.code(), Code::InvalidArgument | Code::Internal),
            ExportError::Http { status, .. } => *status == http::StatusCode::BAD_REQUEST,
            ExportError::Undecodable(_) => true,
            _ => false,
        }
    }

    /// The wait the destination asked for: gRPC RetryInfo or HTTP `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ExportError::Grpc(status) => status.get_details_retry_info()?.retry_delay,
            ExportError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Kafka refusals that sending again cannot change: the credentials' rights, a topic that
/// cannot exist, settings the cluster does not take.
fn kafka_refuses_for_good(error: &rdkafka::error::KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::InvalidRequiredAcks
                | RDKafkaErrorCode::UnsupportedVersion
        )
    )
}
