//! The `enrich` processor: tags every span, metric data point and log record that touches an
//! integration with the registry's metadata, marks outbound calls to unregistered tools as
//! shadow integrations, and writes the agent's operating-model layer on the resource.
//!
//! It runs inline on the receiving task (see [`crate::pipeline::Processor`]): no I/O, no
//! awaiting, one registry snapshot per request.

pub mod genai;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde::Deserialize;

use crate::pipeline::{Payload, Processor};
use crate::registry::matcher::CallFacts;
use crate::registry::{Registry, RegistryHandle, layer};
use crate::telemetry::metrics::Metrics;

/// Settings of the `enrich` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichConfig {
    /// Prefix of the tags written on records: `<prefix>id`, `<prefix>name`, `<prefix>category`,
    /// `<prefix>kind`, `<prefix>connection`, `<prefix>registered`, `<prefix>target`.
    pub tag_prefix: String,
    /// Resource attribute that carries the agent's layer.
    pub layer_attribute: String,
    /// Replace attributes that already exist under the tag names (default: keep them).
    pub overwrite: bool,
    /// Map deprecated GenAI names and OpenInference/OpenLLMetry spellings to current ones.
    pub normalize_genai: bool,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            tag_prefix: "integration.".into(),
            layer_attribute: "operating_model.layer".into(),
            overwrite: false,
            normalize_genai: true,
        }
    }
}

/// The record tag names, built once from the configured prefix.
struct TagKeys {
    id: String,
    name: String,
    category: String,
    kind: String,
    connection: String,
    registered: String,
    target: String,
}

impl TagKeys {
    fn new(prefix: &str) -> TagKeys {
        let key = |name: &str| format!("{prefix}{name}");
        TagKeys {
            id: key("id"),
            name: key("name"),
            category: key("category"),
            kind: key("kind"),
            connection: key("connection"),
            registered: key("registered"),
            target: key("target"),
        }
    }
}

/// Most distinct shadow targets counted by name; further ones are counted as `other` so a
/// hostile sender cannot grow the metrics without bound.
const MAX_SHADOW_TARGETS: usize = 1000;

pub struct Enrich {
    registry: Arc<RegistryHandle>,
    config: EnrichConfig,
    keys: TagKeys,
    metrics: Arc<Metrics>,
    shadow_targets: Mutex<HashSet<String>>,
}

impl Enrich {
    pub fn new(registry: Arc<RegistryHandle>, config: EnrichConfig, metrics: Arc<Metrics>) -> Enrich {
        Enrich {
            keys: TagKeys::new(&config.tag_prefix),
            registry,
            config,
            metrics,
            shadow_targets: Mutex::default(),
        }
    }
}

impl Processor for Enrich {
    fn process(&self, payload: &mut Payload) {
        let registry = self.registry.current();
        let tagger = Tagger {
            enrich: self,
            registry: &registry,
        };
        match payload {
            Payload::Traces(request) => {
                for rs in &mut request.resource_spans {
                    tagger.resource(&mut rs.resource);
                    for span in rs.scope_spans.iter_mut().flat_map(|ss| &mut ss.spans) {
                        let outbound = span.kind == SpanKind::Client as i32;
                        tagger.record(&mut span.attributes, Some(outbound));
                    }
                }
            }
            Payload::Metrics(request) => {
                for rm in &mut request.resource_metrics {
                    tagger.resource(&mut rm.resource);
                    for metric in rm.scope_metrics.iter_mut().flat_map(|sm| &mut sm.metrics) {
                        for attributes in data_point_attributes(metric.data.as_mut()) {
                            tagger.record(attributes, None);
                        }
                    }
                }
            }
            Payload::Logs(request) => {
                for rl in &mut request.resource_logs {
                    tagger.resource(&mut rl.resource);
                    for record in rl.scope_logs.iter_mut().flat_map(|sl| &mut sl.log_records) {
                        tagger.record(&mut record.attributes, None);
                    }
                }
            }
        }
    }
}

fn data_point_attributes(data: Option<&mut Data>) -> Vec<&mut Vec<KeyValue>> {
    match data {
        Some(Data::Gauge(g)) => g.data_points.iter_mut().map(|p| &mut p.attributes).collect(),
        Some(Data::Sum(s)) => s.data_points.iter_mut().map(|p| &mut p.attributes).collect(),
        Some(Data::Histogram(h)) => h.data_points.iter_mut().map(|p| &mut p.attributes).collect(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.iter_mut().map(|p| &mut p.attributes).collect(),
        Some(Data::Summary(s)) => s.data_points.iter_mut().map(|p| &mut p.attributes).collect(),
        None => Vec::new(),
    }
}

/// One request's view: the processor and the registry snapshot it tags with.
struct Tagger<'a> {
    enrich: &'a Enrich,
    registry: &'a Registry,
}

