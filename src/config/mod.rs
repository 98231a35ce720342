//! fleetpipe's YAML configuration: the types, the embedded defaults, `${env:…}` substitution and
//! validation that reports every problem with its key path and line.
//!
//! The file has the OpenTelemetry Collector's shape: `receivers`, `processors` and `exporters`
//! keyed by `type[/name]`, wired together under `service.pipelines`.

mod env;
pub(crate) mod locate;
mod service;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

pub use service::{HealthConfig, LogFormat, LogsConfig, MetricsConfig, PipelineConfig, ServiceConfig, TelemetryConfig};

use crate::analytics::AnalyticsConfig;
use crate::enrich::EnrichConfig;
use crate::export::config::{DebugExporterConfig, FileExporterConfig, OtlpExporterConfig};
use crate::pipeline::Signal;
use crate::pipeline::batch::BatchConfig;
use crate::receiver::config::OtlpReceiverConfig;
use crate::registry::RegistryConfig;

/// The configuration used when no `--config` is given; `fleetpipe config default` prints it.
pub const DEFAULT_CONFIG: &str = include_str!("default.yaml");

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub receivers: BTreeMap<String, ReceiverConfig>,
    pub processors: BTreeMap<String, ProcessorConfig>,
    pub exporters: BTreeMap<String, ExporterConfig>,
    /// The operating model's integration registry, used by the `enrich` processor.
    pub registry: Option<RegistryConfig>,
    pub service: ServiceConfig,
}

/// A receiver, by the type part of its key.
#[derive(Debug, Clone)]
pub enum ReceiverConfig {
    Otlp(OtlpReceiverConfig),
}

/// A processor, by the type part of its key.
#[derive(Debug, Clone)]
pub enum ProcessorConfig {
    Batch(BatchConfig),
    Enrich(EnrichConfig),
}

/// An exporter, by the type part of its key.
#[derive(Debug, Clone)]
pub enum ExporterConfig {
    Otlp(OtlpExporterConfig),
    OtlpHttp(OtlpExporterConfig),
    Debug(DebugExporterConfig),
    File(FileExporterConfig),
    Analytics(AnalyticsConfig),
}

/// One problem in a configuration file: always the user's to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path, e.g. `exporters.otlp/vendor.endpoint`.
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigIssue {
    /// An issue at `path` in `text`, its line looked up; numeric segments are list indexes and
    /// are shown as `[n]`.
    pub fn at(text: &str, path: &[&str], message: &str) -> ConfigIssue {
        let mut shown = String::new();
        for segment in path {
            if segment.parse::<usize>().is_ok() {
                shown.push_str(&format!("[{segment}]"));
            } else {
                if !shown.is_empty() {
                    shown.push('.');
                }
                shown.push_str(segment);
            }
        }
        ConfigIssue {
            path: shown,
            line: locate::line_of(text, path),
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line}): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (the user's path or permissions).
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is readable but wrong; every problem found is listed.
    #[error("{source_name} has {} problem(s):\n{}", issues.len(), list(issues))]
    Invalid {
        source_name: String,
        issues: Vec<ConfigIssue>,
    },
}

fn list(issues: &[ConfigIssue]) -> String {
    issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n")
}

impl Config {
    /// Reads and validates a file; `None` reads the embedded defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Config::parse(&text, &path.display().to_string(), &|n| std::env::var(n).ok())
            }
            None => Config::parse(DEFAULT_CONFIG, "built-in default config", &|n| std::env::var(n).ok()),
        }
    }

    /// Parses and validates YAML text; `source_name` names it in errors and `lookup` resolves
    /// `${env:NAME}`.
    pub fn parse(
        text: &str,
        source_name: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut issues = Issues {
            text,
            found: Vec::new(),
            declared: BTreeSet::new(),
        };
        let config = parse_value(text, lookup, &mut issues);
        if let Some(config) = &config {
            config.validate(&mut issues);
        }
        match config {
            Some(config) if issues.found.is_empty() => Ok(config),
            _ => Err(ConfigError::Invalid {
                source_name: source_name.to_owned(),
                issues: issues.found,
            }),
        }
    }

    /// Cross-section checks: pipelines name defined components of the right kind.
    fn validate(&self, issues: &mut Issues<'_>) {
        for (name, pipeline) in &self.service.pipelines {
            let base = ["service", "pipelines", name.as_str()];
            if Signal::from_name(component_type(name)).is_none() {
                issues.push(&base, "pipeline names must start with traces, metrics or logs");
            }
            for (section, names) in [
                ("receivers", &pipeline.receivers),
                ("processors", &pipeline.processors),
                ("exporters", &pipeline.exporters),
            ] {
                issues.check_refs(&base, section, names);
            }
            if pipeline.receivers.is_empty() {
                issues.push(
                    &[&base[..], &["receivers"]].concat(),
                    "a pipeline needs at least one receiver",
                );
            }
            if pipeline.exporters.is_empty() {
                issues.push(
                    &[&base[..], &["exporters"]].concat(),
                    "a pipeline needs at least one exporter",
                );
            }
        }
        if self.service.pipelines.is_empty() {
            issues.push(&["service", "pipelines"], "at least one pipeline is needed");
        }
        let enrich_needs_registry = self.registry.is_none()
            && self
                .processors
                .values()
                .any(|p| matches!(p, ProcessorConfig::Enrich(_)));
        if enrich_needs_registry {
            let name = self
                .processors
                .iter()
                .find(|(_, p)| matches!(p, ProcessorConfig::Enrich(_)))
                .map(|(n, _)| n.as_str())
                .unwrap_or("enrich");
            issues.push(
                &["processors", name],
                "the enrich processor needs a `registry:` section with the path of CONFIG.yaml",
            );
        }
        for (name, exporter) in &self.exporters {
            exporter.validate(&["exporters", name.as_str()], issues);
        }
    }
}

