//! The `enrich` processor: tags every span, metric data point and log record that touches an
//! integration with the registry's metadata, marks outbound calls to unregistered tools as
//! shadow integrations, and writes the agent's operating-model layer on the resource.
//!
//! It runs inline on the receiving task (see [`crate::pipeline::Processor`]): no I/O, no
//! awaiting, one registry snapshot per request. It works on the request's protobuf bytes
//! ([`crate::otlp::wire`]): tags are appended to the records that get them, and records
//! without tags are copied as they are.

pub mod genai;

use std::any::Any;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;

use crate::otlp::semconv::{Key, Tag, TagNames};
use crate::otlp::wire::codec::put_attribute;
use crate::otlp::wire::{Attribute, Edit, NewValue, Record, RecordKind, SPAN_KIND_CLIENT, Visitor};
use crate::pipeline::Processor;
use crate::pipeline::component::{ProcessorContext, ProcessorSettings, Settings, Step};
use crate::registry::matcher::{MatchMemo, ObservedCall};
use crate::registry::shadow::{Seen, ShadowCall};
use crate::registry::{Integration, Registry, RegistryHandle, layer};
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

impl EnrichConfig {
    /// The names of the tags it writes.
    pub fn tag_names(&self) -> TagNames {
        TagNames {
            prefix: self.tag_prefix.clone(),
            layer: self.layer_attribute.clone(),
        }
    }
}

impl Settings for EnrichConfig {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ProcessorSettings for EnrichConfig {
    fn needs_registry(&self) -> bool {
        true
    }

    fn tag_names(&self) -> Option<TagNames> {
        Some(EnrichConfig::tag_names(self))
    }

    fn build(&self, context: &ProcessorContext<'_>) -> Option<Step> {
        let registry = Arc::clone(context.registry?);
        let enrich = Enrich::new(registry, self.clone(), Arc::clone(context.metrics));
        Some(Step::Inline(Arc::new(enrich)))
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
    /// The tags of a record attributed to `integration`.
    fn attribution<'r>(&'r self, integration: &'r Integration) -> [(&'r str, NewValue<'r>); 6] {
        [
            (&self.id, NewValue::String(&integration.id)),
            (&self.name, NewValue::String(&integration.name)),
            (&self.category, NewValue::String(&integration.category)),
            (&self.kind, NewValue::String(&integration.kind)),
            (&self.connection, NewValue::String(integration.connection.as_str())),
            (&self.registered, NewValue::Bool(true)),
        ]
    }

    fn new(names: &TagNames) -> TagKeys {
        TagKeys {
            id: names.name(Tag::Id),
            name: names.name(Tag::Name),
            category: names.name(Tag::Category),
            kind: names.name(Tag::Kind),
            connection: names.name(Tag::Connection),
            registered: names.name(Tag::Registered),
            target: names.name(Tag::Target),
        }
    }
}

pub struct Enrich {
    registry: Arc<RegistryHandle>,
    config: EnrichConfig,
    names: TagNames,
    keys: TagKeys,
    metrics: Arc<Metrics>,
}

impl Enrich {
    pub fn new(registry: Arc<RegistryHandle>, config: EnrichConfig, metrics: Arc<Metrics>) -> Enrich {
        Enrich {
            keys: TagKeys::new(&config.tag_names()),
            names: config.tag_names(),
            registry,
            config,
            metrics,
        }
    }
}

impl Processor for Enrich {
    fn visitor(&self) -> Box<dyn Visitor + '_> {
        Box::new(Tagger {
            enrich: self,
            registry: self.registry.current(),
            encoded: Vec::new(),
            memo: MatchMemo::default(),
            agent: String::new(),
            layer: "unknown",
        })
    }
}

/// One request's view: the processor and the registry snapshot it tags with, so a reload
/// never tags one request with two registries.
struct Tagger<'a> {
    enrich: &'a Enrich,
    registry: Arc<Registry>,
    encoded: Vec<EncodedAttribution>,
    memo: MatchMemo,
    /// The agent (`service.name`, else `gen_ai.agent.name`) and layer of the resource whose
    /// records are being tagged, for the shadow ledger.
    agent: String,
    layer: &'static str,
}

