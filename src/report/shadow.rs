//! The report's shadow section: the archive's shadow targets, each with the suggestion
//! `fleetpipe registry suggest` prints for it ([`crate::registry::suggest`]).

use std::collections::BTreeSet;

use serde_json::Value;

use super::Table;
use crate::registry::catalog::{Catalog, CatalogIndex};
use crate::registry::shadow::ShadowTarget;
use crate::registry::suggest::{self, Registered};

/// The registered integrations seen in the period, to compare shadow targets with.
pub(super) const REGISTERED: &str = "SELECT DISTINCT integration_id AS id, integration_name AS name \
     FROM calls WHERE integration_registered AND integration_id IS NOT NULL ORDER BY id";

/// Adds `likely` (an id of `registered`, or nothing), `reason` and `snippet` (the registry
/// entry to add, as a block to append under `integrations:`) to each row of `shadow`.
pub(super) fn suggest(shadow: &mut Table, registered: &Table) {
    let catalog = CatalogIndex::new(&Catalog::builtin(), &[]);
    let suggestions = suggest::suggest(&targets(shadow), &registered_of(registered), &catalog);
    for column in ["likely", "reason", "snippet"] {
        shadow.columns.push(column.into());
    }
    for (row, suggestion) in shadow.rows.iter_mut().zip(&suggestions) {
        if let Some(id) = &suggestion.likely {
            row.insert("likely".into(), Value::String(id.clone()));
        }
        row.insert("reason".into(), Value::String(suggestion.reason.clone()));
        let snippet = suggest::snippet(std::slice::from_ref(suggestion));
        row.insert("snippet".into(), Value::String(snippet));
    }
}

/// The rows of `queries/report/shadow.sql` as the targets a running fleetpipe's ledger lists.
pub(super) fn targets(shadow: &Table) -> Vec<ShadowTarget> {
    shadow
        .rows
        .iter()
        .map(|row| {
            let text = |key: &str| row.get(key).and_then(Value::as_str).map(str::to_owned);
            let list = |key: &str| -> BTreeSet<String> {
                let joined = text(key).unwrap_or_default();
                joined
                    .split(", ")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            let target = text("target").unwrap_or_default();
            let tool = text("tool_name");
            // A call named by its URL alone has its host as the target.
            let host = text("server_address").or_else(|| tool.is_none().then(|| target.clone()));
            ShadowTarget {
                tool,
                host,
                mcp: row.get("mcp").and_then(Value::as_bool).unwrap_or(false),
                calls: row.get("calls").and_then(Value::as_u64).unwrap_or(0),
                agents: list("agent_names"),
                layers: list("layers"),
                first_seen: text("first_seen").unwrap_or_default(),
                last_seen: text("last_seen").unwrap_or_default(),
                target,
                url: None,
            }
        })
        .collect()
}

/// The rows of [`REGISTERED`].
pub(super) fn registered_of(table: &Table) -> Vec<Registered> {
    let text = |row: &serde_json::Map<String, Value>, key: &str| {
        row.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
    };
    table
        .rows
        .iter()
        .map(|row| Registered {
            id: text(row, "id"),
            name: text(row, "name"),
        })
        .collect()
}
