//! The component table: every receiver, processor and exporter type fleetpipe has, one row
//! each, and the typed configuration built from it. A type's settings, checks and start live
//! with the type (see [`crate::pipeline::component`]); adding a type is its folder and a row.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::analytics::AnalyticsConfig;
use crate::archive::ArchiveConfig;
use crate::config::{self, ConfigError, Issues, ServiceConfig, component_type};
use crate::enrich::EnrichConfig;
use crate::export::config::{DebugExporterConfig, FileExporterConfig, OtlpGrpcExporterConfig, OtlpHttpExporterConfig};
use crate::export::kafka::KafkaExporterConfig;
use crate::govern::{self, FlowSettings, GovernanceConfig};
use crate::otlp::semconv::TagNames;
use crate::pipeline::batch::BatchConfig;
use crate::pipeline::component::{ExporterSettings, ProcessorSettings, ReceiverSettings};
use crate::receiver::config::OtlpReceiverConfig;
use crate::receiver::kafka::KafkaReceiverConfig;
use crate::registry::RegistryConfig;
use crate::report::ReportConfig;
use crate::route::LoadBalancingConfig;

/// Parses one component's settings, recording what is wrong at its key path.
type Parse<T> = fn(&mut Issues<'_>, &[&str], Value) -> Option<Box<T>>;

/// Receiver types by the type part of their key.
const RECEIVERS: &[(&str, Parse<dyn ReceiverSettings>)] = &[
    ("otlp", receiver::<OtlpReceiverConfig>),
    ("kafka", receiver::<KafkaReceiverConfig>),
];

/// Processor types.
const PROCESSORS: &[(&str, Parse<dyn ProcessorSettings>)] = &[
    ("batch", processor::<BatchConfig>),
    ("enrich", processor::<EnrichConfig>),
];

/// Exporter types: destinations and the other consumers of a pipeline's batches.
const EXPORTERS: &[(&str, Parse<dyn ExporterSettings>)] = &[
    ("otlp", exporter::<OtlpGrpcExporterConfig>),
    ("otlp_http", exporter::<OtlpHttpExporterConfig>),
    ("debug", exporter::<DebugExporterConfig>),
    ("file", exporter::<FileExporterConfig>),
    ("analytics", exporter::<AnalyticsConfig>),
    ("archive", exporter::<ArchiveConfig>),
    ("loadbalancing", exporter::<LoadBalancingConfig>),
    ("kafka", exporter::<KafkaExporterConfig>),
];

fn receiver<T: ReceiverSettings + DeserializeOwned + 'static>(
    issues: &mut Issues<'_>,
    path: &[&str],
    value: Value,
) -> Option<Box<dyn ReceiverSettings>> {
    issues.section::<T>(path, value).map(|c| Box::new(c) as _)
}

fn processor<T: ProcessorSettings + DeserializeOwned + 'static>(
    issues: &mut Issues<'_>,
    path: &[&str],
    value: Value,
) -> Option<Box<dyn ProcessorSettings>> {
    issues.section::<T>(path, value).map(|c| Box::new(c) as _)
}

fn exporter<T: ExporterSettings + DeserializeOwned + 'static>(
    issues: &mut Issues<'_>,
    path: &[&str],
    value: Value,
) -> Option<Box<dyn ExporterSettings>> {
    issues.section::<T>(path, value).map(|c| Box::new(c) as _)
}

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    pub receivers: BTreeMap<String, Box<dyn ReceiverSettings>>,
    pub processors: BTreeMap<String, Box<dyn ProcessorSettings>>,
    pub exporters: BTreeMap<String, Box<dyn ExporterSettings>>,
    /// The operating model's integration registry, used by the `enrich` processor.
    pub registry: Option<RegistryConfig>,
    /// `fleetpipe report`'s settings.
    pub report: ReportConfig,
    pub service: ServiceConfig,
    /// Each exporter's data flow (`data_flow`, `redaction`, `integration`), by exporter name.
    pub flows: BTreeMap<String, FlowSettings>,
    pub governance: GovernanceConfig,
}

