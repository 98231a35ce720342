//! The integration registry as the operating model writes it in `CONFIG.yaml`, plus the fields
//! fleetpipe reads when an adopter adds them: `layers`, `match` and `governance`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

/// The operating model's layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    Steering,
    Strategy,
    Orchestration,
    Execution,
    Quality,
}

impl Layer {
    pub const ALL: [Layer; 5] = [
        Layer::Steering,
        Layer::Strategy,
        Layer::Orchestration,
        Layer::Execution,
        Layer::Quality,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Steering => "steering",
            Layer::Strategy => "strategy",
            Layer::Orchestration => "orchestration",
            Layer::Execution => "execution",
            Layer::Quality => "quality",
        }
    }

    pub fn parse(text: &str) -> Option<Layer> {
        let text = text.trim().to_ascii_lowercase();
        Layer::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an integration connects, per the registry's connection patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Connection {
    Mcp,
    Api,
    Webhook,
    DataExport,
    OpenTelemetry,
}

impl Connection {
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Mcp => "mcp",
            Connection::Api => "api",
            Connection::Webhook => "webhook",
            Connection::DataExport => "data-export",
            Connection::OpenTelemetry => "opentelemetry",
        }
    }

    /// Accepts the seeds' spellings, case-insensitively: `data export`, `data-export` and
    /// `data_export` are one pattern, as are `opentelemetry`, `open-telemetry` and `otel`.
    pub fn parse(text: &str) -> Option<Connection> {
        let folded: String = text
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match folded.as_str() {
            "mcp" | "mcpserver" => Some(Connection::Mcp),
            "api" | "apiintegration" => Some(Connection::Api),
            "webhook" | "event" | "webhookevent" => Some(Connection::Webhook),
            "dataexport" => Some(Connection::DataExport),
            "opentelemetry" | "otel" | "otlp" => Some(Connection::OpenTelemetry),
            _ => None,
        }
    }
}

/// How an integration's telemetry is recognised when the default name matching is not
/// precise enough. Explicit rules win over name matching.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchRules {
    /// Exact tool names (`gen_ai.tool.name`, MCP tool), e.g. `jira_search`.
    pub tools: Vec<String>,
    /// Tool name prefixes ending at `_`, `.`, `-`, `/` or `:`, e.g. `jira_`.
    pub tool_prefixes: Vec<String>,
    /// Host names or `*.domain` globs for `server.address` and the host of `url.full`.
    pub hosts: Vec<String>,
    /// URL prefixes for `url.full`, ending at a `/`, e.g. `https://acme.atlassian.net/rest/`.
    pub url_prefixes: Vec<String>,
    /// Exact `peer.service`, `rpc.service`, `messaging.destination.name` or `db.system.name`.
    pub services: Vec<String>,
}

impl MatchRules {
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
            && self.tool_prefixes.is_empty()
            && self.hosts.is_empty()
            && self.url_prefixes.is_empty()
            && self.services.is_empty()
    }
}

/// Who governs an integration and which signals may flow to it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Governance {
    /// Team or person accountable for the integration.
    pub owner: Option<String>,
    /// Who approves its activation (the PR reviewer role).
    pub approver: Option<String>,
    /// Telemetry signals allowed to flow to it (`traces`, `metrics`, `logs`); empty: all.
    pub data_flows: Vec<String>,
}

/// One registered integration.
#[derive(Debug, Clone)]
pub struct Integration {
    pub id: String,
    pub name: String,
    /// The section it is registered under, e.g. `enterprise_toolchain`.
    pub category: String,
    /// The list it is in, e.g. `itsm`.
    pub kind: String,
    pub connection: Connection,
    /// Layers that use it; empty when not stated.
    pub layers: Vec<Layer>,
    pub match_rules: MatchRules,
    pub governance: Option<Governance>,
    /// Every other field of the entry (`mcp_server`, `sync_direction`, …), as written.
    pub metadata: BTreeMap<String, String>,
}

/// Agent name globs mapped to layers, in the order written: the first glob that matches a
/// `service.name` or `gen_ai.agent.name` gives the layer. Written as a YAML mapping,
/// e.g. `"planner-*": strategy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentLayers(pub Vec<(String, Layer)>);

impl<'de> Deserialize<'de> for AgentLayers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = AgentLayers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of agent name globs to layers, e.g. \"planner-*\": strategy")
            }

            fn visit_unit<E: de::Error>(self) -> Result<AgentLayers, E> {
                Ok(AgentLayers::default())
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AgentLayers, A::Error> {
                let mut rules = Vec::new();
                while let Some((glob, layer)) = map.next_entry::<String, String>()? {
                    let layer = Layer::parse(&layer).ok_or_else(|| {
                        de::Error::custom(format!(
                            "unknown layer `{layer}` for `{glob}` (known: steering, strategy, orchestration, execution, quality)"
                        ))
                    })?;
                    rules.push((glob, layer));
                }
                Ok(AgentLayers(rules))
            }
        }
        deserializer.deserialize_any(Ordered)
    }
}
