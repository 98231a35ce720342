//! The open connections of one listener, so that connections that send no request cannot lock
//! real clients out. Each connection records when it last started a request and how many of
//! its requests are being answered. When every place is taken, a new connection takes the
//! place of the one without a request for longest (at least [`EVICTABLE_AFTER`], with none
//! being answered); and a connection without a request for the listener's idle timeout is
//! closed. Requests, not bytes, count: a client that trickles header bytes or answers HTTP/2
//! pings but never completes a request is as idle as one that sends nothing.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use futures::future::BoxFuture;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// A connection without a request for less than this keeps its place: a client that just
/// connected has time to send its first request.
pub(super) const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// How often a full listener looks again for an idle connection to close.
const LOOK_AGAIN: Duration = Duration::from_millis(250);

/// The places of one listener and who holds them.
pub(super) struct Connections {
    places: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
    started: Instant,
}

/// What one connection is doing.
pub(super) struct Activity {
    /// Milliseconds after the listener started that the connection opened or last started a
    /// request.
    last_request: AtomicU64,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// Cancelled to close the connection.
    pub(super) close: CancellationToken,
    started: Instant,
}

impl Activity {
    /// How long no request has started.
    pub(super) fn since_request(&self) -> Duration {
        let last = Duration::from_millis(self.last_request.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    pub(super) fn is_answering(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    /// Resolves once the connection has been silent for `timeout` with no request being
    /// answered.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        loop {
            let silent = self.since_request();
            if silent >= timeout && !self.is_answering() {
                return;
            }
            tokio::time::sleep(timeout.saturating_sub(silent).max(EVICTABLE_AFTER)).await;
        }
    }
}

/// A connection's place: given back, and its record removed, when dropped.
pub(super) struct Place {
    id: u64,
    pub(super) activity: Arc<Activity>,
    connections: Arc<Connections>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
    }
}

impl Connections {
    pub(super) fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            places: Arc::new(Semaphore::new(max.max(1))),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a connection just accepted: a free one, else the place of the connection
    /// idle longest once one may be closed; `None` when `shutdown` comes first.
    pub(super) async fn admit(self: &Arc<Self>, shutdown: &CancellationToken) -> Option<Place> {
        loop {
            if let Ok(permit) = Arc::clone(&self.places).try_acquire_owned() {
                return Some(self.register(permit));
            }
            self.close_longest_idle();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return None,
                permit = Arc::clone(&self.places).acquire_owned() => return permit.ok().map(|p| self.register(p)),
                _ = tokio::time::sleep(LOOK_AGAIN) => {}
            }
        }
    }

    fn register(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Place {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            last_request: AtomicU64::new(self.started.elapsed().as_millis() as u64),
            in_flight: AtomicUsize::new(0),
            close: CancellationToken::new(),
            started: self.started,
        });
        self.lock().insert(id, Arc::clone(&activity));
        Place {
            id,
            activity,
            connections: Arc::clone(self),
            _permit: permit,
        }
    }

    /// Closes the connection without a request for longest, if one has been for
    /// [`EVICTABLE_AFTER`] with none being answered.
    fn close_longest_idle(&self) {
        let open = self.lock();
        let silent = open
            .values()
            .filter(|a| !a.is_answering() && !a.close.is_cancelled())
            .map(|a| (a.since_request(), a))
            .filter(|(silent, _)| *silent >= EVICTABLE_AFTER)
            .max_by_key(|(silent, _)| *silent);
        if let Some((silent, activity)) = silent {
            tracing::debug!(
                ?silent,
                "Every connection place is taken; closing the connection idle longest."
            );
            activity.close.cancel();
        }
    }
}

/// A connection's stream, holding its place until it is dropped.
pub(super) struct PlacedStream<S> {
    pub(super) inner: S,
    pub(super) place: Place,
}

impl<S: AsyncRead + Unpin> AsyncRead for PlacedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PlacedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The router of one connection, recording when requests start and counting those being
/// answered.
#[derive(Clone)]
pub(super) struct Counted {
    pub(super) router: Router,
    pub(super) activity: Arc<Activity>,
}

/// One request being answered; counted down when the answer is ready or the request dropped.
struct Answering(Arc<Activity>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl tower::Service<http::Request<Incoming>> for Counted {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<http::Request<Incoming>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: http::Request<Incoming>) -> Self::Future {
        let activity = &self.activity;
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        let now = activity.started.elapsed().as_millis() as u64;
        activity.last_request.store(now, Ordering::Relaxed);
        let answering = Answering(Arc::clone(&self.activity));
        let answer = tower::Service::call(&mut self.router, request);
        Box::pin(async move {
            let response = answer.await;
            drop(answering);
            response
        })
    }
}
