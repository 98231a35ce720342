//! TLS for a receiver's listener: the server certificate and key, optionally a client CA
//! (mutual TLS), read from PEM files and read again when they change, so certificates are
//! rotated without a restart. A replacement that does not load is refused with a logged error
//! and the certificate loaded before keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;

use super::watch;
use tokio_util::sync::CancellationToken;

/// `protocols.grpc.tls` / `protocols.http.tls`, as the Collector names them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file of the server's certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM file of the CA that signs client certificates: when set, every client must present
    /// a certificate it signed (mutual TLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Lowest TLS version accepted: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: MinVersion,
    /// How often the files are checked for changes (default 1 m; `0s`: never).
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Longest a client may take to finish its handshake (default 10 s).
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Most handshakes in progress at once; further connections wait their turn (default 64).
    #[serde(default = "default_max_handshakes")]
    pub max_concurrent_handshakes: usize,
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_handshakes() -> usize {
    64
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum MinVersion {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// Why a certificate, key or client CA could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    #[error("the certificate and key of {cert} do not make a server configuration: {source}")]
    Config {
        cert: String,
        #[source]
        source: rustls::Error,
    },
}

impl TlsError {
    fn file(path: &Path, problem: impl std::fmt::Display) -> TlsError {
        TlsError::File {
            path: path.display().to_string(),
            problem: problem.to_string(),
        }
    }
}

impl TlsSettings {
    /// Checks that the files load into a server configuration, for `fleetpipe validate`.
    pub fn check(&self) -> Result<(), TlsError> {
        self.server_config().map(drop)
    }

    /// Reads the files into a server configuration offering HTTP/2 and HTTP/1.1.
    pub fn server_config(&self) -> Result<ServerConfig, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(Iterator::collect)
            .map_err(|e| TlsError::file(&self.cert_file, e))?;
        if chain.is_empty() {
            return Err(TlsError::file(&self.cert_file, "no certificate in the file"));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| TlsError::file(&self.key_file, e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version {
            MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let config_error = |source| TlsError::Config {
            cert: self.cert_file.display().to_string(),
            source,
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(config_error)?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca_file) => {
                let mut roots = RootCertStore::empty();
                for certificate in CertificateDer::pem_file_iter(ca_file).map_err(|e| TlsError::file(ca_file, e))? {
                    let certificate = certificate.map_err(|e| TlsError::file(ca_file, e))?;
                    roots.add(certificate).map_err(|e| TlsError::file(ca_file, e))?;
                }
                if roots.is_empty() {
                    return Err(TlsError::file(ca_file, "no certificate in the file"));
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| TlsError::file(ca_file, e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(config_error)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    fn files(&self) -> impl Iterator<Item = &Path> {
        [
            Some(&self.cert_file),
            Some(&self.key_file),
            self.client_ca_file.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
    }

    /// Loads the files and, with a reload interval, watches them until `shutdown`: a changed
    /// file is loaded for new connections; one that does not load is logged and left.
    pub fn load(&self, listener: &str, shutdown: &CancellationToken) -> Result<Arc<ArcSwap<ServerConfig>>, TlsError> {
        let current = Arc::new(ArcSwap::from_pointee(self.server_config()?));
        if !self.reload_interval.is_zero() {
            let (settings, watched, listener) = (self.clone(), Arc::clone(&current), listener.to_owned());
            let files = self.files().map(Path::to_path_buf).collect();
            watch::on_change(files, self.reload_interval, shutdown, move || {
                match settings.server_config() {
                    Ok(config) => {
                        watched.store(Arc::new(config));
                        tracing::info!(listener, "TLS certificate reloaded; new connections use it.");
                    }
                    Err(error) => {
                        tracing::error!(listener, %error, "TLS files changed but do not load; the certificate loaded before keeps serving.");
                    }
                }
            });
        }
        Ok(current)
    }
}
