//! `fleetpipe registry show`, `explain` and `suggest`: the registry as fleetpipe reads it, how
//! given attributes resolve, and the entries to add for what agents call unregistered, for
//! the people who maintain `CONFIG.yaml`.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::components::Config;
use crate::enrich::{Enrich, EnrichConfig};
use crate::otlp::{Payload, Request, Signal};
use crate::pipeline::Processor;
use crate::registry::catalog::{Catalog, CatalogIndex};
use crate::registry::matcher::ObservedCall;
use crate::registry::shadow::ShadowReport;
use crate::registry::suggest::{self, Registered};
use crate::registry::{Registry, RegistryConfig, RegistryHandle, layer};
use crate::telemetry::metrics::Metrics;

/// Where the registry and the enrich settings come from: `--registry` wins over the config.
pub(super) struct Source {
    pub config: Option<PathBuf>,
    pub registry: Option<PathBuf>,
}

impl Source {
    fn resolve(&self) -> anyhow::Result<(RegistryConfig, EnrichConfig)> {
        let config = match &self.config {
            Some(path) => Some(Config::load(Some(path))?),
            None => None,
        };
        let enrich = config
            .as_ref()
            .and_then(|c| c.processor_of::<EnrichConfig>().cloned())
            .unwrap_or_default();
        let registry = match (&self.registry, config.and_then(|c| c.registry)) {
            (Some(path), from_config) => RegistryConfig {
                optional: false,
                path: path.clone(),
                ..from_config.unwrap_or_else(|| RegistryConfig::at(path))
            },
            (None, Some(from_config)) => from_config,
            (None, None) => bail!("no registry: pass --registry PATH, or --config with a `registry:` section"),
        };
        Ok((registry, enrich))
    }
}

/// Prints the registry as a table.
pub(super) fn show(source: &Source) -> anyhow::Result<()> {
    let (config, _) = source.resolve()?;
    let registry = Registry::load_config(&config)?;
    print!("{}", table(&registry));
    Ok(())
}

fn table(registry: &Registry) -> String {
    let mut rows = vec![
        ["ID", "NAME", "CATEGORY/KIND", "CONNECTION", "LAYERS", "MATCH"]
            .map(String::from)
            .to_vec(),
    ];
    for (index, integration) in registry.integrations.iter().enumerate() {
        let rules = &integration.match_rules;
        let mut matching = Vec::new();
        for (label, values) in [
            ("tools", &rules.tools),
            ("tool_prefixes", &rules.tool_prefixes),
            ("hosts", &rules.hosts),
            ("url_prefixes", &rules.url_prefixes),
            ("services", &rules.services),
        ] {
            if !values.is_empty() {
                matching.push(format!("{label}={}", values.join(",")));
            }
        }
        let products: Vec<&str> = registry.matcher.catalog().products_of(index).collect();
        if matching.is_empty() && !products.is_empty() {
            matching.push(format!("catalog: {}", products.join(", ")));
        }
        if matching.is_empty() {
            matching.push(format!("by name: {:?} or {:?}", integration.id, integration.name));
        }
        let layers = integration
            .layers
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join(",");
        rows.push(vec![
            integration.id.clone(),
            integration.name.clone(),
            format!("{}/{}", integration.category, integration.kind),
            integration.connection.as_str().to_owned(),
            if layers.is_empty() { "-".into() } else { layers },
            matching.join("; "),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let _ = writeln!(
        out,
        "\n{} integrations, version {} ({})",
        registry.integrations.len(),
        registry.version,
        registry.path.display()
    );
    out
}

/// Explains which integration and layer attributes resolve to. `pairs` are `key=value`;
/// without them an OTLP/JSON span, or a whole traces request, is read from stdin.
pub(super) fn explain(source: &Source, pairs: &[String]) -> anyhow::Result<()> {
    let (config, enrich_config) = source.resolve()?;
    let metrics = Arc::new(Metrics::new());
    let handle = RegistryHandle::load(&config, &metrics)?;
    let payload = if pairs.is_empty() {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input).context("reading stdin")?;
        span_from_json(&input)?
    } else {
        span_from_pairs(pairs)?
    };
    let registry = handle.current();
    let mut request = Request::from_payload(&payload);
    let enrich = Enrich::new(Arc::clone(&handle), enrich_config.clone(), metrics);
    request.rewrite(&mut *enrich.visitor())?;
    print!(
        "{}",
        explanation(&registry, &enrich_config, &payload, &request.decode()?)
    );
    Ok(())
}

/// Attributes given as `key=value` become one CLIENT span; the resource keys
/// (`service.name`, `gen_ai.agent.name`, the layer attribute) go on its resource.
fn span_from_pairs(pairs: &[String]) -> anyhow::Result<Payload> {
    let mut resource = Vec::new();
    let mut span = Vec::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("`{pair}` is not key=value")
        };
        let kv = KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.to_owned())),
            }),
            ..Default::default()
        };
        match key {
            "service.name" | "gen_ai.agent.name" | "operating_model.layer" => resource.push(kv),
            _ => span.push(kv),
        }
    }
    let json = serde_json::json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [{
        "traceId": "00000000000000000000000000000001", "spanId": "0000000000000001", "name": "explain", "kind": 3
    }]}]}]});
    let mut payload = Payload::decode_json(Signal::Traces, json.to_string().as_bytes())?;
    if let Payload::Traces(request) = &mut payload {
        let rs = &mut request.resource_spans[0];
        rs.resource.get_or_insert_with(Default::default).attributes = resource;
        rs.scope_spans[0].spans[0].attributes = span;
    }
    Ok(payload)
}

