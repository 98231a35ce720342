//! Serving an axum `Router` over HTTP/1.1 and HTTP/2 (h2c, or over TLS) with a connection
//! limit, a header read timeout and graceful shutdown. Used by the OTLP receivers and by
//! fleetpipe's health and metrics endpoints.
//!
//! With TLS, each connection's handshake runs on its own task, bounded in time and in how many
//! run at once, so half-open connections cannot keep real clients from being served.
//!
//! Cancellation: when `shutdown` fires the listener closes at once; open connections finish the
//! requests they are serving and are then closed.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

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
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(30),
            max_concurrent_streams: 128,
        }
    }
}

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
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let handshakes = tls
        .as_ref()
        .map(|tls| Arc::new(Semaphore::new(tls.max_concurrent_handshakes.max(1))));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams);
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
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
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        match (&tls, &handshakes) {
            (Some(tls), Some(handshakes)) => {
                let (tls, handshakes) = (tls.clone(), Arc::clone(handshakes));
                tokio::spawn(async move {
                    let Some(stream) = handshake(stream, &tls, handshakes).await else {
                        return;
                    };
                    let io = TokioIo::new(LimitedStream {
                        inner: stream,
                        _permit: permit,
                    });
                    let _ = watcher
                        .watch(builder.serve_connection_with_upgrades(io, service).into_owned())
                        .await;
                });
            }
            _ => {
                let io = TokioIo::new(LimitedStream {
                    inner: stream,
                    _permit: permit,
                });
                tokio::spawn(async move {
                    let _ = watcher
                        .watch(builder.serve_connection_with_upgrades(io, service).into_owned())
                        .await;
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The TLS handshake of one connection, within the handshake timeout and its turn among the
/// handshakes allowed at once; `None` when it failed or took too long (the client sees the
/// connection close).
async fn handshake(
    stream: TcpStream,
    tls: &ServerTls,
    handshakes: Arc<Semaphore>,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let acceptor = TlsAcceptor::from(tls.config.load_full());
    let shaking = async {
        let _turn = handshakes.acquire_owned().await.ok()?;
        acceptor.accept(stream).await.ok()
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

/// A connection that holds its place in the connection limit until it is dropped.
struct LimitedStream<S> {
    inner: S,
    _permit: OwnedSemaphorePermit,
}

impl<S: AsyncRead + Unpin> AsyncRead for LimitedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LimitedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
