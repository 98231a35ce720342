//! Bearer-token authentication of a receiver's clients: `Authorization: Bearer <token>` on
//! both transports, checked against every configured token in constant time (their SHA-256
//! digests are compared, so neither a token's bytes nor its length shows in the timing).
//! Several tokens are valid at once so they can be rotated; tokens in `bearer_token_file` are
//! read again when the file changes. A token never appears in a log line, error or metric.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio_util::sync::CancellationToken;

use super::watch;
use crate::config::Problem;
use crate::otlp::semconv::CLIENT;
use crate::otlp::wire::{Attribute, Edit, NewValue, Record, Visitor};

/// `receivers.otlp.auth`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Tokens accepted, usually `${env:…}`.
    #[serde(default)]
    pub bearer_tokens: Vec<Secret>,
    /// Tokens with a name each; the name is written to the resource of the client's data as
    /// `fleetpipe.client`.
    #[serde(default)]
    pub tokens: Vec<NamedToken>,
    /// A file of tokens, one a line (blank lines and lines starting with `#` are skipped),
    /// read again when it changes.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// How often `bearer_token_file` is checked for changes (default 10 s).
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(10)
}

/// A token with the name of the client that holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedToken {
    pub name: String,
    pub token: Secret,
}

/// A string whose `Debug` form does not show it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Why a request was not let in; the client is told neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that is not one of the configured ones.
    Wrong,
}

impl AuthFailure {
    /// The `reason` label of the refusal.
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "unauthenticated_missing",
            AuthFailure::Wrong => "unauthenticated_wrong",
        }
    }
}

/// A token as kept: its digest and the name of its client.
#[derive(Debug)]
struct KnownToken {
    digest: [u8; 32],
    name: Option<Arc<str>>,
}

/// The tokens a receiver accepts now.
#[derive(Debug)]
pub struct Authenticator {
    tokens: ArcSwap<Vec<KnownToken>>,
    /// Some tokens have names: every request's resources get `fleetpipe.client` written (or
    /// removed, for an unnamed token), so a client cannot pass as another.
    names_clients: bool,
}

/// An authenticated client: the name of its token, when it has one.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub name: Option<Arc<str>>,
}

/// Writes the client's name as `fleetpipe.client` on every resource, in place of any the
/// client wrote itself; for a client without a name, removes it.
pub struct ClientName<'a>(pub Option<&'a str>);

