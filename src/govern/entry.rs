//! The registry entry an exporter delivers to: a vendor connection is governed like any other
//! integration, so with a registry an OTLP exporter names its `observability` entry, whose
//! `governance.data_flows` bound the signals it gets.

use crate::registry::model::Integration;

use super::settings::{FlowSettings, FlowSignal};

/// The category a destination of telemetry is registered under.
pub const OBSERVABILITY: &str = "observability";

/// Why an exporter's entry does not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryProblem {
    /// Always refused.
    Refused(String),
    /// Refused unless `governance.allow_unregistered_exporters`, then a warning.
    Unregistered(String),
}

/// The signals the entry an exporter names allows (`None`: all), or why it does not do: an
/// exporter that `leaves_the_host` must name one. `integrations` is the registry's.
pub fn signals_allowed(
    settings: &FlowSettings,
    leaves_the_host: bool,
    integrations: &[Integration],
) -> Result<Option<Vec<FlowSignal>>, EntryProblem> {
    let registered = || {
        let ids: Vec<&str> = integrations
            .iter()
            .filter(|i| i.category == OBSERVABILITY)
            .map(|i| i.id.as_str())
            .collect();
        if ids.is_empty() {
            "none".to_owned()
        } else {
            ids.join(", ")
        }
    };
    let Some(id) = &settings.integration else {
        return if leaves_the_host {
            Err(EntryProblem::Unregistered(format!(
                "a vendor connection is an integration: name its registry entry (registered `{OBSERVABILITY}` integrations: {}), or set `governance.allow_unregistered_exporters: true`",
                registered()
            )))
        } else {
            Ok(None)
        };
    };
    let Some(entry) = integrations.iter().find(|i| &i.id == id) else {
        return Err(EntryProblem::Refused(format!(
            "`{id}` is not a registered integration (registered `{OBSERVABILITY}` integrations: {})",
            registered()
        )));
    };
    if entry.category != OBSERVABILITY {
        return Err(EntryProblem::Refused(format!(
            "`{id}` is registered under `{}`, not `{OBSERVABILITY}`: telemetry goes only to an observability integration",
            entry.category
        )));
    }
    let flows = entry
        .governance
        .as_ref()
        .map(|g| &g.data_flows)
        .filter(|f| !f.is_empty());
    Ok(flows.map(|flows| {
        let mut signals: Vec<FlowSignal> = flows
            .iter()
            .filter_map(|flow| match flow.to_ascii_lowercase().as_str() {
                "traces" => Some(FlowSignal::Traces),
                "metrics" => Some(FlowSignal::Metrics),
                "logs" => Some(FlowSignal::Logs),
                _ => None,
            })
            .collect();
        // Findings are log records.
        if signals.contains(&FlowSignal::Logs) {
            signals.push(FlowSignal::Findings);
        }
        signals
    }))
}
