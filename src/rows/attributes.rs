//! A record's attributes as analytics reads them: the lifted keys by slot (the registry tags
//! under their configured names, the GenAI and MCP keys), the others for the `attributes` map,
//! the emitter of a resource, and values as text or integers.

use datafusion::arrow::array::{Int64Builder, StringBuilder};
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use super::builders::*;
use crate::otlp::fields;
use crate::otlp::semconv::{Key, Tag, TagNames};
use crate::otlp::wire::codec::{AnyValueRef, Attribute, Field as WireField, Malformed, fields};

/// The attributes lifted into typed columns, each a slot of [`RecordAttributes`]: the
/// registry tags every record table has, then the GenAI/MCP columns of `spans`. The rest go to
/// `attributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lifted {
    IntegrationId,
    IntegrationName,
    IntegrationCategory,
    IntegrationKind,
    IntegrationConnection,
    IntegrationRegistered,
    IntegrationTarget,
    Operation,
    ToolName,
    Model,
    Provider,
    McpMethod,
    ServerAddress,
    ErrorType,
    InputTokens,
    OutputTokens,
    HttpStatusCode,
    GrpcStatusCode,
    ResponseModel,
    CacheReadTokens,
    CacheWriteTokens,
    ReasoningTokens,
    ConversationId,
    AgentId,
    AgentName,
    AgentVersion,
}

/// The slots every record table lifts (the registry tags), and those `spans` lifts.
pub(super) const CONTEXT_SLOTS: usize = Lifted::Operation as usize;
pub(super) const LIFTED_SLOTS: usize = Lifted::AgentVersion as usize + 1;

/// GenAI spellings other than the current conventions that a record's keys show, as bits.
pub(super) const DEPRECATED: u8 = 1;
pub(super) const OPENINFERENCE: u8 = 2;
pub(super) const OPENLLMETRY: u8 = 4;

/// The spelling `key` belongs to, as a bit; 0 for the current conventions and other keys.
fn spelling_of(key: Key) -> u8 {
    match key {
        Key::GenAiSystem
        | Key::GenAiUsagePromptTokens
        | Key::GenAiUsageCompletionTokens
        | Key::GenAiUsageCacheCreationInputTokens => DEPRECATED,
        Key::OpenInferenceSpanKind
        | Key::LlmTokenCountPrompt
        | Key::LlmTokenCountCompletion
        | Key::LlmModelName
        | Key::LlmProvider
        | Key::LlmSystem
        | Key::LlmTokenCountPromptCacheRead
        | Key::LlmTokenCountPromptCacheWrite
        | Key::LlmTokenCountCompletionReasoning => OPENINFERENCE,
        Key::TraceloopSpanKind
        | Key::TraceloopEntityName
        | Key::LlmUsagePromptTokens
        | Key::LlmUsageCompletionTokens
        | Key::OpenLlmetryCacheReadInputTokens
        | Key::OpenLlmetryCacheCreationInputTokens => OPENLLMETRY,
        _ => 0,
    }
}

/// The slot of a lifted attribute key; the registry tags, named as configured, are found by
/// [`TagNames::tag`].
#[inline]
fn lifted_slot(key: Key) -> Option<usize> {
    let lifted = match key {
        Key::GenAiOperationName => Lifted::Operation,
        Key::GenAiToolName => Lifted::ToolName,
        Key::GenAiRequestModel => Lifted::Model,
        Key::GenAiProviderName => Lifted::Provider,
        Key::McpMethodName => Lifted::McpMethod,
        Key::ServerAddress => Lifted::ServerAddress,
        Key::ErrorType => Lifted::ErrorType,
        Key::GenAiUsageInputTokens => Lifted::InputTokens,
        Key::GenAiUsageOutputTokens => Lifted::OutputTokens,
        Key::HttpResponseStatusCode => Lifted::HttpStatusCode,
        Key::RpcGrpcStatusCode => Lifted::GrpcStatusCode,
        Key::GenAiResponseModel => Lifted::ResponseModel,
        Key::GenAiUsageCacheReadInputTokens => Lifted::CacheReadTokens,
        Key::GenAiUsageCacheWriteInputTokens => Lifted::CacheWriteTokens,
        Key::GenAiUsageReasoningOutputTokens => Lifted::ReasoningTokens,
        Key::GenAiConversationId => Lifted::ConversationId,
        Key::GenAiAgentId => Lifted::AgentId,
        Key::GenAiAgentName => Lifted::AgentName,
        Key::GenAiAgentVersion => Lifted::AgentVersion,
        _ => return None,
    };
    Some(lifted as usize)
}

