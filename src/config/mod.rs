//! Reading fleetpipe's YAML configuration: the embedded defaults, `${env:…}` substitution, the
//! `service` section, and problems reported with their key path and line.
//!
//! The file has the OpenTelemetry Collector's shape: `receivers`, `processors` and `exporters`
//! keyed by `type[/name]`, wired together under `service.pipelines`. This module reads the
//! file into a [`Document`] whose components are still YAML; each component type parses and
//! checks its own settings, wired in one table (`app/components.rs`). It imports no component.

pub mod client_tls;
mod env;
pub(crate) mod locate;
mod service;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

pub use service::{HealthConfig, LogFormat, LogsConfig, MetricsConfig, PipelineConfig, ServiceConfig, TelemetryConfig};

/// The configuration used when no `--config` is given; `fleetpipe config default` prints it.
pub const DEFAULT_CONFIG: &str = include_str!("default.yaml");

/// The names of a pipeline's signals: the type part of a pipeline key.
pub const SIGNAL_NAMES: [&str; 3] = ["traces", "metrics", "logs"];

/// A configuration file's sections, its components' settings still YAML.
#[derive(Debug, Default)]
pub struct Document {
    pub receivers: Vec<(String, Value)>,
    pub processors: Vec<(String, Value)>,
    pub exporters: Vec<(String, Value)>,
    pub registry: Option<Value>,
    /// Rules over every exporter's data flow.
    pub governance: Option<Value>,
    /// `fleetpipe report`'s settings (the price table's overrides).
    pub report: Option<Value>,
    /// Read by [`parse_service`] after the components, so that problems are listed in the
    /// order of the sections.
    pub service: Value,
}

/// The `service` section, its defaults when absent; `None` when it is wrong (recorded).
pub fn parse_service(value: Value, issues: &mut Issues<'_>) -> Option<ServiceConfig> {
    match value {
        Value::Null => Some(ServiceConfig::default()),
        value => issues.section::<ServiceConfig>(&["service"], value),
    }
}

/// A setting that cannot work, at its key below a component (`""` for the component itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted, e.g. `compression_params.level`.
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: &str, message: impl Into<String>) -> Problem {
        Problem {
            key: key.to_owned(),
            message: message.into(),
        }
    }
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
        ConfigIssue {
            line: locate::line_of(text, path),
            ..ConfigIssue::unlocated(path, message)
        }
    }

    /// An issue at `path` without its line: looking a line up reads the file, so past
    /// [`LOCATED_ISSUES`] issues lines are left out and a file with very many problems is still
    /// checked in linear time.
    pub fn unlocated(path: &[&str], message: &str) -> ConfigIssue {
        ConfigIssue {
            path: shown_path(path),
            line: None,
            message: message.to_owned(),
        }
    }
}

/// Issues of one file whose lines are looked up; the rest are listed without.
pub const LOCATED_ISSUES: usize = 100;

/// A key path as issues show it: `a.b[2].c`.
pub fn shown_path(path: &[&str]) -> String {
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
    shown
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

/// Largest configuration file read: far above any real one, and a bound on what a wrong path
/// (`/dev/zero`, a log file) can make fleetpipe read.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads a text file of at most `max` bytes; a larger one (or an endless one) is an error
/// saying so, after reading `max` bytes and one more.
pub fn read_capped(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB; is this the right file?",
            max >> 20
        )));
    }
    Ok(text)
}

