//! Counting OTLP/gRPC sink for load tests: accepts traces, metrics and logs, counts items
//! without keeping them, and prints the totals when stopped (SIGTERM/SIGINT) as JSON.
//!
//! `fleetpipe-sink --listen 127.0.0.1:5317`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use clap::Parser;
use fleetpipe::otlp::{ExportResponse, Rejected, Signal};
use http::{Request, Response};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:5317")]
    listen: SocketAddr,
}

#[derive(Clone)]
struct Export {
    signal: Signal,
    items: Arc<AtomicU64>,
}

impl tower::Service<Request<Body>> for Export {
    type Response = Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let export = self.clone();
        Box::pin(async move {
            let mut grpc = fleetpipe::grpc_codec::unary_server(64 << 20);
            Ok(grpc.unary(export, request).await)
        })
    }
}

impl tonic::server::UnaryService<bytes::Bytes> for Export {
    type Response = bytes::Bytes;
    type Future = std::future::Ready<Result<tonic::Response<bytes::Bytes>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<bytes::Bytes>) -> Self::Future {
        // Counting by walking the bytes keeps the sink from being the bottleneck of a load test.
        let result =
            fleetpipe::otlp::Request::from_protobuf(self.signal, request.into_inner(), None).map(|(request, _)| {
                self.items.fetch_add(request.item_count() as u64, Ordering::Relaxed);
                tonic::Response::new(ExportResponse::new(self.signal, Rejected::default()).encode_protobuf())
            });
        std::future::ready(result.map_err(|e| tonic::Status::invalid_argument(e.to_string())))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let counters: Vec<(Signal, Arc<AtomicU64>)> = Signal::ALL.into_iter().map(|s| (s, Arc::default())).collect();
    let mut router = Router::new();
    for (signal, items) in &counters {
        let export = Export {
            signal: *signal,
            items: Arc::clone(items),
        };
        router = router.route_service(&format!("/{}/Export", signal.grpc_service()), export);
    }
    let listener = fleetpipe::server::bind(args.listen).await?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(fleetpipe::server::serve(
        listener,
        router,
        Default::default(),
        None,
        shutdown.clone(),
    ));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    shutdown.cancel();
    let _ = server.await;
    let totals: Vec<String> = counters
        .iter()
        .map(|(s, c)| format!("\"{s}\":{}", c.load(Ordering::Relaxed)))
        .collect();
    println!("{{{}}}", totals.join(","));
    Ok(())
}