/// The slot of a registry tag.
pub(super) fn tag_slot(tag: Tag) -> usize {
    let lifted = match tag {
        Tag::Id => Lifted::IntegrationId,
        Tag::Name => Lifted::IntegrationName,
        Tag::Category => Lifted::IntegrationCategory,
        Tag::Kind => Lifted::IntegrationKind,
        Tag::Connection => Lifted::IntegrationConnection,
        Tag::Registered => Lifted::IntegrationRegistered,
        Tag::Target => Lifted::IntegrationTarget,
    };
    lifted as usize
}

/// One record's attributes: the encoded `AnyValue` of each lifted key, and the others when
/// the `attributes` column is built.
pub(super) struct RecordAttributes<'a> {
    pub(super) lifted: [Option<&'a [u8]>; LIFTED_SLOTS],
    pub(super) others: Vec<Attribute<'a>>,
    pub(super) keep_others: bool,
    pub(super) tags: &'a TagNames,
    /// The other GenAI spellings the record's keys show ([`DEPRECATED`], …).
    pub(super) spellings: u8,
}

impl<'a> RecordAttributes<'a> {
    pub(super) fn new(keep_others: bool, tags: &'a TagNames) -> RecordAttributes<'a> {
        RecordAttributes {
            lifted: [None; LIFTED_SLOTS],
            others: Vec::new(),
            keep_others,
            tags,
            spellings: 0,
        }
    }

    /// The encoded value of a lifted attribute, when the record has it.
    #[inline]
    pub(super) fn get(&self, lifted: Lifted) -> Option<&'a [u8]> {
        self.lifted[lifted as usize]
    }

    /// Starts the next record.
    pub(super) fn clear(&mut self) {
        self.lifted = [None; LIFTED_SLOTS];
        self.others.clear();
        self.spellings = 0;
    }

    /// Reads one attribute field. Only the first `slots` slots are lifted: tables without the
    /// GenAI/MCP columns keep those attributes in their map.
    #[inline(always)]
    pub(super) fn push(&mut self, field: &WireField<'a>, slots: usize) -> Result<(), Malformed> {
        let attribute = Attribute::parse(field)?;
        let key = Key::of(attribute.key);
        if let Some(key) = key {
            self.spellings |= spelling_of(key);
        }
        let slot = key
            .and_then(lifted_slot)
            .or_else(|| self.tags.tag(attribute.key).map(tag_slot));
        match slot.filter(|slot| *slot < slots) {
            Some(slot) => self.lifted[slot] = Some(attribute.value),
            None if self.keep_others => self.others.push(attribute),
            None => {}
        }
        Ok(())
    }
}

/// Who emitted a resource's records.
#[derive(Default)]
pub(super) struct Emitter<'a> {
    pub(super) service: Option<&'a str>,
    pub(super) agent: Option<&'a str>,
    pub(super) layer: Option<&'a str>,
}

