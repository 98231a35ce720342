//! Serving an axum `Router` over HTTP/1.1 and HTTP/2 (h2c, or over TLS) with a connection
//! limit, a header read timeout and graceful shutdown. Used by the OTLP receivers and by
//! fleetpipe's health and metrics endpoints.
//!
//! Connections that send no request cannot lock real clients out (`connections`): when every
//! place is taken, the connection idle longest makes room, and a connection idle for the idle
//! timeout is closed. HTTP/2 connections are pinged, so dead peers are closed too.
//!
//! With TLS, each connection's handshake runs on its own task, bounded in time, and the work of
//! handshakes in how many run at once (counted from the client's hello), so half-open
//! connections cannot keep real clients from being served.
//!
//! Cancellation: when `shutdown` fires the listener closes at once; open connections finish the
//! requests they are serving and are then closed.

mod connections;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::sync::CancellationToken;

use connections::{Connections, Counted, PlacedStream};

/// TLS for a listener: the configuration new connections take (swapped when certificates are
/// reloaded) and the handshake's bounds.
#[derive(Clone)]
pub struct ServerTls {
    pub config: Arc<ArcSwap<rustls::ServerConfig>>,
    pub handshake_timeout: Duration,
    pub max_concurrent_handshakes: usize,
}

/// Limits applied to every connection of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub max_concurrent_streams: u32,
    /// A connection that starts no request for this long, with none being answered, is
    /// closed.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(30),
            max_concurrent_streams: 128,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// How long a connection without requests stays open: well above the SDKs' export intervals
/// (5 s for spans, 60 s for metrics), so clients keep their connections between exports.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Binds `endpoint`; a separate step so that start-up fails before anything is acknowledged
/// when a port is taken.
pub async fn bind(endpoint: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(endpoint).await
}

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    tls: Option<ServerTls>,
    shutdown: CancellationToken,
) {
    let connections = Connections::new(limits.max_connections);
    let handshakes = Arc::new(Semaphore::new(
        tls.as_ref().map_or(1, |tls| tls.max_concurrent_handshakes.max(1)),
    ));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(Some(KEEPALIVE_INTERVAL))
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin or stop serving.
                    tracing::warn!(%error, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(place) = connections.admit(&shutdown).await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            watcher: graceful.watcher(),
            service: Counted {
                router: router.clone(),
                activity: Arc::clone(&place.activity),
            },
            idle_timeout: limits.idle_timeout,
        };
        match &tls {
            Some(tls) => {
                let (tls, handshakes) = (tls.clone(), Arc::clone(&handshakes));
                tokio::spawn(async move {
                    if let Some(stream) = handshake(stream, &tls, handshakes).await {
                        connection.serve(PlacedStream { inner: stream, place }).await;
                    }
                });
            }
            None => {
                tokio::spawn(connection.serve(PlacedStream { inner: stream, place }));
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// How often an HTTP/2 connection is pinged, and how long its answer may take before the
/// connection is closed as dead (a peer that vanished without closing its socket).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// What serving one connection takes.
struct Connection {
    builder: Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    service: Counted,
    idle_timeout: Duration,
}

impl Connection {
    /// Serves until the client closes, the connection is idle for the idle timeout, or its
    /// place is given to a new connection.
    async fn serve<S>(self, stream: PlacedStream<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::clone(&stream.place.activity);
        let io = TokioIo::new(stream);
        let service = TowerToHyperService::new(self.service);
        let serving = self
            .watcher
            .watch(self.builder.serve_connection_with_upgrades(io, service).into_owned());
        tokio::select! {
            _ = serving => {}
            _ = activity.close.cancelled() => {}
            _ = activity.idle_for(self.idle_timeout) => {
                tracing::debug!("A connection without a request for the idle timeout was closed.");
            }
        }
    }
}

/// The TLS handshake of one connection, within the handshake timeout; `None` when it failed
/// or took too long (the client sees the connection close). A turn among the handshakes
/// allowed at once is taken only once the client's hello has arrived: the work (the server's
/// signature) starts there, so connections that never send one take no turn from real clients.
async fn handshake(
    stream: TcpStream,
    tls: &ServerTls,
    handshakes: Arc<Semaphore>,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let shaking = async {
        let hello = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream)
            .await
            .ok()?;
        let _turn = handshakes.acquire_owned().await.ok()?;
        hello.into_stream(tls.config.load_full()).await.ok()
    };
    match tokio::time::timeout(tls.handshake_timeout, shaking).await {
        Ok(stream) => {
            if stream.is_none() {
                tracing::debug!("A TLS handshake failed.");
            }
            stream
        }
        Err(_) => {
            tracing::debug!("A TLS handshake took too long; connection closed.");
            None
        }
    }
}
