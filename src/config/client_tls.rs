//! TLS settings of fleetpipe's clients, shared by the components that connect out.

use std::path::PathBuf;

use serde::Deserialize;

/// TLS of a client: an exporter's connections to its destination, the `kafka` components' to
/// their brokers. Without `ca_file` the system's roots are trusted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the certificate authority to trust instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate, for destinations that require mutual TLS (with
    /// `key_file`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Accept any certificate from the destination: for a test destination with a
    /// self-signed certificate only. Warned about at every start and by `validate`.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A client certificate and its key, as PEM.
pub struct ClientIdentity {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl TlsConfig {
    /// The client certificate and key, read, when both are set.
    pub fn identity(&self) -> Result<Option<ClientIdentity>, String> {
        let read = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Ok(Some(ClientIdentity {
                cert: read(cert)?,
                key: read(key)?,
            })),
            (None, None) => Ok(None),
            _ => Err("tls.cert_file and tls.key_file go together".to_owned()),
        }
    }
}
