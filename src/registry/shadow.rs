//! What a running fleetpipe has seen agents call that the registry does not list: each shadow
//! target with how it was called, by which agents and layers, how often and when. Served as
//! JSON at `/registry/shadow` on the metrics endpoint, where `fleetpipe registry suggest
//! --endpoint` reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::matcher::CallFacts;
use super::suggest::Registered;
use super::{Registry, RegistryHandle};

/// Most distinct shadow targets kept; further ones are counted as `other`, so a hostile sender
/// cannot grow memory or the metrics without bound.
pub const MAX_SHADOW_TARGETS: usize = 1000;

/// Most agents and layers kept per target.
const MAX_CALLERS: usize = 50;

/// One tool or host agents called that no registered integration matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowTarget {
    /// What enrichment tags as `integration.target`: the tool, else the host, else the service.
    pub target: String,
    pub tool: Option<String>,
    /// `server.address`, else the host of `url.full`.
    pub host: Option<String>,
    /// One URL called, without its query or fragment.
    pub url: Option<String>,
    /// Called as an MCP tool (`mcp.method.name` = `tools/call`).
    pub mcp: bool,
    pub calls: u64,
    pub agents: BTreeSet<String>,
    pub layers: BTreeSet<String>,
    /// RFC 3339.
    pub first_seen: String,
    pub last_seen: String,
}

impl ShadowTarget {
    /// The facts a matcher reads, as the calls carried them.
    pub fn facts(&self) -> CallFacts<'_> {
        CallFacts {
            tool: self.tool.as_deref(),
            server_address: self.host.as_deref(),
            url: self.url.as_deref(),
            ..CallFacts::default()
        }
    }
}

/// Whether a shadow call's target was new, known, or one too many to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    New,
    Again,
    Overflow,
}

/// One shadow call, as enrichment saw it.
#[derive(Debug, Clone, Copy)]
pub struct ShadowCall<'a> {
    pub target: &'a str,
    pub facts: CallFacts<'a>,
    pub mcp: bool,
    pub agent: Option<&'a str>,
    pub layer: &'a str,
}

/// The shadow targets seen since start.
#[derive(Debug, Default)]
pub struct ShadowLedger {
    targets: Mutex<BTreeMap<String, ShadowTarget>>,
}

impl ShadowLedger {
    /// Counts one shadow call.
    pub fn record(&self, call: &ShadowCall<'_>, now: SystemTime) -> Seen {
        let now = humantime::format_rfc3339_seconds(now).to_string();
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = match targets.contains_key(call.target) {
            true => Seen::Again,
            false if targets.len() >= MAX_SHADOW_TARGETS => return Seen::Overflow,
            false => {
                let facts = &call.facts;
                let target = ShadowTarget {
                    target: call.target.to_owned(),
                    tool: facts.tool.map(str::to_owned),
                    host: facts.server_address.or_else(|| facts.url_host()).map(str::to_owned),
                    url: facts.url.map(without_query),
                    mcp: call.mcp,
                    first_seen: now.clone(),
                    ..ShadowTarget::default()
                };
                targets.insert(call.target.to_owned(), target);
                Seen::New
            }
        };
        let Some(target) = targets.get_mut(call.target) else {
            return seen;
        };
        target.calls += 1;
        target.last_seen = now;
        if let Some(agent) = call.agent
            && target.agents.len() < MAX_CALLERS
            && !target.agents.contains(agent)
        {
            target.agents.insert(agent.to_owned());
        }
        if target.layers.len() < MAX_CALLERS && !target.layers.contains(call.layer) {
            target.layers.insert(call.layer.to_owned());
        }
        seen
    }

    /// Every target, most called first.
    pub fn targets(&self) -> Vec<ShadowTarget> {
        let targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<ShadowTarget> = targets.values().cloned().collect();
        list.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.target.cmp(&b.target)));
        list
    }
}

/// A URL without query or fragment, which may carry tokens.
fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

/// What `GET /registry/shadow` answers: the registry in use and the shadow targets it still
/// does not match (a target registered since it was seen is left out).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShadowReport {
    pub registry_version: String,
    pub registered: Vec<Registered>,
    pub targets: Vec<ShadowTarget>,
}

impl ShadowReport {
    /// The ledger's targets that `registry` does not match, and what it registers.
    pub fn of(registry: &Registry, ledger: &ShadowLedger) -> ShadowReport {
        let mut targets = ledger.targets();
        targets.retain(|target| registry.matcher.attribute(&target.facts()).is_none());
        ShadowReport {
            registry_version: registry.version.clone(),
            registered: registry.integrations.iter().map(Registered::of).collect(),
            targets,
        }
    }
}

/// `GET /registry/shadow`: the [`ShadowReport`] as JSON.
pub fn router(registry: Arc<RegistryHandle>) -> Router {
    let answer = |State(handle): State<Arc<RegistryHandle>>| async move {
        axum::Json(ShadowReport::of(&handle.current(), &handle.shadow))
    };
    Router::new()
        .route("/registry/shadow", get(answer))
        .with_state(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: calls to one target are counted together with their agents and layers;
    /// the URL is kept without its query; past the limit new targets are not kept.
    #[test]
    fn ledger_counts_calls_per_target() {
        let ledger = ShadowLedger::default();
        let facts = CallFacts {
            url: Some("https://pastebin.com/api/post?token=secret"),
            ..CallFacts::default()
        };
        let call = |agent| ShadowCall {
            target: "pastebin.com",
            facts,
            mcp: false,
            agent: Some(agent),
            layer: "execution",
        };
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(ledger.record(&call("a"), now), Seen::New);
        assert_eq!(ledger.record(&call("b"), now), Seen::Again);
        assert_eq!(ledger.record(&call("a"), now), Seen::Again);
        let targets = ledger.targets();
        assert_eq!(targets.len(), 1);
        let target = &targets[0];
        assert_eq!(target.calls, 3);
        assert_eq!(target.url.as_deref(), Some("https://pastebin.com/api/post"));
        assert_eq!(target.host.as_deref(), Some("pastebin.com"));
        assert_eq!(target.agents, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
        assert_eq!(target.layers, BTreeSet::from(["execution".to_owned()]));
        for n in 1..MAX_SHADOW_TARGETS {
            let target = format!("t{n}");
            ledger.record(
                &ShadowCall {
                    target: &target,
                    ..call("a")
                },
                now,
            );
        }
        assert_eq!(
            ledger.record(
                &ShadowCall {
                    target: "one-more",
                    ..call("a")
                },
                now
            ),
            Seen::Overflow
        );
        assert_eq!(ledger.targets().len(), MAX_SHADOW_TARGETS);
    }
}