impl<'a> Emitter<'a> {
    /// The emitter named by a resource's attributes; `layer` is the layer attribute's name.
    pub(super) fn of(resource: &'a [u8], layer: &[u8]) -> Result<Emitter<'a>, Malformed> {
        let mut emitter = Emitter {
            service: None,
            agent: None,
            layer: None,
        };
        for f in fields(resource) {
            let f = f?;
            if f.number != fields::resource::ATTRIBUTES {
                continue;
            }
            let attribute = Attribute::parse(&f)?;
            match attribute.key {
                b"service.name" => emitter.service = attribute.string(),
                b"gen_ai.agent.name" => emitter.agent = attribute.string(),
                key if key == layer => emitter.layer = attribute.string(),
                _ => {}
            }
        }
        emitter.agent = emitter.agent.or(emitter.service);
        Ok(emitter)
    }
}

/// An attribute value as an integer: ints, doubles truncated, numeric strings.
pub(super) fn integer(value: AnyValueRef<'_>) -> Option<i64> {
    match value {
        AnyValueRef::Int(i) => Some(i),
        AnyValueRef::Double(d) => Some(d as i64),
        AnyValueRef::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Appends an encoded `AnyValue` as text (null when absent), writing into the builder
/// rather than through a `String`.
pub(super) fn append_text(builder: &mut StringBuilder, any_value: Option<&[u8]>) {
    use std::fmt::Write;
    let Some(value) = any_value.and_then(AnyValueRef::read) else {
        builder.append_null();
        return;
    };
    // Writing into a string builder cannot fail. Strings, nearly every value, go in as they
    // are, not formatted first (`cargo bench --bench analytics decode_to_arrow_rows`).
    let _ = match value {
        AnyValueRef::String(s) => {
            builder.append_value(s);
            return;
        }
        AnyValueRef::Bool(b) => write!(builder, "{b}"),
        AnyValueRef::Int(i) => write!(builder, "{i}"),
        AnyValueRef::Double(d) => write!(builder, "{d}"),
        AnyValueRef::Bytes(b) => write_hex(builder, b),
        AnyValueRef::Nested(bytes) => {
            let decoded = AnyValue::decode(bytes).ok().and_then(|v| v.value);
            write!(builder, "{}", decoded.as_ref().map(text).unwrap_or_default())
        }
    };
    builder.append_value("");
}

pub(super) fn append_int(builder: &mut Int64Builder, any_value: Option<&[u8]>) {
    builder.append_option(any_value.and_then(AnyValueRef::read).and_then(integer));
}

/// Text of nested values (arrays, key-value lists), as `[a,b]` and `{k=v}`.
pub(super) fn text(value: &Value) -> String {
    match value {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        Value::BytesValue(b) => {
            let mut out = String::with_capacity(b.len() * 2);
            let _ = write_hex(&mut out, b);
            out
        }
        Value::ArrayValue(a) => {
            let items: Vec<String> = a.values.iter().filter_map(|v| v.value.as_ref()).map(text).collect();
            format!("[{}]", items.join(","))
        }
        Value::KvlistValue(l) => {
            let items: Vec<String> = l
                .values
                .iter()
                .map(|kv| {
                    let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
                    format!("{}={}", kv.key, value.map(text).unwrap_or_default())
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::StringValueStrindex(i) => i.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: each lifted key finds its own slot, and a key one byte off, wherever that
    /// byte is, finds none.
    #[test]
    fn lifted_keys_find_their_slots() {
        const LIFTED_KEYS: [&[u8]; LIFTED_SLOTS] = [
            b"integration.id",
            b"integration.name",
            b"integration.category",
            b"integration.kind",
            b"integration.connection",
            b"integration.registered",
            b"integration.target",
            b"gen_ai.operation.name",
            b"gen_ai.tool.name",
            b"gen_ai.request.model",
            b"gen_ai.provider.name",
            b"mcp.method.name",
            b"server.address",
            b"error.type",
            b"gen_ai.usage.input_tokens",
            b"gen_ai.usage.output_tokens",
            b"http.response.status_code",
            b"rpc.grpc.status_code",
            b"gen_ai.response.model",
            b"gen_ai.usage.cache_read.input_tokens",
            b"gen_ai.usage.cache_write.input_tokens",
            b"gen_ai.usage.reasoning.output_tokens",
            b"gen_ai.conversation.id",
            b"gen_ai.agent.id",
            b"gen_ai.agent.name",
            b"gen_ai.agent.version",
        ];
        let tags = TagNames::default();
        let lifted_slot = |key: &[u8]| {
            Key::of(key)
                .and_then(lifted_slot)
                .or_else(|| tags.tag(key).map(tag_slot))
        };
        for (slot, key) in LIFTED_KEYS.iter().enumerate() {
            assert_eq!(lifted_slot(key), Some(slot), "{}", String::from_utf8_lossy(key));
            for at in 0..key.len() {
                let mut near = key.to_vec();
                near[at] ^= 0x20;
                assert_eq!(lifted_slot(&near), None, "{}", String::from_utf8_lossy(&near));
            }
        }
        for other in [
            &b""[..],
            b"e",
            b"service.name",
            b"gen_ai.agent.description",
            b"integration.idd",
        ] {
            assert_eq!(
                Key::of(other).and_then(super::lifted_slot),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
