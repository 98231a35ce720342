//! OTLP/HTTP: `POST /v1/traces`, `/v1/metrics` and `/v1/logs` with protobuf or JSON bodies.
//!
//! Responses use the request's content type; errors carry a `google.rpc.Status` body. Codes:
//! 400 malformed, 404 unknown path, 405 wrong method, 408 too slow, 413 too large,
//! 415 wrong media type, 503 + `Retry-After` when the pipeline is full.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use prost::Message;

use super::body::{self, BodyError};
use super::{Format, Ingest, RETRY_DELAY, ReceiveError};
use crate::compression::{DecompressError, Encoding};
use crate::otlp::Signal;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

#[derive(Clone)]
struct HttpState {
    ingest: Arc<Ingest>,
    read_timeout: Duration,
}

pub(super) fn router(ingest: Arc<Ingest>, read_timeout: Duration) -> Router {
    let state = HttpState { ingest, read_timeout };
    let mut router = Router::new();
    for signal in Signal::ALL {
        router = router.route(
            signal.http_path(),
            post(move |state: State<HttpState>, headers: HeaderMap, body: Body| export(state, signal, headers, body)),
        );
    }
    router
        .fallback(|| async {
            error_response(
                Format::Protobuf,
                StatusCode::NOT_FOUND,
                "unknown path; use /v1/traces, /v1/metrics or /v1/logs",
            )
        })
        .method_not_allowed_fallback(|| async {
            error_response(Format::Protobuf, StatusCode::METHOD_NOT_ALLOWED, "use POST")
        })
        .with_state(state)
}

async fn export(State(state): State<HttpState>, signal: Signal, headers: HeaderMap, body: Body) -> Response {
    let client = match state.ingest.authenticate("http", signal, &headers) {
        Ok(client) => client,
        Err(error) => return unauthorized(&headers, &error),
    };
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(format) = format_of(content_type) else {
        let message = format!("unsupported content type {content_type:?}; use {PROTOBUF} or {JSON}");
        return error_response(Format::Protobuf, StatusCode::UNSUPPORTED_MEDIA_TYPE, &message);
    };
    let encoding_header = headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let Some(encoding) = Encoding::from_header(encoding_header) else {
        let message = format!("unsupported content encoding {encoding_header:?}; use gzip or zstd");
        return error_response(format, StatusCode::UNSUPPORTED_MEDIA_TYPE, &message);
    };
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let limit = state.ingest.max_request_bytes;
    let queued = match body::read(body, declared, limit, &state.ingest.memory, state.read_timeout).await {
        Ok(held) => match state
            .ingest
            .accept("http", signal, format, encoding, held, client)
            .await
        {
            Ok(accepted) => accepted.queued().await,
            Err(error) => Err(error),
        },
        Err(error) => Err(state.ingest.refused("http", signal, error.into())),
    };
    match queued {
        Ok(response) => {
            let bytes = match format {
                Format::Protobuf => response.encode_protobuf(),
                Format::Json => response.encode_json(),
            };
            with_content_type(format, StatusCode::OK, bytes)
        }
        Err(error) => {
            let mut response = error_response(format, status_of(&error), &error.to_string());
            if error.is_retryable() {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(RETRY_DELAY.as_secs()));
            }
            response
        }
    }
}

/// 401 with `WWW-Authenticate: Bearer`, as RFC 6750 asks.
fn unauthorized(headers: &HeaderMap, error: &ReceiveError) -> Response {
    let mut response = error_response(format_of_accept(headers), StatusCode::UNAUTHORIZED, &error.to_string());
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The format of an answer given before the body is looked at: the request's content type
/// when fleetpipe knows it, else protobuf.
fn format_of_accept(headers: &HeaderMap) -> Format {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    format_of(content_type).unwrap_or(Format::Protobuf)
}

fn format_of(content_type: &str) -> Option<Format> {
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media_type.as_str() {
        PROTOBUF => Some(Format::Protobuf),
        JSON => Some(Format::Json),
        _ => None,
    }
}

fn status_of(error: &ReceiveError) -> StatusCode {
    match error {
        ReceiveError::Decode(_)
        | ReceiveError::Decompress(DecompressError::Corrupt { .. })
        | ReceiveError::Body(BodyError::Read(_)) => StatusCode::BAD_REQUEST,
        ReceiveError::Decompress(DecompressError::TooLarge { .. }) | ReceiveError::Body(BodyError::TooLarge { .. }) => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        ReceiveError::Body(BodyError::Timeout | BodyError::TooSlow) => StatusCode::REQUEST_TIMEOUT,
        ReceiveError::Overloaded(_)
        | ReceiveError::NotQueued
        | ReceiveError::Memory(_)
        | ReceiveError::Decompress(DecompressError::Memory(_))
        | ReceiveError::Body(BodyError::Memory(_)) => StatusCode::SERVICE_UNAVAILABLE,
        ReceiveError::NoPipeline(_) => StatusCode::NOT_FOUND,
        ReceiveError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
    }
}

/// A `google.rpc.Status` body in the request's format, as the OTLP specification asks.
fn error_response(format: Format, status: StatusCode, message: &str) -> Response {
    let code = grpc_code_for(status) as i32;
    let body = match format {
        Format::Protobuf => {
            let rpc = tonic_types::Status {
                code,
                message: message.to_owned(),
                details: Vec::new(),
            };
            Bytes::from(rpc.encode_to_vec())
        }
        Format::Json => Bytes::from(serde_json::json!({ "code": code, "message": message }).to_string()),
    };
    with_content_type(format, status, body)
}

fn grpc_code_for(status: StatusCode) -> tonic::Code {
    match status {
        StatusCode::BAD_REQUEST => tonic::Code::InvalidArgument,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            tonic::Code::Unimplemented
        }
        StatusCode::PAYLOAD_TOO_LARGE => tonic::Code::ResourceExhausted,
        StatusCode::REQUEST_TIMEOUT => tonic::Code::DeadlineExceeded,
        StatusCode::UNAUTHORIZED => tonic::Code::Unauthenticated,
        _ => tonic::Code::Unavailable,
    }
}

fn with_content_type(format: Format, status: StatusCode, body: Bytes) -> Response {
    let content_type = match format {
        Format::Protobuf => PROTOBUF,
        Format::Json => JSON,
    };
    (status, [(CONTENT_TYPE, content_type)], body).into_response()
}