impl Config {
    /// Reads and validates a file; `None` reads the embedded defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (text, source_name) = config::read(path)?;
        Config::parse(&text, &source_name, &|n| std::env::var(n).ok())
    }

    /// Only the `report` section of a file (the built-in defaults' when `None`): a report
    /// needs no more, and may run where the rest (registry, endpoints) would not.
    pub fn load_report_section(path: Option<&Path>) -> Result<ReportConfig, ConfigError> {
        let (text, source_name) = config::read(path)?;
        let mut issues = Issues::new(&text);
        let lookup = |n: &str| std::env::var(n).ok();
        let report = config::parse_document(&text, &lookup, &mut issues).and_then(|document| match document.report {
            Some(value) => issues.section::<ReportConfig>(&["report"], value),
            None => Some(ReportConfig::default()),
        });
        if let Some(report) = &report {
            issues.push_problems(&["report"], report.problems());
        }
        match (report, issues.into_error(&source_name)) {
            (Some(report), None) => Ok(report),
            (_, Some(error)) => Err(error),
            (None, None) => Err(ConfigError::Invalid {
                source_name,
                issues: Vec::new(),
            }),
        }
    }

    /// Parses and validates YAML text; `source_name` names it in errors and `lookup` resolves
    /// `${env:NAME}`.
    pub fn parse(
        text: &str,
        source_name: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut issues = Issues::new(text);
        let config = config::parse_document(text, lookup, &mut issues).and_then(|document| {
            let receivers = typed(&mut issues, "receivers", document.receivers, RECEIVERS);
            let processors = typed(&mut issues, "processors", document.processors, PROCESSORS);
            let (exporter_sections, flows) = split_flows(&mut issues, document.exporters);
            let exporters = typed(&mut issues, "exporters", exporter_sections, EXPORTERS);
            let governance = match document.governance {
                Some(value) => issues.section::<GovernanceConfig>(&["governance"], value)?,
                None => GovernanceConfig::default(),
            };
            let registry = document
                .registry
                .and_then(|value| issues.section::<RegistryConfig>(&["registry"], value));
            let report = match document.report {
                Some(value) => issues.section::<ReportConfig>(&["report"], value)?,
                None => ReportConfig::default(),
            };
            Some(Config {
                receivers,
                processors,
                exporters,
                registry,
                report,
                service: config::parse_service(document.service, &mut issues)?,
                flows,
                governance,
            })
        });
        if let Some(config) = &config {
            config.validate(&mut issues);
        }
        match (config, issues.into_error(source_name)) {
            (Some(config), None) => Ok(config),
            (_, Some(error)) => Err(error),
            // A document that could not be read always records why.
            (None, None) => Err(ConfigError::Invalid {
                source_name: source_name.to_owned(),
                issues: Vec::new(),
            }),
        }
    }

    /// What works but exposes something, as `key: message` lines (see [`Settings::warnings`]).
    pub fn warnings(&self) -> Vec<String> {
        let receivers = self.receivers.iter().map(|(name, r)| ("receivers", name, r.warnings()));
        let exporters = self.exporters.iter().map(|(name, e)| ("exporters", name, e.warnings()));
        receivers
            .chain(exporters)
            .flat_map(|(section, name, warnings)| {
                warnings
                    .into_iter()
                    .map(move |warning| format!("{section}.{name}.{}: {}", warning.key, warning.message))
            })
            .collect()
    }

    /// Cross-section checks, then each component's own.
    fn validate(&self, issues: &mut Issues<'_>) {
        config::check_pipelines(&self.service, issues);
        for (name, pipeline) in &self.service.pipelines {
            self.check_batch_is_last(name, &pipeline.processors, issues);
        }
        for (name, processor) in &self.processors {
            let path = ["processors", name.as_str()];
            if processor.needs_registry() && self.registry.is_none() {
                issues.push(
                    &path,
                    "the enrich processor needs a `registry:` section with the path of CONFIG.yaml",
                );
            }
            issues.push_problems(&path, processor.problems());
        }
        for (name, receiver) in &self.receivers {
            issues.push_problems(&["receivers", name.as_str()], receiver.problems());
        }
        issues.push_problems(&["report"], self.report.problems());
        if let Some(registry) = &self.registry {
            let problems = registry.catalog.problems().into_iter();
            let problems = problems.map(|(key, message)| config::Problem { key, message });
            issues.push_problems(&["registry", "catalog"], problems.collect());
        }
        for (name, exporter) in &self.exporters {
            let path = ["exporters", name.as_str()];
            issues.push_problems(&path, exporter.problems());
            if let Some(flow) = self.flows.get(name) {
                issues.push_problems(&path, flow.problems());
                if flow.integration.is_some() && self.registry.is_none() {
                    issues.push(
                        &["exporters", name.as_str(), "integration"],
                        "names a registry entry, but there is no `registry:` section",
                    );
                }
            }
            if let Err(message) = self.tag_names_for(name) {
                issues.push(&path, &message);
            }
        }
    }

    /// The batch step runs after the inline processors whatever its place in the list, so a
    /// `batch` anywhere but last would not do what the list says.
    fn check_batch_is_last(&self, pipeline: &str, processors: &[String], issues: &mut Issues<'_>) {
        let is_batch = |name: &String| {
            self.processors
                .get(name)
                .is_some_and(|p| p.as_any().is::<BatchConfig>())
        };
        if let Some(at) = processors.iter().position(is_batch)
            && at + 1 < processors.len()
        {
            let index = at.to_string();
            issues.push(
                &["service", "pipelines", pipeline, "processors", index.as_str()],
                &format!(
                    "`{}` must be the last processor: batching happens after the others",
                    processors[at]
                ),
            );
        }
    }

    /// The names of the registry tags on what reaches `exporter`: those the processors of
    /// the pipelines feeding it write (the defaults when none does). An error when two
    /// pipelines feeding it write them under different names.
    pub fn tag_names_for(&self, exporter: &str) -> Result<TagNames, String> {
        let mut written: Option<TagNames> = None;
        let feeding = self
            .service
            .pipelines
            .values()
            .filter(|p| p.exporters.iter().any(|e| e == exporter));
        for processor in feeding.flat_map(|p| &p.processors) {
            let Some(names) = self.processors.get(processor).and_then(|p| p.tag_names()) else {
                continue;
            };
            match &written {
                Some(seen) if *seen != names => {
                    return Err(format!(
                        "the pipelines feeding it write registry tags under different names (`{}…` and `{}…`); \
                         give their enrich processors the same tag_prefix and layer_attribute",
                        seen.prefix, names.prefix
                    ));
                }
                _ => written = Some(names),
            }
        }
        Ok(written.unwrap_or_default())
    }

    /// The settings of the first processor of type `T`, if any.
    pub fn processor_of<T: 'static>(&self) -> Option<&T> {
        self.processors.values().find_map(|p| p.as_any().downcast_ref::<T>())
    }
}

