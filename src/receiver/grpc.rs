//! OTLP/gRPC: the three collector services' `Export` methods, served from an axum router.
//!
//! The unary call is handled here rather than by tonic's server, so that a message is read
//! into a buffer of its own and charged to the memory budget before it is read and again as
//! it inflates (tonic inflates a compressed message whole first). Status codes follow the OTLP
//! specification: malformed data is INVALID_ARGUMENT, an oversized request RESOURCE_EXHAUSTED,
//! a full pipeline or short memory UNAVAILABLE with RetryInfo.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::StreamBody;
use hyper::body::Frame;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::body::{self, BodyError};
use super::{Format, Ingest, RETRY_DELAY, ReceiveError};
use crate::compression::{DecompressError, Encoding};
use crate::otlp::Signal;

/// A gRPC message's prefix: the compressed flag and the length.
const PREFIX_BYTES: usize = 5;

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

async fn unimplemented() -> Response<Body> {
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
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let method = self.clone();
        Box::pin(async move {
            Ok(match method.export(request).await {
                Ok(message) => answer(message),
                Err(status) => status.into_http(),
            })
        })
    }
}

impl ExportMethod {
    /// Reads the one request message, hands it to the pipelines and gives the response
    /// message once the request is taken (and, for a durable pipeline, queued).
    async fn export(&self, request: Request<Body>) -> Result<Bytes, Status> {
        let (head, body) = request.into_parts();
        let client = self
            .ingest
            .authenticate("grpc", self.signal, &head.headers)
            .map_err(|error| status_of(&error))?;
        check_content_type(&head.headers)?;
        let encoding = encoding_of(&head.headers)?;
        let declared = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let limit = self.ingest.max_request_bytes.saturating_add(PREFIX_BYTES);
        let mut held = body::read(body, declared, limit, &self.ingest.memory, self.read_timeout)
            .await
            .map_err(|error| status_of(&self.ingest.refused("grpc", self.signal, error.into())))?;
        let (compressed, message) = unframe(&held.bytes)?;
        let encoding = match (compressed, encoding) {
            (false, _) => Encoding::Identity,
            (true, Encoding::Identity) => {
                return Err(Status::invalid_argument(
                    "message has the compressed flag but the request names no grpc-encoding",
                ));
            }
            (true, encoding) => encoding,
        };
        held.bytes = message;
        let accepted = self
            .ingest
            .accept("grpc", self.signal, Format::Protobuf, encoding, held, client)
            .await
            .map_err(|error| status_of(&error))?;
        let response = accepted.queued().await.map_err(|error| status_of(&error))?;
        Ok(response.encode_protobuf())
    }
}

/// A gRPC request says `application/grpc` (or `application/grpc+proto`); anything else is
/// not a gRPC client and is refused rather than guessed at.
fn check_content_type(headers: &HeaderMap) -> Result<(), Status> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if matches!(media_type, "application/grpc" | "application/grpc+proto") {
        return Ok(());
    }
    Err(Status::invalid_argument(format!(
        "content-type {content_type:?} is not application/grpc; OTLP/HTTP is served on its own port"
    )))
}

/// The request's `grpc-encoding`; one fleetpipe does not accept is UNIMPLEMENTED, as the gRPC
/// compression protocol asks.
fn encoding_of(headers: &HeaderMap) -> Result<Encoding, Status> {
    let header = headers.get("grpc-encoding").and_then(|v| v.to_str().ok());
    Encoding::from_header(header).ok_or_else(|| {
        let mut status = Status::unimplemented(format!("unsupported grpc-encoding {header:?}; use gzip or zstd"));
        status.metadata_mut().insert(
            "grpc-accept-encoding",
            tonic::metadata::MetadataValue::from_static("gzip,zstd"),
        );
        status
    })
}

/// The one message of a unary request: its compressed flag and bytes.
fn unframe(body: &Bytes) -> Result<(bool, Bytes), Status> {
    let malformed = |why: &str| Status::invalid_argument(format!("malformed gRPC request: {why}"));
    let mut prefix = body.get(..PREFIX_BYTES).ok_or_else(|| malformed("no message"))?;
    let compressed = match prefix.get_u8() {
        0 => false,
        1 => true,
        flag => return Err(malformed(&format!("compressed flag {flag}, not 0 or 1"))),
    };
    let len = prefix.get_u32() as usize;
    if body.len() - PREFIX_BYTES != len {
        return Err(malformed(&format!(
            "the message's length says {len} bytes, {} follow (a unary call carries one message)",
            body.len() - PREFIX_BYTES
        )));
    }
    Ok((compressed, body.slice(PREFIX_BYTES..)))
}

/// A successful unary response: the message, then the trailers with status OK.
fn answer(message: Bytes) -> Response<Body> {
    let mut framed = BytesMut::with_capacity(PREFIX_BYTES + message.len());
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert(Status::GRPC_STATUS, HeaderValue::from(Code::Ok as i32));
    let frames = [Frame::data(framed.freeze()), Frame::trailers(trailers)];
    let body = StreamBody::new(futures::stream::iter(frames.map(Ok::<_, Infallible>)));
    let mut response = Response::new(Body::new(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

fn status_of(error: &ReceiveError) -> Status {
    let message = error.to_string();
    match error {
        ReceiveError::Decode(_)
        | ReceiveError::Decompress(DecompressError::Corrupt { .. })
        | ReceiveError::Body(BodyError::Read(_)) => Status::invalid_argument(message),
        ReceiveError::Decompress(DecompressError::TooLarge { .. }) | ReceiveError::Body(BodyError::TooLarge { .. }) => {
            Status::resource_exhausted(message)
        }
        ReceiveError::Body(BodyError::Timeout | BodyError::TooSlow) => Status::deadline_exceeded(message),
        ReceiveError::Overloaded(_)
        | ReceiveError::NotQueued
        | ReceiveError::Memory(_)
        | ReceiveError::Decompress(DecompressError::Memory(_))
        | ReceiveError::Body(BodyError::Memory(_)) => Status::with_error_details(
            Code::Unavailable,
            message,
            ErrorDetails::with_retry_info(Some(RETRY_DELAY)),
        ),
        ReceiveError::NoPipeline(_) => Status::unimplemented(message),
        ReceiveError::Unauthenticated(_) => Status::unauthenticated(message),
    }
}
