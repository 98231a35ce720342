//! OTLP/gRPC: the three collector services' `Export` methods, served from an axum router.
//!
//! Status codes follow the OTLP specification: malformed data is INVALID_ARGUMENT, an
//! oversized request RESOURCE_EXHAUSTED, a full pipeline UNAVAILABLE with RetryInfo.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use futures::future::{BoxFuture, Either};
use http::{HeaderValue, Request, Response};
use tonic::server::UnaryService;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{ExportResponse, Format, Ingest, RETRY_DELAY, ReceiveError};
use crate::compression::{DecompressError, Encoding};
use crate::grpc_codec;
use crate::otlp::Signal;

pub(super) fn router(ingest: Arc<Ingest>, read_timeout: Duration) -> Router {
    let mut router = Router::new().fallback(unimplemented);
    for signal in Signal::ALL {
        let method = ExportMethod {
            ingest: Arc::clone(&ingest),
            signal,
            read_timeout,
        };
        router = router.route_service(&format!("/{}/Export", signal.grpc_service()), method);
    }
    router
}

async fn unimplemented() -> Response<tonic::body::Body> {
    Status::unimplemented("unknown gRPC method; fleetpipe serves the OTLP collector services").into_http()
}

/// The `Export` method of one signal's service.
#[derive(Clone)]
struct ExportMethod {
    ingest: Arc<Ingest>,
    signal: Signal,
    read_timeout: Duration,
}

impl tower::Service<Request<Body>> for ExportMethod {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let method = self.clone();
        Box::pin(async move {
            let mut grpc = grpc_codec::unary_server(method.ingest.max_request_bytes);
            let timeout = method.read_timeout;
            let handler = UnaryHandler {
                ingest: method.ingest,
                signal: method.signal,
            };
            let response = match tokio::time::timeout(timeout, grpc.unary(handler, request)).await {
                Ok(response) => response,
                Err(_) => Status::deadline_exceeded("request not received within the read timeout").into_http(),
            };
            Ok(remap_decoding_status(response))
        })
    }
}

/// tonic answers before our handler runs for two request faults, with codes the OTLP
/// specification does not use for them: an over-limit message is OUT_OF_RANGE (the spec says
/// RESOURCE_EXHAUSTED) and an undecompressable one INTERNAL (the sender's fault: INVALID_ARGUMENT).
/// Our handler returns neither code, so any occurrence is tonic's.
fn remap_decoding_status<B>(mut response: Response<B>) -> Response<B> {
    let code = response
        .headers()
        .get(Status::GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok());
    let remapped = match code.map(Code::from) {
        Some(Code::OutOfRange) => Code::ResourceExhausted,
        Some(Code::Internal) => Code::InvalidArgument,
        _ => return response,
    };
    response
        .headers_mut()
        .insert(Status::GRPC_STATUS, HeaderValue::from(remapped as i32));
    response
}

struct UnaryHandler {
    ingest: Arc<Ingest>,
    signal: Signal,
}

impl UnaryService<Bytes> for UnaryHandler {
    type Response = Bytes;
    type Future = Either<
        Ready<Result<tonic::Response<Bytes>, Status>>,
        BoxFuture<'static, Result<tonic::Response<Bytes>, Status>>,
    >;

    /// Answers at once, unless a durable pipeline owes the acknowledgement: then once it is
    /// given.
    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let body = request.into_inner();
        let result = self
            .ingest
            .accept("grpc", self.signal, Format::Protobuf, Encoding::Identity, body);
        let answer = |result: Result<ExportResponse, ReceiveError>| match result {
            Ok(response) => Ok(tonic::Response::new(response.encode_protobuf())),
            Err(error) => Err(status_of(&error)),
        };
        match result {
            Ok(accepted) if !accepted.is_ready() => {
                Either::Right(Box::pin(async move { answer(accepted.queued().await) }))
            }
            Ok(accepted) => Either::Left(ready(answer(Ok(accepted.response())))),
            Err(error) => Either::Left(ready(answer(Err(error)))),
        }
    }
}

fn status_of(error: &ReceiveError) -> Status {
    let message = error.to_string();
    match error {
        ReceiveError::Decode(_) | ReceiveError::Decompress(DecompressError::Corrupt { .. }) => {
            Status::invalid_argument(message)
        }
        ReceiveError::Decompress(DecompressError::TooLarge { .. }) => Status::resource_exhausted(message),
        ReceiveError::Overloaded(_) | ReceiveError::NotQueued => Status::with_error_details(
            Code::Unavailable,
            message,
            ErrorDetails::with_retry_info(Some(RETRY_DELAY)),
        ),
        ReceiveError::NoPipeline(_) => Status::unimplemented(message),
    }
}