impl Tagger<'_> {
    fn resource(&self, resource: &mut Option<Resource>) {
        let attributes = &mut resource.get_or_insert_with(Resource::default).attributes;
        let key = &self.enrich.config.layer_attribute;
        let claimed = string_value(attributes, key);
        let names = ["service.name", "gen_ai.agent.name"]
            .into_iter()
            .filter_map(|k| string_value(attributes, k));
        let (layer, _) = layer::resolve(claimed, names, &self.registry.agent_layers);
        let layer = layer.map_or("unknown", |l| l.as_str());
        set(
            attributes,
            key,
            Value::StringValue(layer.to_owned()),
            self.enrich.config.overwrite && claimed.is_some_and(|c| c != layer),
        );
    }

    /// Tags one record. `outbound` is `Some(is_client_span)` for spans; metric points and log
    /// records are tagged when they name an integration but never reported as shadow.
    fn record(&self, attributes: &mut Vec<KeyValue>, outbound: Option<bool>) {
        if self.enrich.config.normalize_genai {
            genai::normalize(attributes);
        }
        let facts = call_facts(attributes);
        let keys = &self.enrich.keys;
        let overwrite = self.enrich.config.overwrite;
        let tag = |attributes: &mut Vec<KeyValue>, key: &str, value: Value| set(attributes, key, value, overwrite);
        if let Some(attribution) = self.registry.matcher.attribute(&facts) {
            let integration = &self.registry.integrations[attribution.integration];
            attributes.reserve(6);
            tag(attributes, &keys.id, Value::StringValue(integration.id.clone()));
            tag(attributes, &keys.name, Value::StringValue(integration.name.clone()));
            tag(
                attributes,
                &keys.category,
                Value::StringValue(integration.category.clone()),
            );
            tag(attributes, &keys.kind, Value::StringValue(integration.kind.clone()));
            let connection = integration.connection.as_str().to_owned();
            tag(attributes, &keys.connection, Value::StringValue(connection));
            tag(attributes, &keys.registered, Value::BoolValue(true));
            return;
        }
        let Some(is_client) = outbound else { return };
        let remote = facts.server_address.is_some() || facts.url.is_some() || facts.services[0].is_some();
        let is_shadow = !facts.is_inference() && (facts.is_tool_call() || (is_client && remote));
        if let (true, Some(target)) = (is_shadow, facts.target()) {
            let target = target.to_owned();
            tag(attributes, &keys.registered, Value::BoolValue(false));
            tag(attributes, &keys.target, Value::StringValue(target.clone()));
            self.enrich.count_shadow(target);
        }
    }
}

impl Enrich {
    fn count_shadow(&self, target: String) {
        let label = {
            let mut seen = self.shadow_targets.lock().unwrap_or_else(|e| e.into_inner());
            if seen.contains(&target) {
                target
            } else if seen.len() < MAX_SHADOW_TARGETS {
                tracing::warn!(target = %target, "Shadow integration: an agent called a tool or host that the registry does not list.");
                seen.insert(target.clone());
                target
            } else {
                "other".to_owned()
            }
        };
        self.metrics
            .shadow_calls
            .get_or_create(&vec![("target".to_owned(), label)])
            .inc();
    }
}

/// Reads the attributes that can name an integration.
pub fn call_facts(attributes: &[KeyValue]) -> CallFacts<'_> {
    let mut facts = CallFacts::default();
    for kv in attributes {
        let Some(Value::StringValue(value)) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else {
            continue;
        };
        let value = Some(value.as_str());
        match kv.key.as_str() {
            "gen_ai.tool.name" => facts.tool = value,
            "mcp.method.name" => facts.mcp_method = value,
            "server.address" => facts.server_address = value,
            "url.full" => facts.url = value,
            "peer.service" => facts.services[0] = value,
            "rpc.service" => facts.services[1] = value,
            "messaging.destination.name" => facts.services[2] = value,
            "db.system.name" => facts.services[3] = value,
            "gen_ai.operation.name" => facts.operation = value,
            "gen_ai.provider.name" => facts.provider = value,
            _ => {}
        }
    }
    facts
}

fn string_value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?
    {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// Adds `key`, or replaces it when `replace` is set; an existing attribute otherwise stays.
fn set(attributes: &mut Vec<KeyValue>, key: &str, value: Value, replace: bool) {
    let value = Some(AnyValue { value: Some(value) });
    match attributes.iter_mut().find(|kv| kv.key == key) {
        Some(existing) if replace => existing.value = value,
        Some(_) => {}
        None => attributes.push(KeyValue {
            key: key.to_owned(),
            value,
            ..Default::default()
        }),
    }
}
