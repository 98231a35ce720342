//! The OTLP receiver: gRPC and HTTP listeners that decode requests, refuse bad ones with the
//! status the OTLP specification prescribes, and hand good ones to the pipelines.

pub mod auth;
pub mod body;
pub mod config;
mod grpc;
mod http;
pub mod kafka;
pub mod tls;
mod watch;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::compression::{self, DecompressError, Encoding};
use crate::memory::{MemoryBudget, OverBudget};
use crate::otlp::{DecodeError, ExportResponse, Payload, Rejected, Signal, wire};
use crate::pipeline::component::{ReceiverContext, ReceiverSettings, Settings, StartError};
use crate::pipeline::{self, Overloaded, PipelineInput, SubmitError};
use crate::server::{self, ServerLimits, ServerTls};
use crate::telemetry::metrics::{Metrics, ReceiverLabels, RefusalLabels};
use auth::{AuthFailure, Authenticator, Client, ClientName};
use body::HeldBody;
use bytes::Bytes;
use config::OtlpReceiverConfig;

/// How long a client told to back off should wait before retrying.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// How long a durable pipeline's client waits for its request to be queued before it is told
/// to retry: well within the SDKs' export timeouts (10 s by default).
pub const QUEUED_WITHIN: Duration = Duration::from_secs(5);

/// Why a request was refused. Every variant but `Overloaded` is the sender's mistake.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The body is not a valid export request.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The body could not be decompressed, or inflates past the size limit.
    #[error(transparent)]
    Decompress(DecompressError),
    /// The pipeline is full; the client should retry after [`RETRY_DELAY`].
    #[error("{0}; retry later")]
    Overloaded(#[from] Overloaded),
    /// Memory is short (`service.memory_limit_mib`); the client should retry after
    /// [`RETRY_DELAY`].
    #[error("{0}; retry later")]
    Memory(OverBudget),
    /// The body did not arrive whole, in time, or within the size limit.
    #[error(transparent)]
    Body(body::BodyError),
    /// No pipeline of this signal is configured.
    #[error("this fleetpipe has no {0} pipeline")]
    NoPipeline(Signal),
    /// No bearer token, or not a known one: the message does not say which.
    #[error("unauthenticated: this receiver needs a valid bearer token")]
    Unauthenticated(AuthFailure),
    /// The request was taken, but it is not in every destination queue a durable pipeline
    /// requires within [`QUEUED_WITHIN`] (a disk queue is full), or fleetpipe stopped first;
    /// the client should retry (fleetpipe may deliver it too: a duplicate, never a loss).
    #[error(
        "the request is not yet in every destination queue (a disk queue is full, or fleetpipe is stopping); retry later"
    )]
    NotQueued,
}

impl ReceiveError {
    /// Whether the client should retry after [`RETRY_DELAY`] (UNAVAILABLE with RetryInfo, 503
    /// with `Retry-After`).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ReceiveError::Overloaded(_) | ReceiveError::NotQueued | ReceiveError::Memory(_)
        )
    }
}

impl From<DecompressError> for ReceiveError {
    fn from(error: DecompressError) -> ReceiveError {
        match error {
            DecompressError::Memory(short) => ReceiveError::Memory(short),
            other => ReceiveError::Decompress(other),
        }
    }
}

impl From<body::BodyError> for ReceiveError {
    fn from(error: body::BodyError) -> ReceiveError {
        match error {
            body::BodyError::Memory(short) => ReceiveError::Memory(short),
            other => ReceiveError::Body(other),
        }
    }
}

/// A request the pipelines took; for durable pipelines its acknowledgement waits until it is in
/// every destination queue.
pub struct Accepted {
    response: ExportResponse,
    queued: Option<Owed>,
}

/// A durable pipeline's acknowledgement still owed, and where a refusal is counted.
struct Owed {
    queued: tokio::sync::oneshot::Receiver<()>,
    metrics: Arc<Metrics>,
    labels: RefusalLabels,
}

impl Accepted {
    /// Whether the response can be given now.
    pub fn is_ready(&self) -> bool {
        self.queued.is_none()
    }

