//! The `otlp_http` exporter: OTLP/HTTP with protobuf bodies.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::BodyFormat;
use super::config::OtlpExporterConfig;
use super::error::{ExportError, printable};
use crate::otlp::{ExportResponse, Rejected, Signal};

/// Most bytes of a destination's answer read: an OTLP response is a few bytes, an error's
/// `google.rpc.Status` at most a few KiB.
const RESPONSE_LIMIT: usize = 1 << 20;

pub(super) struct OtlpHttpSender {
    client: reqwest::Client,
    traces: Url,
    metrics: Url,
    logs: Url,
    headers: HeaderMap,
    body_format: BodyFormat,
}

impl OtlpHttpSender {
    pub(super) fn new(config: &OtlpExporterConfig) -> Result<OtlpHttpSender, ExportError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .danger_accept_invalid_certs(config.tls.insecure_skip_verify);
        if let Some(ca_file) = &config.tls.ca_file {
            let pem = std::fs::read(ca_file).map_err(|e| ExportError::Setup(format!("{}: {e}", ca_file.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| ExportError::Setup(format!("{}: {e}", ca_file.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        if let Some(client) = config.tls.identity().map_err(ExportError::Setup)? {
            let identity = reqwest::Identity::from_pem(&[client.cert, client.key].concat())
                .map_err(|e| ExportError::Setup(format!("tls.cert_file and tls.key_file: {e}")))?;
            builder = builder.identity(identity);
        }
        let client = builder.build().map_err(|e| ExportError::Setup(e.to_string()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let invalid = |e: &dyn std::fmt::Display| ExportError::Setup(format!("header {name}: {e}"));
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(&e))?;
            headers.insert(name, HeaderValue::from_str(value).map_err(|e| invalid(&e))?);
        }
        let url_for = |explicit: &Option<Url>, signal: Signal| {
            explicit
                .clone()
                .map_or_else(|| signal_url(&config.endpoint, signal), Ok)
        };
        Ok(OtlpHttpSender {
            client,
            traces: url_for(&config.traces_endpoint, Signal::Traces)?,
            metrics: url_for(&config.metrics_endpoint, Signal::Metrics)?,
            logs: url_for(&config.logs_endpoint, Signal::Logs)?,
            headers,
            body_format: BodyFormat::of(config, false),
        })
    }

    pub(super) fn body_format(&self) -> BodyFormat {
        self.body_format
    }

    /// One attempt with a body made by [`Self::body_format`]; returns what the destination
    /// rejected through `partial_success`.
    pub(super) async fn send(&self, signal: Signal, body: Bytes) -> Result<Option<Rejected>, ExportError> {
        let url = match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        };
        let mut request = self
            .client
            .post(url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/x-protobuf");
        if let Some(encoding) = self.body_format.encoding.header_value() {
            request = request.header(CONTENT_ENCODING, encoding);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| ExportError::Transport(Box::new(e)))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = read_capped(response)
            .await
            .map_err(|e| ExportError::Transport(Box::new(e)))?;
        if !status.is_success() {
            return Err(ExportError::Http {
                status,
                message: printable(&bytes),
                retry_after,
            });
        }
        let decoded = ExportResponse::decode_protobuf(signal, &bytes);
        Ok(decoded.ok().and_then(|r| r.rejected()))
    }
}

/// The destination's answer, read up to [`RESPONSE_LIMIT`]: an endpoint answering with an
/// endless or huge body cannot grow fleetpipe's memory (the OTel Go exporters had this flaw,
/// CVE-2026-39882); the rest is left unread and the connection closed. A body that never ends
/// runs into the attempt's timeout.
async fn read_capped(mut response: reqwest::Response) -> Result<Bytes, reqwest::Error> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        let room = RESPONSE_LIMIT - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// `endpoint` + `/v1/<signal>`, keeping any path prefix of the endpoint.
fn signal_url(endpoint: &Url, signal: Signal) -> Result<Url, ExportError> {
    let base = endpoint.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}{}", signal.http_path())).map_err(|e| ExportError::Setup(e.to_string()))
}