impl Visitor for ClientName<'_> {
    fn resource(&mut self, attributes: &[Attribute<'_>], edit: &mut Edit<'_>) {
        for attribute in attributes.iter().filter(|a| a.key == CLIENT.as_bytes()) {
            edit.drop(attribute);
        }
        if let Some(name) = self.0 {
            edit.add(CLIENT, NewValue::String(name));
        }
    }

    fn record(&mut self, _: &Record<'_, '_>, _: &mut Edit<'_>) {}
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl AuthSettings {
    /// The settings that cannot work.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let file = match &self.bearer_token_file {
            Some(path) => match read_token_file(path) {
                Ok(tokens) => tokens.len(),
                Err(message) => {
                    problems.push(Problem::new("bearer_token_file", message));
                    0
                }
            },
            None => 0,
        };
        let empty = |s: &Secret| s.0.trim().is_empty();
        if self.bearer_tokens.iter().any(empty) || self.tokens.iter().any(|t| empty(&t.token)) {
            problems.push(Problem::new("", "a token is empty (is its environment variable set?)"));
        }
        if self.bearer_tokens.len() + self.tokens.len() + file == 0 && problems.is_empty() {
            problems.push(Problem::new(
                "",
                "no token: set bearer_tokens, tokens or bearer_token_file, or leave auth out",
            ));
        }
        problems
    }

    fn known(&self) -> Result<Vec<KnownToken>, String> {
        let mut known: Vec<KnownToken> = self
            .bearer_tokens
            .iter()
            .map(|token| KnownToken {
                digest: digest(token.0.trim().as_bytes()),
                name: None,
            })
            .collect();
        known.extend(self.tokens.iter().map(|named| KnownToken {
            digest: digest(named.token.0.trim().as_bytes()),
            name: Some(Arc::from(named.name.as_str())),
        }));
        if let Some(path) = &self.bearer_token_file {
            known.extend(read_token_file(path)?.into_iter().map(|token| KnownToken {
                digest: digest(token.as_bytes()),
                name: None,
            }));
        }
        Ok(known)
    }

    /// The authenticator of these settings; with `bearer_token_file`, the file is watched
    /// until `shutdown` (a change that leaves no token, or cannot be read, is logged and the
    /// tokens before it stay).
    pub fn authenticator(&self, receiver: &str, shutdown: &CancellationToken) -> Result<Arc<Authenticator>, String> {
        let authenticator = Arc::new(Authenticator {
            tokens: ArcSwap::from_pointee(self.known()?),
            names_clients: !self.tokens.is_empty(),
        });
        if let Some(path) = self.bearer_token_file.clone() {
            let (settings, watched, receiver) = (self.clone(), Arc::clone(&authenticator), receiver.to_owned());
            watch::on_change(vec![path], self.reload_interval, shutdown, move || {
                match settings.known() {
                    Ok(known) => {
                        let count = known.len();
                        watched.tokens.store(Arc::new(known));
                        tracing::info!(receiver, tokens = count, "Bearer tokens reloaded.");
                    }
                    Err(error) => {
                        tracing::error!(receiver, %error, "The bearer token file changed but cannot be used; the tokens before it stay.");
                    }
                }
            });
        }
        Ok(authenticator)
    }
}

/// The tokens of a token file; a file that cannot be read or holds none is an error, named
/// by path only (its contents are secret).
fn read_token_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        return Err(format!("{}: no token in the file", path.display()));
    }
    Ok(tokens)
}

impl Authenticator {
    /// Whether requests' resources are to carry `fleetpipe.client` (see the field).
    pub fn names_clients(&self) -> bool {
        self.names_clients
    }

    /// Checks the request's bearer token against every known one, all of them each time.
    pub fn check(&self, headers: &HeaderMap) -> Result<Client, AuthFailure> {
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or(AuthFailure::Missing)?;
        let presented = digest(presented.as_bytes());
        let mut client = None;
        for known in self.tokens.load().iter() {
            if bool::from(known.digest.ct_eq(&presented)) {
                client = Some(Client {
                    name: known.name.clone(),
                });
            }
        }
        client.ok_or(AuthFailure::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(tokens: &[&str]) -> AuthSettings {
        AuthSettings {
            bearer_tokens: tokens.iter().map(|t| Secret((*t).to_owned())).collect(),
            tokens: vec![NamedToken {
                name: "team-a".into(),
                token: Secret("alpha-token".into()),
            }],
            bearer_token_file: None,
            reload_interval: default_reload_interval(),
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().expect("header"));
        headers
    }

    #[tokio::test]
    async fn tokens_are_told_apart_and_named() {
        let auth = settings(&["one", "two"])
            .authenticator("otlp", &CancellationToken::new())
            .expect("tokens");
        assert!(auth.check(&headers("Bearer two")).is_ok());
        assert!(auth.check(&headers("bearer one")).is_ok());
        let named = auth.check(&headers("Bearer alpha-token")).expect("named");
        assert_eq!(named.name.as_deref(), Some("team-a"));
        assert_eq!(auth.check(&headers("Bearer three")).err(), Some(AuthFailure::Wrong));
        assert_eq!(auth.check(&headers("Basic one")).err(), Some(AuthFailure::Missing));
        assert_eq!(auth.check(&HeaderMap::new()).err(), Some(AuthFailure::Missing));
        assert!(!format!("{:?}", settings(&["s3cr3t-value"])).contains("s3cr3t"));
    }
}