impl ExporterConfig {
    fn validate(&self, base: &[&str], issues: &mut Issues<'_>) {
        let otlp = match self {
            ExporterConfig::Otlp(c) => {
                for (key, set) in [
                    ("traces_endpoint", c.traces_endpoint.is_some()),
                    ("metrics_endpoint", c.metrics_endpoint.is_some()),
                    ("logs_endpoint", c.logs_endpoint.is_some()),
                ] {
                    if set {
                        issues.push(
                            &[base, &[key]].concat(),
                            "only `otlp_http` exporters take per-signal endpoints",
                        );
                    }
                }
                c
            }
            ExporterConfig::OtlpHttp(c) => c,
            ExporterConfig::Analytics(c) => {
                for (key, why) in c.problems() {
                    issues.push(&[base, &[key]].concat(), why);
                }
                return;
            }
            ExporterConfig::Debug(_) | ExporterConfig::File(_) => return,
        };
        if !matches!(otlp.endpoint.scheme(), "http" | "https") {
            issues.push(&[base, &["endpoint"]].concat(), "not an http:// or https:// URL");
        }
        if let Some(level) = otlp.compression_params.level
            && !otlp.compression.levels().contains(&level)
        {
            let levels = otlp.compression.levels();
            issues.push(
                &[base, &["compression_params", "level"]].concat(),
                &format!(
                    "{level} is not a level of {} compression ({}..={})",
                    otlp.compression.encoding().header_value().unwrap_or("no"),
                    levels.start(),
                    levels.end()
                ),
            );
        }
        let queue = &otlp.sending_queue;
        if queue.queue_size == 0 || queue.num_consumers == 0 || queue.max_megabytes == 0 {
            issues.push(
                &[base, &["sending_queue"]].concat(),
                "queue_size, num_consumers and max_megabytes must be at least 1",
            );
        }
        let retry = &otlp.retry_on_failure;
        if !(0.0..=1.0).contains(&retry.randomization_factor) || retry.multiplier < 1.0 {
            issues.push(
                &[base, &["retry_on_failure"]].concat(),
                "randomization_factor must be within 0..=1 and multiplier at least 1",
            );
        }
    }
}

/// The type part of a `type/name` component key.
pub fn component_type(key: &str) -> &str {
    key.split_once('/').map_or(key, |(kind, _)| kind)
}

/// Problems found so far, located in the source text.
struct Issues<'a> {
    text: &'a str,
    found: Vec<ConfigIssue>,
    /// `(section, key)` of every component written in the file, valid or not, so that a
    /// broken component is reported once rather than again at each pipeline naming it.
    declared: BTreeSet<(String, String)>,
}

impl Issues<'_> {
    fn check_refs(&mut self, base: &[&str], section: &str, names: &[String]) {
        for name in names {
            if !self.declared.contains(&(section.to_owned(), name.clone())) {
                let message = format!("`{name}` is not defined under `{section}:`");
                self.push(&[base, &[section]].concat(), &message);
            }
        }
    }

    fn push(&mut self, path: &[&str], message: &str) {
        self.found.push(ConfigIssue::at(self.text, path, message));
    }

    /// Deserialises one section, recording a failure at the key it happened at.
    fn section<T: DeserializeOwned>(&mut self, base: &[&str], value: Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                let inner = error.path().to_string();
                let message = error.inner().to_string();
                let mut path: Vec<&str> = base.to_vec();
                path.extend(inner.split('.').filter(|s| !s.is_empty() && *s != "?"));
                self.push(&path, &message);
                None
            }
        }
    }
}

