//! A real OTLP destination for tests: a gRPC server (and an OTLP/HTTP one) that records what
//! it receives and answers as told: success, a failure code on some requests, or never.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetpipe::otlp::{ExportResponse, Payload, Rejected, Signal};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};

/// The largest message the sink takes, as vendors commonly do (tonic's default is 4 MiB).
const MAX_MESSAGE: usize = 64 << 20;

/// How the sink answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    Accept,
    /// Answers `code` to every other request, starting with the first.
    FailEveryOther(Code),
    /// Answers `code` to every request.
    Fail(Code),
    /// Never answers.
    Stall,
}

#[derive(Default)]
struct State {
    received: Vec<Payload>,
    attempts: usize,
    behaviour: Option<Behaviour>,
}

/// A recording OTLP/gRPC server on an ephemeral loopback port.
#[derive(Clone)]
pub(crate) struct Sink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

impl Sink {
    pub(crate) async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        let sink = Sink {
            addr,
            state: Arc::default(),
            stop: Arc::default(),
        };
        sink.serve_on(listener);
        sink
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts serving again on the sink's address after [`Sink::stop`].
    pub(crate) async fn serve(&self) {
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.serve_on(listener);
    }

    fn serve_on(&self, listener: tokio::net::TcpListener) {
        let (tx, rx) = oneshot::channel();
        *self.stop.lock().expect("lock") = Some(tx);
        let handler = Handler(self.clone());
        let server = tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(handler.clone())
                    .max_decoding_message_size(MAX_MESSAGE)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd),
            )
            .add_service(
                MetricsServiceServer::new(handler.clone())
                    .max_decoding_message_size(MAX_MESSAGE)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd),
            )
            .add_service(
                LogsServiceServer::new(handler)
                    .max_decoding_message_size(MAX_MESSAGE)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd),
            );
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(server.serve_with_incoming_shutdown(incoming, async {
            let _ = rx.await;
        }));
    }

    /// Stops listening; clients see connection refused until [`Sink::serve`].
    pub(crate) fn stop(&self) {
        if let Some(stop) = self.stop.lock().expect("lock").take() {
            let _ = stop.send(());
        }
    }

    pub(crate) fn set(&self, behaviour: Behaviour) {
        self.state.lock().expect("lock").behaviour = Some(behaviour);
    }

    pub(crate) fn received(&self) -> Vec<Payload> {
        self.state.lock().expect("lock").received.clone()
    }

    pub(crate) fn attempts(&self) -> usize {
        self.state.lock().expect("lock").attempts
    }

    pub(crate) fn item_count(&self, signal: Signal) -> usize {
        self.received()
            .iter()
            .filter(|p| p.signal() == signal)
            .map(Payload::item_count)
            .sum()
    }

    /// Waits until `signal` items reached `count`, or panics after `within`.
    pub(crate) async fn wait_for(&self, signal: Signal, count: usize, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let have = self.item_count(signal);
            if have >= count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sink has {have} of {count} {signal} items after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Records or refuses one request, as the behaviour says.
    async fn handle(&self, payload: Payload) -> Result<ExportResponse, Status> {
        let decision = {
            let mut state = self.state.lock().expect("lock");
            state.attempts += 1;
            match state.behaviour.unwrap_or(Behaviour::Accept) {
                Behaviour::Accept => None,
                Behaviour::FailEveryOther(code) => (state.attempts % 2 == 1).then_some(code),
                Behaviour::Fail(code) => Some(code),
                Behaviour::Stall => Some(Code::Unknown),
            }
        };
        match decision {
            None => {
                let signal = payload.signal();
                self.state.lock().expect("lock").received.push(payload);
                Ok(ExportResponse::new(signal, Rejected::default()))
            }
            Some(Code::Unknown) => std::future::pending().await,
            Some(code) => Err(Status::new(code, "sink told to refuse")),
        }
    }
}

#[derive(Clone)]
struct Handler(Sink);

#[tonic::async_trait]
impl TraceService for Handler {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        match self.0.handle(Payload::Traces(request.into_inner())).await? {
            ExportResponse::Traces(r) => Ok(Response::new(r)),
            _ => Err(Status::internal("wrong signal")),
        }
    }
}

#[tonic::async_trait]
impl MetricsService for Handler {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        match self.0.handle(Payload::Metrics(request.into_inner())).await? {
            ExportResponse::Metrics(r) => Ok(Response::new(r)),
            _ => Err(Status::internal("wrong signal")),
        }
    }
}

#[tonic::async_trait]
impl LogsService for Handler {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        match self.0.handle(Payload::Logs(request.into_inner())).await? {
            ExportResponse::Logs(r) => Ok(Response::new(r)),
            _ => Err(Status::internal("wrong signal")),
        }
    }
}