    /// The response, once the request is queued as its pipelines require.
    pub async fn queued(self) -> Result<ExportResponse, ReceiveError> {
        match self.queued {
            None => Ok(self.response),
            Some(owed) => match tokio::time::timeout(QUEUED_WITHIN, owed.queued).await {
                Ok(Ok(())) => Ok(self.response),
                Ok(Err(_)) | Err(_) => {
                    owed.metrics.receiver_refused_requests.get_or_create(&owed.labels).inc();
                    Err(ReceiveError::NotQueued)
                }
            },
        }
    }

    /// The response of a request whose pipelines owe no acknowledgement.
    pub fn response(self) -> ExportResponse {
        self.response
    }
}

impl ReceiveError {
    fn reason(&self) -> &'static str {
        match self {
            ReceiveError::Decode(_) | ReceiveError::Decompress(DecompressError::Corrupt { .. }) => "invalid",
            ReceiveError::Decompress(DecompressError::TooLarge { .. })
            | ReceiveError::Body(body::BodyError::TooLarge { .. }) => "too_large",
            ReceiveError::Body(body::BodyError::Timeout) => "timeout",
            ReceiveError::Body(body::BodyError::TooSlow) => "too_slow",
            ReceiveError::Body(_) => "invalid",
            ReceiveError::Overloaded(_) => "overloaded",
            ReceiveError::NoPipeline(_) => "unsupported",
            ReceiveError::NotQueued => "not_queued",
            ReceiveError::Memory(_) | ReceiveError::Decompress(DecompressError::Memory(_)) => "memory",
            ReceiveError::Unauthenticated(failure) => failure.reason(),
        }
    }
}

/// The wire form of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

/// Requests of more bytes than this, and every OTLP/JSON one, are decoded on the blocking
/// pool: decoding them takes long enough to stall the other requests of a runtime thread.
const DECODED_APART_ABOVE: usize = 256 << 10;

/// Memory an OTLP/JSON body takes while it is decoded, as a multiple of its decompressed
/// size, charged before decoding starts (`tests/receive/memory.rs` measures it).
const JSON_DECODING_FACTOR: usize = 6;

/// The transport-independent part of receiving: decompress, decode, validate, submit, count.
pub struct Ingest {
    receiver: String,
    pipelines: BTreeMap<Signal, Vec<PipelineInput>>,
    metrics: Arc<Metrics>,
    max_request_bytes: usize,
    memory: Arc<MemoryBudget>,
    /// The tokens clients must present, when the receiver has `auth`.
    auth: Option<Arc<Authenticator>>,
}

impl Ingest {
    /// Lets a request in when the receiver needs no token or it presents a known one;
    /// otherwise counts the refusal.
    pub(super) fn authenticate(
        &self,
        transport: &'static str,
        signal: Signal,
        headers: &::http::HeaderMap,
    ) -> Result<Client, ReceiveError> {
        match &self.auth {
            None => Ok(Client::default()),
            Some(auth) => auth
                .check(headers)
                .map_err(|failure| self.refused(transport, signal, ReceiveError::Unauthenticated(failure))),
        }
    }

    /// Takes a request read whole; large and JSON ones are decoded off the runtime.
    pub(super) async fn accept(
        self: &Arc<Self>,
        transport: &'static str,
        signal: Signal,
        format: Format,
        encoding: Encoding,
        body: HeldBody,
        client: Client,
    ) -> Result<Accepted, ReceiveError> {
        let result = if format == Format::Protobuf && body.bytes.len() <= DECODED_APART_ABOVE {
            self.try_accept(transport, signal, format, encoding, body, &client)
        } else {
            let ingest = Arc::clone(self);
            let decoding = tokio::task::spawn_blocking(move || {
                ingest.try_accept(transport, signal, format, encoding, body, &client)
            });
            match decoding.await {
                Ok(result) => result,
                Err(failed) => std::panic::resume_unwind(failed.into_panic()),
            }
        };
        result.map_err(|error| self.refused(transport, signal, error))
    }

    /// Counts and logs a refusal, and gives it back.
    fn refused(&self, transport: &'static str, signal: Signal, error: ReceiveError) -> ReceiveError {
        let labels = self.refusal(transport, signal, error.reason());
        self.metrics.receiver_refused_requests.get_or_create(&labels).inc();
        tracing::debug!(receiver = %self.receiver, transport, %signal, %error, "Request refused.");
        error
    }

