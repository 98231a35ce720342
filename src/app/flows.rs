//! Each exporter's data flow, as `run` builds it and `validate` checks and explains it: the
//! registry entry it delivers to, the compiled policy (one per distinct policy, shared by the
//! exporters that have it), and the table of what each gets.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::bail;

use super::components::Config;
use crate::config::component_type;
use crate::govern::{EntryProblem, Flow, FlowSignal, signals_allowed};
use crate::registry::Registry;

/// The signals each exporter may get by its registry entry (`None`: all), by exporter name.
pub(super) type Allowed = BTreeMap<String, Option<Vec<FlowSignal>>>;

/// The signals each exporter's registry entry allows (`None`: all, or no registry), with the
/// warnings about exporters let through by `governance.allow_unregistered_exporters`.
/// Refuses, naming each key, exporters whose entry does not do.
pub(super) fn entries(config: &Config, registry: Option<&Registry>) -> anyhow::Result<(Allowed, Vec<String>)> {
    let mut allowed = BTreeMap::new();
    let (mut refused, mut warnings) = (Vec::new(), Vec::new());
    for (name, exporter) in &config.exporters {
        let flow = config.flows.get(name).cloned().unwrap_or_default();
        let Some(registry) = registry else {
            allowed.insert(name.clone(), None);
            continue;
        };
        match signals_allowed(&flow, exporter.leaves_the_host(), &registry.integrations) {
            Ok(signals) => {
                allowed.insert(name.clone(), signals);
            }
            Err(EntryProblem::Unregistered(message)) if config.governance.allow_unregistered_exporters => {
                warnings.push(format!("exporters.{name}: {message}"));
                allowed.insert(name.clone(), None);
            }
            Err(EntryProblem::Unregistered(message)) => refused.push(format!("exporters.{name}: {message}")),
            Err(EntryProblem::Refused(message)) => refused.push(format!("exporters.{name}.integration: {message}")),
        }
    }
    if !refused.is_empty() {
        bail!("{}", refused.join("\n"));
    }
    Ok((allowed, warnings))
}

/// The compiled policy of every exporter that governs anything, one `Flow` per distinct
/// policy.
pub(super) fn build(config: &Config, allowed: &Allowed) -> anyhow::Result<BTreeMap<String, Arc<Flow>>> {
    let mut by_policy: BTreeMap<String, Arc<Flow>> = BTreeMap::new();
    let mut flows = BTreeMap::new();
    for name in config.exporters.keys() {
        let kind = component_type(name);
        let settings = config.flows.get(name).cloned().unwrap_or_default();
        let tags = config.tag_names_for(name).map_err(anyhow::Error::msg)?;
        let signals = allowed.get(name).cloned().flatten();
        let flow = Flow::new(&settings, kind, &tags, signals);
        if flow.is_open() {
            continue;
        }
        // Two exporters share a policy when everything it is built from is the same.
        let default_content = matches!(kind, "otlp" | "otlp_http");
        let fingerprint = format!("{settings:?}{default_content}{tags:?}{:?}", allowed.get(name));
        let flow = by_policy.entry(fingerprint).or_insert_with(|| Arc::new(flow));
        flows.insert(name.clone(), Arc::clone(flow));
    }
    Ok(flows)
}

/// What each exporter gets, a line each: the start-up log and `validate --explain`.
pub(super) fn explain(
    config: &Config,
    allowed: &BTreeMap<String, Option<Vec<FlowSignal>>>,
) -> anyhow::Result<Vec<String>> {
    let flows = build(config, allowed)?;
    Ok(config
        .exporters
        .keys()
        .map(|name| {
            let what = flows
                .get(name)
                .map_or_else(|| "everything, unchanged".to_owned(), |flow| flow.describe());
            format!("exporters.{name}: {what}")
        })
        .collect())
}