impl Visitor for Tagger<'_> {
    fn resource(&mut self, attributes: &[Attribute<'_>], edit: &mut Edit<'_>) {
        let key = self.enrich.config.layer_attribute.as_str();
        let claimed = find(attributes, key).and_then(Attribute::string);
        let names = ["service.name", "gen_ai.agent.name"]
            .into_iter()
            .filter_map(|k| find(attributes, k)?.string());
        self.agent.clear();
        self.agent.push_str(names.clone().next().unwrap_or_default());
        let (layer, _) = layer::resolve(claimed, names, &self.registry.agent_layers);
        let layer = layer.map_or("unknown", |l| l.as_str());
        self.layer = layer;
        let overwrite = self.enrich.config.overwrite && claimed.is_some_and(|c| c != layer);
        set(attributes, edit, key, NewValue::String(layer), overwrite);
    }

    /// Tags one record. Spans are reported as shadow integrations when they call out to
    /// something unregistered; metric points and log records are tagged when they name an
    /// integration but never reported as shadow.
    fn record(&mut self, record: &Record<'_, '_>, edit: &mut Edit<'_>) {
        let attributes = record.attributes;
        let config = &self.enrich.config;
        let mut call = ObservedCall::default();
        // Records rarely carry tag names or other GenAI spellings; when none does, tags need
        // no lookups and there are no names to map.
        let mut has_tag_keys = false;
        let mut has_other_spellings = false;
        for attribute in attributes {
            if let Some(key) = Key::of(attribute.key)
                && !call.observe_key(key, || attribute.string_bytes())
            {
                has_other_spellings |= config.normalize_genai && genai::is_other(key);
            }
            has_tag_keys |= self.enrich.names.has_prefix(attribute.key);
        }
        if has_other_spellings {
            for (key, value) in genai::current_names(attributes) {
                call.observe(key.as_bytes(), || value.string().map(str::as_bytes));
                edit.add(key, value);
            }
        }
        let keys = &self.enrich.keys;
        if let Some(integration) = self.registry.matcher.integration_of(&call, &mut self.memo) {
            if has_tag_keys {
                for (key, value) in keys.attribution(&self.registry.integrations[integration]) {
                    set(attributes, edit, key, value, config.overwrite);
                }
            } else {
                self.add_attribution(integration, edit);
            }
            return;
        }
        if record.kind != RecordKind::Span {
            return;
        }
        let is_client = record.span_kind == SPAN_KIND_CLIENT;
        let is_shadow = !call.is_inference() && (call.is_tool_call() || (is_client && call.names_remote()));
        let facts = call.facts();
        if is_shadow && let Some(target) = facts.target() {
            let mut tag = |key: &str, value| set(attributes, edit, key, value, config.overwrite);
            tag(&keys.registered, NewValue::Bool(false));
            tag(&keys.target, NewValue::String(target));
            self.enrich.count_shadow(&ShadowCall {
                target,
                facts,
                mcp: call.is_mcp(),
                agent: Some(self.agent.as_str()).filter(|a| !a.is_empty()),
                layer: self.layer,
            });
        }
    }
}

/// Most attribution tag sets a request keeps encoded; a request naming more integrations
/// encodes the rest on each record.
const MAX_ENCODED_ATTRIBUTIONS: usize = 16;

/// Room for one integration's encoded tags with the default prefix and registry-length names,
/// so that encoding them does not grow the buffer tag by tag.
const ENCODED_ATTRIBUTION_CAPACITY: usize = 256;

/// The attribution tags of one integration, encoded as the attributes of one kind of record.
struct EncodedAttribution {
    integration: usize,
    field: u32,
    attributes: Vec<u8>,
}

impl Tagger<'_> {
    /// Adds the attribution tags of `integration` to a record that has none of them, encoding
    /// them once per request: the records of a request mostly name a few integrations.
    fn add_attribution(&mut self, integration: usize, edit: &mut Edit<'_>) {
        let field = edit.attributes_field();
        if let Some(encoded) = self
            .encoded
            .iter()
            .find(|e| e.integration == integration && e.field == field)
        {
            edit.add_encoded(&encoded.attributes);
            return;
        }
        let mut attributes = Vec::with_capacity(ENCODED_ATTRIBUTION_CAPACITY);
        for (key, value) in self.enrich.keys.attribution(&self.registry.integrations[integration]) {
            put_attribute(&mut attributes, field, key, value);
        }
        edit.add_encoded(&attributes);
        if self.encoded.len() < MAX_ENCODED_ATTRIBUTIONS {
            self.encoded.push(EncodedAttribution {
                integration,
                field,
                attributes,
            });
        }
    }
}

impl Enrich {
    fn count_shadow(&self, call: &ShadowCall<'_>) {
        let target = call.target;
        let label = match self.registry.shadow.record(call, SystemTime::now()) {
            Seen::Again => target.to_owned(),
            Seen::New => {
                tracing::warn!(target = %target, "Shadow integration: an agent called a tool or host that the registry does not list.");
                target.to_owned()
            }
            Seen::Overflow => "other".to_owned(),
        };
        self.metrics
            .shadow_calls
            .get_or_create(&vec![("target".to_owned(), label)])
            .inc();
    }
}

fn find<'r, 'a>(attributes: &'r [Attribute<'a>], key: &str) -> Option<&'r Attribute<'a>> {
    attributes.iter().find(|a| a.has_key(key))
}

/// Adds `key`, or replaces it when `replace` is set; an existing attribute otherwise stays.
fn set(attributes: &[Attribute<'_>], edit: &mut Edit<'_>, key: &str, value: NewValue<'_>, replace: bool) {
    match find(attributes, key) {
        Some(existing) if replace => {
            edit.drop(existing);
            edit.add(key, value);
        }
        Some(_) => {}
        None => edit.add(key, value),
    }
}
