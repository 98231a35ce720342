//! Reading `CONFIG.yaml`: the `integrations` section in the seeds' format
//! (`integrations.<category>.<kind>: [entries]`) and the optional `agents.layers` mapping.
//! Every other section is the operating model's business and is ignored.

use std::collections::{BTreeMap, HashMap};

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::model::{AgentLayers, Connection, Integration, Layer};
use crate::config::{ConfigIssue, LOCATED_ISSUES, shown_path};

/// What a `CONFIG.yaml` gives fleetpipe.
#[derive(Debug, Clone, Default)]
pub(super) struct RegistryFile {
    pub integrations: Vec<Integration>,
    /// `agents.layers`: `service.name` / `gen_ai.agent.name` glob → layer, in file order.
    pub agent_layers: Vec<(String, Layer)>,
}

/// Parses `text`; every problem is returned, each with its key path and line.
pub(super) fn parse(text: &str) -> Result<RegistryFile, Vec<ConfigIssue>> {
    let mut parser = Parser {
        text,
        issues: Vec::new(),
    };
    let root: Value = match serde_yaml::from_str(text) {
        Ok(root) => root,
        Err(error) => {
            let line = error.location().map(|l| l.line());
            return Err(vec![ConfigIssue {
                path: "(document)".into(),
                line,
                message: error.to_string(),
            }]);
        }
    };
    let file = RegistryFile {
        integrations: match root.get("integrations") {
            Some(Value::Mapping(categories)) => parser.integrations(categories),
            Some(_) => {
                parser.issue(&["integrations"], "must be a mapping of categories");
                Vec::new()
            }
            None => {
                parser.issue(
                    &["integrations"],
                    "no `integrations:` section: is this the operating model's CONFIG.yaml?",
                );
                Vec::new()
            }
        },
        agent_layers: parser
            .typed::<AgentLayers>(root.get("agents").and_then(|a| a.get("layers")), &["agents", "layers"])
            .0,
    };
    if parser.issues.is_empty() {
        Ok(file)
    } else {
        Err(parser.issues)
    }
}

struct Parser<'a> {
    text: &'a str,
    issues: Vec<ConfigIssue>,
}

impl Parser<'_> {
    fn issue(&mut self, path: &[&str], message: &str) {
        let issue = if self.issues.len() < LOCATED_ISSUES {
            ConfigIssue::at(self.text, path, message)
        } else {
            ConfigIssue::unlocated(path, message)
        };
        self.issues.push(issue);
    }

    fn integrations(&mut self, categories: &Mapping) -> Vec<Integration> {
        let mut integrations = Vec::new();
        let mut first_seen: HashMap<String, String> = HashMap::new();
        for (category, kinds) in categories {
            let category = key_text(category);
            let lists: Vec<(String, &Value)> = match kinds {
                Value::Mapping(kinds) => kinds.iter().map(|(k, v)| (key_text(k), v)).collect(),
                Value::Sequence(_) => vec![(category.clone(), kinds)],
                Value::Null => Vec::new(),
                _ => {
                    self.issue(
                        &["integrations", &category],
                        "must map kinds (e.g. `itsm:`) to lists of integrations",
                    );
                    continue;
                }
            };
            for (kind, list) in lists {
                let Value::Sequence(entries) = list else {
                    if !list.is_null() {
                        self.issue(&["integrations", &category, &kind], "must be a list of integrations");
                    }
                    continue;
                };
                for (index, entry) in entries.iter().enumerate() {
                    let index = index.to_string();
                    let path = ["integrations", category.as_str(), kind.as_str(), index.as_str()];
                    let Some(integration) = self.integration(entry, &path, &category, &kind) else {
                        continue;
                    };
                    let here = shown_path(&path);
                    if let Some(first) = first_seen.get(&integration.id) {
                        let message = format!("duplicate id `{}` (first registered at {first})", integration.id);
                        self.issue(&[&path[..], &["id"]].concat(), &message);
                        continue;
                    }
                    first_seen.insert(integration.id.clone(), here);
                    integrations.push(integration);
                }
            }
        }
        integrations
    }

    fn integration(&mut self, entry: &Value, path: &[&str], category: &str, kind: &str) -> Option<Integration> {
        let Value::Mapping(fields) = entry else {
            self.issue(
                path,
                "an integration must be a mapping with `id`, `name` and `connection`",
            );
            return None;
        };
        let required = |parser: &mut Self, key: &str| match fields.get(key) {
            Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            Some(_) => {
                parser.issue(&[path, &[key]].concat(), &format!("`{key}` must be a non-empty string"));
                None
            }
            None => {
                parser.issue(path, &format!("missing `{key}`"));
                None
            }
        };
        let id = required(self, "id");
        let name = required(self, "name");
        let connection_text = required(self, "connection");
        let connection = connection_text.as_deref().and_then(|text| {
            let parsed = Connection::parse(text);
            if parsed.is_none() {
                let message =
                    format!("unknown connection `{text}` (known: mcp, api, webhook, data-export, opentelemetry)");
                self.issue(&[path, &["connection"]].concat(), &message);
            }
            parsed
        });
        let layers = match fields.get("layers") {
            Some(value) => self.layers(value, &[path, &["layers"]].concat()),
            None => Vec::new(),
        };
        let match_rules = self.typed(fields.get("match"), &[path, &["match"]].concat());
        let governance = fields
            .get("governance")
            .map(|g| self.typed(Some(g), &[path, &["governance"]].concat()));
        let metadata = fields
            .iter()
            .map(|(k, v)| (key_text(k), v))
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "id" | "name" | "connection" | "layers" | "match" | "governance"
                )
            })
            .map(|(k, v)| (k, scalar_text(v)))
            .collect::<BTreeMap<_, _>>();
        Some(Integration {
            id: id?,
            name: name?,
            category: category.to_owned(),
            kind: kind.to_owned(),
            connection: connection?,
            layers,
            match_rules,
            governance,
            metadata,
        })
    }

    fn layers(&mut self, value: &Value, path: &[&str]) -> Vec<Layer> {
        let items: Vec<&Value> = match value {
            Value::Sequence(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut layers = Vec::new();
        for item in items {
            match item.as_str().and_then(Layer::parse) {
                Some(layer) => layers.push(layer),
                None => self.issue(
                    path,
                    &format!(
                        "unknown layer {} (known: steering, strategy, orchestration, execution, quality)",
                        scalar_text(item)
                    ),
                ),
            }
        }
        layers
    }

    fn typed<T: DeserializeOwned + Default>(&mut self, value: Option<&Value>, path: &[&str]) -> T {
        let Some(value) = value else { return T::default() };
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => parsed,
            Err(error) => {
                let inner = error.path().to_string();
                let mut full: Vec<&str> = path.to_vec();
                full.extend(inner.split('.').filter(|s| !s.is_empty() && *s != "?"));
                self.issue(&full, &error.inner().to_string());
                T::default()
            }
        }
    }
}

fn key_text(key: &Value) -> String {
    key.as_str().map_or_else(|| scalar_text(key), str::to_owned)
}

/// A field's value as text: scalars as written, collections in YAML flow style.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}