/// Takes each exporter's governance keys out of its settings and reads them, recording what
/// is wrong at their key paths.
fn split_flows(
    issues: &mut Issues<'_>,
    exporters: Vec<(String, Value)>,
) -> (Vec<(String, Value)>, BTreeMap<String, FlowSettings>) {
    let mut flows = BTreeMap::new();
    let sections = exporters
        .into_iter()
        .map(|(key, mut settings)| {
            let governance = govern::settings::split(&mut settings);
            let flow = issues.section::<FlowSettings>(&["exporters", key.as_str()], governance);
            flows.insert(key.clone(), flow.unwrap_or_default());
            (key, settings)
        })
        .collect();
    (sections, flows)
}

/// Parses each component of a section by the row of its type.
fn typed<T: ?Sized>(
    issues: &mut Issues<'_>,
    section: &str,
    components: Vec<(String, Value)>,
    rows: &[(&str, Parse<T>)],
) -> BTreeMap<String, Box<T>> {
    let mut parsed = BTreeMap::new();
    for (key, settings) in components {
        let path = [section, key.as_str()];
        let kind = component_type(&key);
        match rows.iter().find(|(name, _)| *name == kind) {
            Some((_, parse)) => {
                if let Some(component) = parse(issues, &path, settings) {
                    parsed.insert(key, component);
                }
            }
            None => {
                let known: Vec<&str> = rows.iter().map(|(name, _)| *name).collect();
                issues.unknown_type(&path, kind, &known);
            }
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `value` as the settings of each row of `rows`; the messages of what is wrong.
    fn refusals<T: ?Sized>(section: &str, rows: &[(&str, Parse<T>)], value: &str) -> Vec<(String, String)> {
        rows.iter()
            .map(|(name, parse)| {
                let text = format!("{section}:\n  {name}: {value}\n");
                let mut issues = Issues::new(&text);
                let yaml: Value = serde_yaml::from_str(value).expect("yaml");
                let parsed = parse(&mut issues, &[section, name], yaml).is_some();
                let message = match issues.into_error("t") {
                    Some(ConfigError::Invalid { issues, .. }) => issues.iter().map(ToString::to_string).collect(),
                    _ => format!("accepted: {parsed}"),
                };
                (name.to_string(), message)
            })
            .collect()
    }

    /// Guarantees: every component type of the table refuses a key it does not know, at its
    /// path, so a misspelt setting is never silently a default.
    #[test]
    fn every_component_type_refuses_unknown_keys() {
        let value = "{no_such_key: 1}";
        let refused = [
            refusals("receivers", RECEIVERS, value),
            refusals("processors", PROCESSORS, value),
            refusals("exporters", EXPORTERS, value),
        ]
        .concat();
        assert_eq!(refused.len(), RECEIVERS.len() + PROCESSORS.len() + EXPORTERS.len());
        for (name, message) in refused {
            assert!(
                message.contains(&format!("{name}.no_such_key (line 2): unknown field `no_such_key`")),
                "{name}: {message}"
            );
        }
    }

    /// Guarantees: archive settings that cannot work are reported at their keys.
    #[test]
    fn archive_settings_out_of_range_are_located() {
        let config = ArchiveConfig {
            max_file_mib: 0,
            max_file_age: std::time::Duration::ZERO,
            queue_size: 0,
            ..ArchiveConfig::default()
        };
        let keys: Vec<String> = crate::pipeline::component::Settings::problems(&config)
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(keys, ["max_file_mib", "max_file_age", "queue_size"]);
    }
}