fn span_from_json(input: &str) -> anyhow::Result<Payload> {
    let value: serde_json::Value = serde_json::from_str(input).context("stdin is not JSON")?;
    let request = if value.get("resourceSpans").is_some() || value.get("resource_spans").is_some() {
        value
    } else {
        serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [value]}]}]})
    };
    Ok(Payload::decode_json(Signal::Traces, request.to_string().as_bytes())?)
}

fn explanation(registry: &Registry, config: &EnrichConfig, before: &Payload, after: &Payload) -> String {
    let (Payload::Traces(before), Payload::Traces(after)) = (before, after) else {
        return String::new();
    };
    let mut out = String::new();
    for (rs_before, rs_after) in before.resource_spans.iter().zip(&after.resource_spans) {
        let resource = rs_before
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let text = |key: &str| resource.iter().find(|kv| kv.key == key).and_then(string_value);
        let names = ["service.name", "gen_ai.agent.name"].into_iter().filter_map(text);
        let (layer, how) = layer::resolve(text(&config.layer_attribute), names, &registry.agent_layers);
        let how = match how {
            layer::LayerSource::Runtime => format!("the resource's own {}", config.layer_attribute),
            layer::LayerSource::Mapping { glob, agent } => format!("agents glob {glob:?} matched {agent:?}"),
            layer::LayerSource::Unknown => "no layer attribute and no agents glob matched".into(),
        };
        let _ = writeln!(out, "layer: {} ({how})", layer.map_or("unknown", |l| l.as_str()));
        let spans_before = rs_before.scope_spans.iter().flat_map(|ss| &ss.spans);
        let spans_after = rs_after.scope_spans.iter().flat_map(|ss| &ss.spans);
        for (span, tagged) in spans_before.zip(spans_after) {
            let _ = writeln!(out, "span {:?}:", span.name);
            let mut call = ObservedCall::default();
            for kv in &tagged.attributes {
                call.observe(kv.key.as_bytes(), || string_value(kv).map(str::as_bytes));
            }
            let facts = call.facts();
            match registry.matcher.attribute(&facts) {
                Some(a) => {
                    let i = &registry.integrations[a.integration];
                    let _ = writeln!(
                        out,
                        "  integration: {} ({}), {}/{}, connection {}",
                        i.id,
                        i.name,
                        i.category,
                        i.kind,
                        i.connection.as_str()
                    );
                    let _ = writeln!(out, "  rule: {}", a.rule);
                }
                None => {
                    let _ = writeln!(out, "  integration: none registered");
                }
            }
            for kv in tagged.attributes.iter().skip(span.attributes.len()) {
                let _ = writeln!(out, "  + {} = {}", kv.key, show_value(kv.value.as_ref()));
            }
        }
    }
    out
}

fn string_value(kv: &KeyValue) -> Option<&str> {
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn show_value(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Prints the registry entries to add for the shadow targets of a running fleetpipe at
/// `endpoint`, or of `archive`. A registry given by `--config` or `--registry` is what the
/// targets are compared with (and its catalog settings are used); without one, what the
/// instance or the archive says is registered.
pub(super) fn suggest(source: &Source, endpoint: &str, archive: Option<&Path>) -> anyhow::Result<()> {
    let local = match (&source.config, &source.registry) {
        (None, None) => None,
        _ => Some(source.resolve()?.0),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (mut targets, mut registered) = match archive {
        Some(archive) => runtime.block_on(crate::report::shadow_targets(archive))?,
        None => {
            let report = runtime.block_on(shadow_of(endpoint))?;
            (report.targets, report.registered)
        }
    };
    let catalog = match &local {
        Some(config) => {
            let registry = Registry::load_config(config)?;
            targets.retain(|target| registry.matcher.attribute(&target.facts()).is_none());
            registered = registry.integrations.iter().map(Registered::of).collect();
            config.catalog.catalog()
        }
        None => Catalog::builtin(),
    };
    if targets.is_empty() {
        println!("# No shadow integrations: every call seen matches a registered integration.");
        return Ok(());
    }
    let suggestions = suggest::suggest(&targets, &registered, &CatalogIndex::new(&catalog, &[]));
    print!("{}", suggest::snippet(&suggestions));
    Ok(())
}

/// The `/registry/shadow` answer of the fleetpipe whose metrics endpoint is `endpoint`.
async fn shadow_of(endpoint: &str) -> anyhow::Result<ShadowReport> {
    crate::export::install_crypto_provider();
    let base = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    };
    let url = format!("{}/registry/shadow", base.trim_end_matches('/'));
    let response = reqwest::get(&url).await.with_context(|| {
        format!("cannot reach fleetpipe at {url}; is it running, and is this its metrics endpoint?")
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        bail!("{url} answered 404: that fleetpipe runs no enrich processor, so it has no registry to compare with");
    }
    if !status.is_success() {
        bail!("{url} answered {status}");
    }
    response
        .json()
        .await
        .with_context(|| format!("{url} did not answer with shadow targets"))
}

/// Loads the registry of a configuration the way `run` does, for `validate`.
pub(super) fn check(config: &Config) -> anyhow::Result<Option<Registry>> {
    Ok(match &config.registry {
        Some(registry) => Some(Registry::load_config(registry)?),
        None => None,
    })
}
