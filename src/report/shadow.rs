//! What a reviewer needs to make a shadow integration governed: the registry entry to add (a
//! `CONFIG.yaml` snippet with `match` rules) and the registered integration it most likely
//! is, when one is close.

use serde_json::Value;

use super::Table;

/// The registered integrations seen in the period, to compare shadow targets with.
pub(super) const REGISTERED: &str = "SELECT DISTINCT integration_id AS id, integration_name AS name \
     FROM calls WHERE integration_registered AND integration_id IS NOT NULL ORDER BY id";

/// Adds `likely` (an id of `registered`, or nothing) and `snippet` to each row of `shadow`.
pub(super) fn suggest(shadow: &mut Table, registered: &Table) {
    for column in ["likely", "snippet"] {
        shadow.columns.push(column.into());
    }
    for row in &mut shadow.rows {
        let text = |key: &str| row.get(key).and_then(Value::as_str).map(str::to_owned);
        let target = text("target").unwrap_or_default();
        let snippet = snippet(&target, text("tool_name"), text("server_address"), text("layers"));
        if let Some(id) = likely(&target, registered) {
            row.insert("likely".into(), Value::String(id));
        }
        row.insert("snippet".into(), Value::String(snippet));
    }
}

/// The words of a name: lower-case runs of letters and digits, three or more long.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The registered integration whose id or name shares the most words with `target`.
fn likely(target: &str, registered: &Table) -> Option<String> {
    let target_words = words(target);
    registered
        .rows
        .iter()
        .filter_map(|row| {
            let id = row.get("id")?.as_str()?;
            let name = row.get("name").and_then(Value::as_str).unwrap_or_default();
            let theirs = [words(id), words(name)].concat();
            let shared = target_words.iter().filter(|w| theirs.contains(w)).count();
            (shared > 0).then(|| (shared, id.to_owned()))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, id)| id)
}

/// A registry entry for `target`, recognised by its tool name or host.
fn snippet(target: &str, tool: Option<String>, host: Option<String>, layers: Option<String>) -> String {
    let id = words(target).into_iter().next().unwrap_or_else(|| "unreviewed".into());
    let mut rules = Vec::new();
    if let Some(tool) = tool {
        rules.push(format!("          tools: [\"{tool}\"]"));
    }
    if let Some(host) = host {
        rules.push(format!("          hosts: [\"{host}\"]"));
    }
    if rules.is_empty() {
        rules.push(format!("          tools: [\"{target}\"]"));
    }
    // Only the layers the operating model knows: `unknown` is what enrichment says without one.
    let known: Vec<&str> = layers
        .as_deref()
        .unwrap_or_default()
        .split(", ")
        .filter(|l| !l.is_empty() && *l != "unknown")
        .collect();
    let layers = match known.is_empty() {
        true => String::new(),
        false => format!("        layers: [{}]\n", known.join(", ")),
    };
    format!(
        "integrations:\n  unreviewed:             # the category it belongs to\n    shadow:\n      - id: \"{id}\"\n        name: \"{target}\"\n        connection: \"api\"  # mcp, api, webhook, data-export, opentelemetry\n{layers}        match:\n{}\n",
        rules.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn registered() -> Table {
        let row = |id: &str, name: &str| {
            let mut row = Map::new();
            row.insert("id".into(), Value::String(id.into()));
            row.insert("name".into(), Value::String(name.into()));
            row
        };
        Table {
            columns: vec!["id".into(), "name".into()],
            rows: vec![row("work-tracking", "Jira"), row("knowledge-base", "Confluence Cloud")],
        }
    }

    /// Guarantees: a shadow target is matched to the registered integration sharing a word
    /// with it, and to none when none does.
    #[test]
    fn likely_integration_shares_a_word() {
        assert_eq!(
            likely("confluence_search", &registered()).as_deref(),
            Some("knowledge-base")
        );
        assert_eq!(
            likely("jira_create_issue", &registered()).as_deref(),
            Some("work-tracking")
        );
        assert_eq!(likely("weather.example.com", &registered()), None);
    }

    /// Guarantees: the snippet is a registry entry that recognises the target by its tool and
    /// host, with the layers that called it, and is valid YAML.
    #[test]
    fn snippet_is_a_registry_entry() {
        let text = snippet(
            "confluence_search",
            Some("confluence_search".into()),
            Some("wiki.acme.internal".into()),
            Some("execution, strategy".into()),
        );
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        let entry = &yaml["integrations"]["unreviewed"]["shadow"][0];
        assert_eq!(entry["id"], "confluence");
        assert_eq!(entry["match"]["tools"][0], "confluence_search");
        assert_eq!(entry["match"]["hosts"][0], "wiki.acme.internal");
        assert_eq!(entry["layers"][1], "strategy");
    }
}
