//! The `otlp` exporter: OTLP over gRPC, one unary Export call per batch.

use std::str::FromStr;

use bytes::Bytes;
use http::uri::PathAndQuery;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::config::{Compression, OtlpExporterConfig};
use super::error::ExportError;
use crate::grpc_codec::RawCodec;
use crate::pipeline::{ExportResponse, Payload, Rejected};

pub struct OtlpGrpcSender {
    channel: Channel,
    metadata: MetadataMap,
    compression: Option<CompressionEncoding>,
    timeout: std::time::Duration,
}

impl OtlpGrpcSender {
    pub fn new(config: &OtlpExporterConfig) -> Result<OtlpGrpcSender, ExportError> {
        let setup = |e: &dyn std::fmt::Display| ExportError::Setup(e.to_string());
        let mut endpoint = Endpoint::from_shared(config.endpoint.to_string())
            .map_err(|e| setup(&e))?
            .connect_timeout(config.timeout)
            .tcp_nodelay(true);
        if config.endpoint.scheme() == "https" {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca_file) = &config.tls.ca_file {
                let pem =
                    std::fs::read(ca_file).map_err(|e| ExportError::Setup(format!("{}: {e}", ca_file.display())))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| setup(&e))?;
        }
        let mut metadata = MetadataMap::new();
        for (name, value) in &config.headers {
            let key = AsciiMetadataKey::from_str(&name.to_ascii_lowercase())
                .map_err(|e| ExportError::Setup(format!("header {name}: {e}")))?;
            let value =
                AsciiMetadataValue::from_str(value).map_err(|e| ExportError::Setup(format!("header {name}: {e}")))?;
            metadata.insert(key, value);
        }
        Ok(OtlpGrpcSender {
            channel: endpoint.connect_lazy(),
            metadata,
            compression: match config.compression {
                Compression::Gzip => Some(CompressionEncoding::Gzip),
                Compression::Zstd => Some(CompressionEncoding::Zstd),
                Compression::None => None,
            },
            timeout: config.timeout,
        })
    }

    /// One attempt; returns what the destination rejected through `partial_success`.
    pub async fn send(&self, payload: &Payload, body: Bytes) -> Result<Option<Rejected>, ExportError> {
        let signal = payload.signal();
        let mut client = tonic::client::Grpc::new(self.channel.clone());
        if let Some(encoding) = self.compression {
            client = client.send_compressed(encoding);
        }
        client = client
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        client.ready().await.map_err(|e| ExportError::Transport(Box::new(e)))?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        request.set_timeout(self.timeout);
        let path = PathAndQuery::from_maybe_shared(format!("/{}/Export", signal.grpc_service()))
            .map_err(|e| ExportError::Setup(e.to_string()))?;
        let response = client.unary(request, path, RawCodec).await.map_err(ExportError::Grpc)?;
        let decoded = ExportResponse::decode_protobuf(signal, response.get_ref());
        Ok(decoded.ok().and_then(|r| r.rejected()))
    }
}