    fn try_accept(
        &self,
        transport: &'static str,
        signal: Signal,
        format: Format,
        encoding: Encoding,
        body: HeldBody,
        client: &Client,
    ) -> Result<Accepted, ReceiveError> {
        let pipelines = self.pipelines.get(&signal).ok_or(ReceiveError::NoPipeline(signal))?;
        let HeldBody { bytes, mut charge } = body;
        let raw = compression::decompress(encoding, bytes, self.max_request_bytes, &mut charge)?;
        let (body, rejected_in_json) = match format {
            Format::Protobuf => (raw, Rejected::default()),
            Format::Json => {
                let decoding = raw.len().saturating_mul(JSON_DECODING_FACTOR);
                charge.grow(decoding).map_err(ReceiveError::Memory)?;
                let mut payload = Payload::decode_json(signal, &raw)?;
                let rejected = payload.reject_invalid();
                (payload.encode_protobuf(), rejected)
            }
        };
        let body = self.name_client(signal, body, client)?;
        let submitted = match pipeline::submit(pipelines, signal, body) {
            Ok(submitted) => submitted,
            Err(SubmitError::Malformed(error)) => return Err(error.into()),
            Err(SubmitError::Overloaded { overloaded, items }) => {
                let labels = self.refusal(transport, signal, "overloaded");
                self.metrics
                    .receiver_refused_items
                    .get_or_create(&labels)
                    .inc_by(items as u64);
                return Err(overloaded.into());
            }
        };
        let items = submitted.items as u64;
        let rejected = if rejected_in_json.count > 0 {
            rejected_in_json
        } else {
            submitted.rejected
        };
        let labels = ReceiverLabels {
            receiver: self.receiver.clone(),
            transport,
            signal: signal.as_str(),
        };
        self.metrics.receiver_accepted.get_or_create(&labels).inc_by(items);
        if rejected.count > 0 {
            let labels = self.refusal(transport, signal, "partial");
            self.metrics
                .receiver_refused_items
                .get_or_create(&labels)
                .inc_by(rejected.count as u64);
        }
        let queued = submitted.queued.map(|queued| Owed {
            queued,
            metrics: Arc::clone(&self.metrics),
            labels: self.refusal(transport, signal, "not_queued"),
        });
        Ok(Accepted {
            response: ExportResponse::new(signal, rejected),
            queued,
        })
    }

    /// With named tokens, writes the client's name on the request's resources (see
    /// [`Authenticator::names_clients`]).
    fn name_client(&self, signal: Signal, body: Bytes, client: &Client) -> Result<Bytes, ReceiveError> {
        if !self.auth.as_ref().is_some_and(|auth| auth.names_clients()) {
            return Ok(body);
        }
        let mut naming = ClientName(client.name.as_deref());
        let (rewritten, _) =
            wire::rewrite(signal, &body, &mut naming).map_err(|source| DecodeError::Wire { signal, source })?;
        Ok(rewritten.map_or(body, Bytes::from))
    }

    fn refusal(&self, transport: &'static str, signal: Signal, reason: &'static str) -> RefusalLabels {
        RefusalLabels {
            receiver: self.receiver.clone(),
            transport,
            signal: signal.as_str(),
            reason,
        }
    }
}

/// A receiver whose ports are bound, ready to serve.
pub struct BoundReceiver {
    grpc: Option<Listener>,
    http: Option<Listener>,
    ingest: Arc<Ingest>,
}

/// One bound port and how it serves.
struct Listener {
    listener: TcpListener,
    limits: ServerLimits,
    read_timeout: Duration,
    tls: Option<ServerTls>,
}