/// Reads a configuration file; `None` reads the embedded defaults. Returns the text and the
/// name that errors give it.
pub fn read(path: Option<&Path>) -> Result<(String, String), ConfigError> {
    match path {
        Some(path) => {
            let text = read_capped(path, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            Ok((text, path.display().to_string()))
        }
        None => Ok((DEFAULT_CONFIG.to_owned(), "built-in default config".to_owned())),
    }
}

/// Checks the `service` section against the components written in the file: pipelines name
/// a signal and defined components.
pub fn check_pipelines(service: &ServiceConfig, issues: &mut Issues<'_>) {
    for (name, pipeline) in &service.pipelines {
        let base = ["service", "pipelines", name.as_str()];
        if !SIGNAL_NAMES.contains(&component_type(name)) {
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
    if service.pipelines.is_empty() {
        issues.push(&["service", "pipelines"], "at least one pipeline is needed");
    }
    if service.memory_limit_mib.is_some_and(|mib| mib < MIN_MEMORY_LIMIT_MIB) {
        issues.push(
            &["service", "memory_limit_mib"],
            &format!("must be at least {MIN_MEMORY_LIMIT_MIB} (MiB): fleetpipe itself takes about 30"),
        );
    }
}

/// The smallest `service.memory_limit_mib` fleetpipe can work in.
const MIN_MEMORY_LIMIT_MIB: usize = 64;

/// The type part of a `type/name` component key.
pub fn component_type(key: &str) -> &str {
    key.split_once('/').map_or(key, |(kind, _)| kind)
}

/// Problems found so far, located in the source text.
pub struct Issues<'a> {
    text: &'a str,
    found: Vec<ConfigIssue>,
    /// `(section, key)` of every component written in the file, valid or not, so that a
    /// broken component is reported once rather than again at each pipeline naming it.
    declared: BTreeSet<(String, String)>,
}

impl<'a> Issues<'a> {
    pub fn new(text: &'a str) -> Issues<'a> {
        Issues {
            text,
            found: Vec::new(),
            declared: BTreeSet::new(),
        }
    }

    /// The problems found, as the error naming `source_name`; `None` when there are none.
    pub fn into_error(self, source_name: &str) -> Option<ConfigError> {
        (!self.found.is_empty()).then(|| ConfigError::Invalid {
            source_name: source_name.to_owned(),
            issues: self.found,
        })
    }

    fn check_refs(&mut self, base: &[&str], section: &str, names: &[String]) {
        for name in names {
            if !self.declared.contains(&(section.to_owned(), name.clone())) {
                let message = format!("`{name}` is not defined under `{section}:`");
                self.push(&[base, &[section]].concat(), &message);
            }
        }
    }

    /// Records a problem at `path`.
    pub fn push(&mut self, path: &[&str], message: &str) {
        let issue = if self.found.len() < LOCATED_ISSUES {
            ConfigIssue::at(self.text, path, message)
        } else {
            ConfigIssue::unlocated(path, message)
        };
        self.found.push(issue);
    }

    /// Records a component's problems under its path `base`.
    pub fn push_problems(&mut self, base: &[&str], problems: Vec<Problem>) {
        for problem in problems {
            let mut path = base.to_vec();
            path.extend(problem.key.split('.').filter(|k| !k.is_empty()));
            self.push(&path, &problem.message);
        }
    }

    /// Deserialises one section, recording a failure at the key it happened at.
    pub fn section<T: DeserializeOwned>(&mut self, base: &[&str], value: Value) -> Option<T> {
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

    /// Records that a component has a type no row of the component table names.
    pub fn unknown_type(&mut self, path: &[&str], kind: &str, known: &[&str]) {
        let message = format!(
            "unknown {} type `{kind}` (known: {})",
            path[0].trim_end_matches('s'),
            known.join(", ")
        );
        self.push(path, &message);
    }
}

/// Reads YAML text into its sections, `${env:…}` substituted; `lookup` resolves variables.
/// `None` when the text is no mapping of sections (recorded in `issues`).
pub fn parse_document(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    issues: &mut Issues<'_>,
) -> Option<Document> {
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
    let receivers = components(issues, "receivers", take("receivers"));
    let processors = components(issues, "processors", take("processors"));
    let exporters = components(issues, "exporters", take("exporters"));
    let registry = match take("registry") {
        Value::Null => None,
        value => Some(value),
    };
    let report = match take("report") {
        Value::Null => None,
        value => Some(value),
    };
    let governance = match take("governance") {
        Value::Null => None,
        value => Some(value),
    };
    let service = take("service");
    for (key, _) in sections {
        let key = key.as_str().unwrap_or("?").to_owned();
        issues.push(
            &[key.as_str()],
            "unknown section (expected receivers, processors, exporters, registry, governance, report, service)",
        );
    }
    Some(Document {
        receivers,
        processors,
        exporters,
        registry,
        governance,
        report,
        service,
    })
}

/// The `type[/name]: settings` entries of a component section, an empty mapping for a
/// component written without settings.
fn components(issues: &mut Issues<'_>, section: &str, value: Value) -> Vec<(String, Value)> {
    let entries = match value {
        Value::Null => return Vec::new(),
        Value::Mapping(entries) => entries,
        _ => {
            issues.push(&[section], "must be a mapping of `type[/name]: settings`");
            return Vec::new();
        }
    };
    let mut parsed = Vec::new();
    for (key, settings) in entries {
        let key = key.as_str().unwrap_or("?").to_owned();
        issues.declared.insert((section.to_owned(), key.clone()));
        let settings = match settings {
            Value::Null => Value::Mapping(Default::default()),
            other => other,
        };
        parsed.push((key, settings));
    }
    parsed
}
