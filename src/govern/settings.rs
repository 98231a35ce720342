//! An exporter's governance settings: `data_flow`, `redaction` and `integration`, written
//! beside the exporter's own settings and taken out of them before those are read.

use serde::Deserialize;
use serde_yaml::Value;

use crate::config::Problem;
use crate::otlp::Signal;

/// The keys of an exporter's section that are governance, not the exporter's own.
pub const KEYS: [&str; 3] = ["data_flow", "redaction", "integration"];

/// Takes the governance keys out of an exporter's settings, as a mapping of their own.
pub fn split(settings: &mut Value) -> Value {
    let mut governance = serde_yaml::Mapping::new();
    if let Value::Mapping(mapping) = settings {
        for key in KEYS {
            if let Some(value) = mapping.remove(key) {
                governance.insert(Value::from(key), value);
            }
        }
    }
    Value::Mapping(governance)
}

/// What one exporter may receive and what is taken out of it first.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSettings {
    #[serde(default)]
    pub data_flow: DataFlow,
    #[serde(default)]
    pub redaction: Redaction,
    /// The registry entry (an `observability` integration) this exporter delivers to; its
    /// `governance.data_flows` bound the signals it gets.
    #[serde(default)]
    pub integration: Option<String>,
}

/// Which data an exporter gets; every part absent means all of it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataFlow {
    pub signals: Option<Vec<FlowSignal>>,
    /// Resources whose `operating_model.layer` is one of these (`unknown` included).
    pub layers: Option<Vec<String>>,
    /// Records attributed to one of these integration ids; others, and records attributed to
    /// none, are withheld.
    pub integrations: Option<Vec<String>>,
    pub unregistered: Unregistered,
}

/// The kinds of data an exporter can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowSignal {
    Traces,
    Metrics,
    Logs,
    /// Analytics' findings (log records), apart from the logs pipelines' own.
    Findings,
}

impl FlowSignal {
    pub fn of(signal: Signal) -> FlowSignal {
        match signal {
            Signal::Traces => FlowSignal::Traces,
            Signal::Metrics => FlowSignal::Metrics,
            Signal::Logs => FlowSignal::Logs,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FlowSignal::Traces => "traces",
            FlowSignal::Metrics => "metrics",
            FlowSignal::Logs => "logs",
            FlowSignal::Findings => "findings",
        }
    }
}

/// Whether calls to unregistered tools (shadow IT, `integration.registered: false`) go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unregistered {
    #[default]
    Include,
    Exclude,
}

/// Attributes removed or hashed before the data is queued for the exporter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Redaction {
    /// Attribute key globs (`*` is any run of characters) to remove.
    pub remove: Vec<String>,
    /// Attribute key globs whose values are replaced by their keyed HMAC-SHA256, in hex.
    pub hash: Vec<String>,
    /// The HMAC key, usually `${env:…}`.
    pub hash_key: Option<String>,
    /// GenAI content (prompts, completions, tool arguments and results): `remove` by default
    /// for `otlp` and `otlp_http` exporters, `keep` for the others.
    pub genai_content: Option<ContentPolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentPolicy {
    Remove,
    Keep,
}

/// Shortest HMAC key taken: a key shorter than this is guessable.
const MIN_HASH_KEY_BYTES: usize = 16;

/// Layer names a data flow may list.
pub const LAYERS: [&str; 6] = [
    "steering",
    "strategy",
    "orchestration",
    "execution",
    "quality",
    "unknown",
];

impl FlowSettings {
    /// The settings that cannot work, each at its key below the exporter.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let redaction = &self.redaction;
        let key_len = redaction.hash_key.as_deref().map_or(0, str::len);
        if !redaction.hash.is_empty() && key_len < MIN_HASH_KEY_BYTES {
            problems.push(Problem::new(
                "redaction.hash_key",
                format!("`hash` needs a key of {MIN_HASH_KEY_BYTES} bytes or more, e.g. ${{env:FLEETPIPE_HASH_KEY}}: an unkeyed or short-keyed hash of a value can be reversed by guessing"),
            ));
        }
        for (list, globs) in [
            ("redaction.remove", &redaction.remove),
            ("redaction.hash", &redaction.hash),
        ] {
            if globs.iter().any(|g| g.trim_matches('*').is_empty()) {
                problems.push(Problem::new(list, "a glob needs at least one character besides `*`"));
            }
        }
        for layer in self.data_flow.layers.iter().flatten() {
            if !LAYERS.contains(&layer.as_str()) {
                problems.push(Problem::new(
                    "data_flow.layers",
                    format!("unknown layer `{layer}` (known: {})", LAYERS.join(", ")),
                ));
            }
        }
        problems
    }
}

/// The `governance:` section of the configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// With a registry, let `otlp` and `otlp_http` exporters that name no registered
    /// `observability` integration run (warned about at every start) instead of refusing them.
    pub allow_unregistered_exporters: bool,
}