fn parse_value(text: &str, lookup: &dyn Fn(&str) -> Option<String>, issues: &mut Issues<'_>) -> Option<Config> {
    let mut root: Value = match serde_yaml::from_str(text) {
        Ok(Value::Null) => Value::Mapping(Default::default()),
        Ok(value) => value,
        Err(error) => {
            issues.found.push(ConfigIssue {
                path: "(document)".into(),
                line: error.location().map(|l| l.line()),
                message: error.to_string(),
            });
            return None;
        }
    };
    let mut env_problems = Vec::new();
    env::substitute(&mut root, &mut Vec::new(), lookup, &mut env_problems);
    for (path, message) in env_problems {
        issues.push(&path.iter().map(String::as_str).collect::<Vec<_>>(), &message);
    }
    let Value::Mapping(mut sections) = root else {
        issues.push(&["(document)"], "the configuration must be a mapping of sections");
        return None;
    };
    let mut take = |key: &str| sections.remove(key).unwrap_or(Value::Null);
    let receivers = components(issues, "receivers", take("receivers"), parse_receiver);
    let processors = components(issues, "processors", take("processors"), parse_processor);
    let exporters = components(issues, "exporters", take("exporters"), parse_exporter);
    let registry = match take("registry") {
        Value::Null => None,
        value => issues.section::<RegistryConfig>(&["registry"], value),
    };
    let service = match take("service") {
        Value::Null => Some(ServiceConfig::default()),
        value => issues.section::<ServiceConfig>(&["service"], value),
    };
    for (key, _) in sections {
        let key = key.as_str().unwrap_or("?").to_owned();
        issues.push(
            &[key.as_str()],
            "unknown section (expected receivers, processors, exporters, registry, service)",
        );
    }
    Some(Config {
        receivers,
        processors,
        exporters,
        registry,
        service: service?,
    })
}

type ComponentParser<T> = fn(&mut Issues<'_>, &[&str], Value) -> Option<T>;

fn components<T>(
    issues: &mut Issues<'_>,
    section: &str,
    value: Value,
    parse: ComponentParser<T>,
) -> BTreeMap<String, T> {
    let mut parsed = BTreeMap::new();
    let entries = match value {
        Value::Null => return parsed,
        Value::Mapping(entries) => entries,
        _ => {
            issues.push(&[section], "must be a mapping of `type[/name]: settings`");
            return parsed;
        }
    };
    for (key, settings) in entries {
        let key = key.as_str().unwrap_or("?").to_owned();
        issues.declared.insert((section.to_owned(), key.clone()));
        let settings = match settings {
            Value::Null => Value::Mapping(Default::default()),
            other => other,
        };
        if let Some(component) = parse(issues, &[section, key.as_str()], settings) {
            parsed.insert(key, component);
        }
    }
    parsed
}

fn parse_receiver(issues: &mut Issues<'_>, path: &[&str], value: Value) -> Option<ReceiverConfig> {
    match component_type(path[1]) {
        "otlp" => issues.section(path, value).map(ReceiverConfig::Otlp),
        other => unknown_type(issues, path, other, "otlp"),
    }
}

fn parse_processor(issues: &mut Issues<'_>, path: &[&str], value: Value) -> Option<ProcessorConfig> {
    match component_type(path[1]) {
        "batch" => issues.section(path, value).map(ProcessorConfig::Batch),
        "enrich" => issues.section(path, value).map(ProcessorConfig::Enrich),
        other => unknown_type(issues, path, other, "batch, enrich"),
    }
}

fn parse_exporter(issues: &mut Issues<'_>, path: &[&str], value: Value) -> Option<ExporterConfig> {
    match component_type(path[1]) {
        "otlp" => issues.section(path, value).map(ExporterConfig::Otlp),
        "otlp_http" => issues.section(path, value).map(ExporterConfig::OtlpHttp),
        "debug" => issues.section(path, value).map(ExporterConfig::Debug),
        "file" => issues.section(path, value).map(ExporterConfig::File),
        "analytics" => issues.section(path, value).map(ExporterConfig::Analytics),
        other => unknown_type(issues, path, other, "otlp, otlp_http, debug, file, analytics"),
    }
}

fn unknown_type<T>(issues: &mut Issues<'_>, path: &[&str], kind: &str, known: &str) -> Option<T> {
    issues.push(
        path,
        &format!(
            "unknown {} type `{kind}` (known: {known})",
            path[0].trim_end_matches('s')
        ),
    );
    None
}

#[cfg(test)]
mod tests;
