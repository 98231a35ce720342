//! The `otlp` exporter: OTLP over gRPC, one unary Export call per batch.
//!
//! The call is made on tonic's channel (connection, TLS, HTTP/2) with a body framed here:
//! tonic compresses only at a fixed level and on the sending task, while fleetpipe compresses
//! each batch once, at the configured level, off the runtime, and resends the same bytes on
//! retries.

use std::str::FromStr;

use bytes::{Buf, Bytes};
use http::header::{CONTENT_TYPE, TE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::BodyExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};
use tower::ServiceExt;

use super::BodyFormat;
use super::config::OtlpExporterConfig;
use super::error::ExportError;
use crate::otlp::{ExportResponse, Rejected, Signal};

pub(super) struct OtlpGrpcSender {
    channel: Channel,
    headers: HeaderMap,
    body_format: BodyFormat,
    timeout: std::time::Duration,
}

impl OtlpGrpcSender {
    pub(super) fn new(config: &OtlpExporterConfig) -> Result<OtlpGrpcSender, ExportError> {
        let setup = |e: &dyn std::fmt::Display| ExportError::Setup(e.to_string());
        let insecure = config.endpoint.scheme() == "https" && config.tls.insecure_skip_verify;
        let mut url = config.endpoint.clone();
        let tls_address = (
            url.host_str().unwrap_or_default().to_owned(),
            url.port_or_known_default(),
        );
        if insecure {
            // tonic refuses an https:// endpoint it makes no TLS for; the connection made by
            // `insecure::channel` is TLS to the same host and port.
            let _ = url.set_scheme("http");
            let _ = url.set_port(tls_address.1);
        }
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| setup(&e))?
            .connect_timeout(config.timeout)
            .tcp_nodelay(true);
        if config.endpoint.scheme() == "https" && !insecure {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca_file) = &config.tls.ca_file {
                let pem =
                    std::fs::read(ca_file).map_err(|e| ExportError::Setup(format!("{}: {e}", ca_file.display())))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            if let Some(client) = config.tls.identity().map_err(ExportError::Setup)? {
                tls = tls.identity(Identity::from_pem(client.cert, client.key));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| setup(&e))?;
        }
        let body_format = BodyFormat::of(config, true);
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let invalid = |e: &dyn std::fmt::Display| ExportError::Setup(format!("header {name}: {e}"));
            let name = HeaderName::from_str(&name.to_ascii_lowercase()).map_err(|e| invalid(&e))?;
            headers.insert(name, HeaderValue::from_str(value).map_err(|e| invalid(&e))?);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        if let Some(encoding) = body_format.encoding.header_value() {
            headers.insert("grpc-encoding", HeaderValue::from_static(encoding));
        }
        let millis = config.timeout.as_millis().clamp(1, 99_999_999);
        let timeout = HeaderValue::from_str(&format!("{millis}m")).map_err(|e| ExportError::Setup(e.to_string()))?;
        headers.insert("grpc-timeout", timeout);
        let channel = if insecure {
            let identity = config.tls.identity().map_err(ExportError::Setup)?;
            let (host, port) = tls_address;
            super::insecure::channel(&endpoint, host, port.unwrap_or(443), identity).map_err(ExportError::Setup)?
        } else {
            endpoint.connect_lazy()
        };
        Ok(OtlpGrpcSender {
            channel,
            headers,
            body_format,
            timeout: config.timeout,
        })
    }

    pub(super) fn body_format(&self) -> BodyFormat {
        self.body_format
    }

    /// One attempt with a body made by [`Self::body_format`]; returns what the destination
    /// rejected through `partial_success`.
    pub(super) async fn send(&self, signal: Signal, body: Bytes) -> Result<Option<Rejected>, ExportError> {
        let mut request = http::Request::builder()
            .method(Method::POST)
            .uri(format!("/{}/Export", signal.grpc_service()))
            .body(tonic::body::Body::new(http_body_util::Full::new(body)))
            .map_err(|e| ExportError::Setup(e.to_string()))?;
        *request.headers_mut() = self.headers.clone();
        let call = async {
            let transport = |e: tonic::transport::Error| ExportError::Transport(Box::new(e));
            let response = self.channel.clone().oneshot(request).await.map_err(transport)?;
            let (parts, body) = response.into_parts();
            if parts.status != http::StatusCode::OK {
                return Err(ExportError::Grpc(status_of_http(parts.status)));
            }
            if let Some(status) = grpc_status(&parts.headers) {
                return Err(ExportError::Grpc(status));
            }
            let collected = body
                .collect()
                .await
                .map_err(|e| ExportError::Grpc(Status::from_error(Box::new(e))))?;
            let trailers = collected.trailers().cloned().unwrap_or_default();
            match grpc_status(&trailers) {
                Some(status) => Err(ExportError::Grpc(status)),
                None if trailers.contains_key("grpc-status") || parts.headers.contains_key("grpc-status") => {
                    Ok(response_message(collected.to_bytes()))
                }
                None => Err(ExportError::Grpc(Status::unknown(
                    "the destination sent no grpc-status",
                ))),
            }
        };
        let message = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ExportError::Grpc(Status::deadline_exceeded("no answer within the exporter's timeout")))??;
        let decoded = ExportResponse::decode_protobuf(signal, &message);
        Ok(decoded.ok().and_then(|r| r.rejected()))
    }
}

/// The error status in gRPC headers or trailers; `None` when absent or OK. A details header
/// that is not base64 is dropped first, as tonic would panic on it.
fn grpc_status(headers: &HeaderMap) -> Option<Status> {
    use base64::Engine as _;
    const DETAILS: &str = "grpc-status-details-bin";
    let details_valid = headers
        .get(DETAILS)
        .is_none_or(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).is_ok());
    let status = if details_valid {
        Status::from_header_map(headers)
    } else {
        let mut headers = headers.clone();
        headers.remove(DETAILS);
        Status::from_header_map(&headers)
    };
    status.filter(|s| s.code() != Code::Ok)
}

/// The payload of the response's single gRPC message. Destinations do not compress it, as
/// fleetpipe does not offer `grpc-accept-encoding`; anything else reads as empty.
fn response_message(mut body: Bytes) -> Bytes {
    if body.len() < 5 || body[0] != 0 {
        return Bytes::new();
    }
    body.advance(1);
    let length = body.get_u32() as usize;
    body.slice(..length.min(body.len()))
}

/// The gRPC status for an HTTP status other than 200, as gRPC's HTTP-to-gRPC mapping says.
fn status_of_http(status: http::StatusCode) -> Status {
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(code, format!("HTTP {status}"))
}