/// Binds the receiver's ports and loads its certificates and tokens (watched for changes until
/// `shutdown`). Binding is separate from serving so that a taken port stops start-up before
/// any data is acknowledged.
pub async fn bind(
    name: &str,
    config: &OtlpReceiverConfig,
    pipelines: BTreeMap<Signal, Vec<PipelineInput>>,
    metrics: &Arc<Metrics>,
    memory: &Arc<MemoryBudget>,
    shutdown: &CancellationToken,
) -> Result<BoundReceiver, StartError> {
    let key = |rest: &str| format!("receivers.{name}.{rest}");
    let grpc = match &config.protocols.grpc {
        Some(c) => {
            let limits = ServerLimits {
                max_connections: c.max_connections,
                header_read_timeout: c.read_timeout,
                max_concurrent_streams: c.max_concurrent_streams,
                idle_timeout: c.idle_timeout,
            };
            Some(listen(name, "grpc", c.endpoint, limits, c.tls.as_ref(), shutdown).await?)
        }
        None => None,
    };
    let http = match &config.protocols.http {
        Some(c) => {
            let limits = ServerLimits {
                max_connections: c.max_connections,
                header_read_timeout: c.read_timeout,
                idle_timeout: c.idle_timeout,
                ..ServerLimits::default()
            };
            Some(listen(name, "http", c.endpoint, limits, c.tls.as_ref(), shutdown).await?)
        }
        None => None,
    };
    let auth = match &config.auth {
        Some(settings) => Some(
            settings
                .authenticator(name, shutdown)
                .map_err(|e| StartError::new(key("auth"), e))?,
        ),
        None => None,
    };
    memory.bound_large_requests(config.max_request_bytes());
    for warning in config.warnings() {
        tracing::warn!(receiver = name, key = %warning.key, "{}", warning.message);
    }
    let ingest = Arc::new(Ingest {
        receiver: name.to_owned(),
        pipelines,
        metrics: Arc::clone(metrics),
        max_request_bytes: config.max_request_bytes(),
        memory: Arc::clone(memory),
        auth,
    });
    Ok(BoundReceiver { grpc, http, ingest })
}

/// Binds one listener and loads its certificate.
async fn listen(
    name: &str,
    protocol: &str,
    endpoint: std::net::SocketAddr,
    limits: ServerLimits,
    tls: Option<&tls::TlsSettings>,
    shutdown: &CancellationToken,
) -> Result<Listener, StartError> {
    let key = |rest: &str| format!("receivers.{name}.protocols.{protocol}.{rest}");
    let listener = server::bind(endpoint)
        .await
        .map_err(|e| StartError::new(key("endpoint"), format!("cannot listen on {endpoint}: {e}")))?;
    let tls = match tls {
        Some(settings) => Some(ServerTls {
            config: settings
                .load(&format!("{name}/{protocol}"), shutdown)
                .map_err(|e| StartError::new(key("tls"), e))?,
            handshake_timeout: settings.handshake_timeout,
            max_concurrent_handshakes: settings.max_concurrent_handshakes,
        }),
        None => None,
    };
    Ok(Listener {
        listener,
        read_timeout: limits.header_read_timeout,
        limits,
        tls,
    })
}

impl BoundReceiver {
    /// Serves until `shutdown`; the tasks end once in-flight requests are answered.
    pub fn serve(self, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
        if let Some(l) = self.grpc {
            let router = grpc::router(Arc::clone(&self.ingest), l.read_timeout);
            tasks.spawn(server::serve(l.listener, router, l.limits, l.tls, shutdown.clone()));
        }
        if let Some(l) = self.http {
            let router = http::router(Arc::clone(&self.ingest), l.read_timeout);
            tasks.spawn(server::serve(l.listener, router, l.limits, l.tls, shutdown.clone()));
        }
    }
}

impl Settings for OtlpReceiverConfig {
    fn problems(&self) -> Vec<crate::config::Problem> {
        OtlpReceiverConfig::problems(self)
    }

    fn warnings(&self) -> Vec<crate::config::Problem> {
        OtlpReceiverConfig::warnings(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait::async_trait]
impl ReceiverSettings for OtlpReceiverConfig {
    async fn start(&self, context: ReceiverContext<'_>) -> Result<(), StartError> {
        let bound = bind(
            context.name,
            self,
            context.feeds,
            context.metrics,
            context.memory,
            context.shutdown,
        )
        .await?;
        bound.serve(context.shutdown, context.tasks);
        Ok(())
    }
}
