//! GenAI attribute normalisation: deprecated semantic-convention names and the OpenInference
//! and OpenLLMetry spellings are mapped to the current OpenTelemetry GenAI names, so that
//! attribution and analytics work whichever SDK instrumented the agent.
//!
//! Non-destructive: the current name is added when missing, the original stays.

use crate::otlp::semconv::Key;
use crate::otlp::wire::{Attribute, NewValue};

/// What another spelling of a GenAI attribute stands for.
#[derive(Debug, Clone, Copy)]
enum Spelling {
    /// The current name, which takes the value as it is.
    Renamed(&'static str),
    /// OpenLLMetry's entity name: a tool name on tool spans only.
    EntityName,
    /// A span kind of OpenLLMetry or OpenInference, which gives the operation.
    SpanKind,
}

/// The spelling `key` is, if it is one [`current_names`] reads.
#[inline(always)]
fn spelling(key: Key) -> Option<Spelling> {
    use Spelling::{EntityName, Renamed, SpanKind};
    Some(match key {
        Key::GenAiSystem | Key::LlmProvider | Key::LlmSystem => Renamed("gen_ai.provider.name"),
        // OpenLLMetry before the GenAI conventions, and OpenInference.
        Key::GenAiUsagePromptTokens | Key::LlmUsagePromptTokens | Key::LlmTokenCountPrompt => {
            Renamed("gen_ai.usage.input_tokens")
        }
        Key::GenAiUsageCompletionTokens | Key::LlmUsageCompletionTokens | Key::LlmTokenCountCompletion => {
            Renamed("gen_ai.usage.output_tokens")
        }
        Key::GenAiUsageCacheCreationInputTokens
        | Key::OpenLlmetryCacheCreationInputTokens
        | Key::LlmTokenCountPromptCacheWrite => Renamed("gen_ai.usage.cache_write.input_tokens"),
        Key::OpenLlmetryCacheReadInputTokens | Key::LlmTokenCountPromptCacheRead => {
            Renamed("gen_ai.usage.cache_read.input_tokens")
        }
        Key::LlmTokenCountCompletionReasoning => Renamed("gen_ai.usage.reasoning.output_tokens"),
        Key::ToolName => Renamed("gen_ai.tool.name"),
        Key::LlmModelName => Renamed("gen_ai.request.model"),
        Key::TraceloopEntityName => EntityName,
        Key::TraceloopSpanKind | Key::OpenInferenceSpanKind => SpanKind,
        _ => return None,
    })
}

/// Whether [`current_names`] reads `key`: a record without such keys has nothing to map.
#[inline]
pub fn is_other_spelling(key: &[u8]) -> bool {
    Key::of(key).is_some_and(is_other)
}

/// [`is_other_spelling`] for a key already looked up.
#[inline]
pub fn is_other(key: Key) -> bool {
    spelling(key).is_some()
}

const TRACELOOP_SPAN_KIND: &[u8; 19] = b"traceloop.span.kind";

/// The current GenAI attributes that the other spellings in `attributes` give and that are
/// not there yet, each once, values copied as encoded.
pub fn current_names<'a>(attributes: &[Attribute<'a>]) -> Vec<(&'static str, NewValue<'a>)> {
    let mut added: Vec<(&'static str, NewValue<'a>)> = Vec::new();
    for attribute in attributes {
        let current = match Key::of(attribute.key).and_then(spelling) {
            Some(Spelling::Renamed(key)) => Some((key, NewValue::Encoded(attribute.value))),
            Some(Spelling::EntityName) => tool_name(attributes, attribute),
            Some(Spelling::SpanKind) => operation(attribute),
            None => None,
        };
        if let Some((key, value)) = current
            && !attributes.iter().any(|a| a.has_key(key))
            && !added.iter().any(|(k, _)| *k == key)
        {
            added.push((key, value));
        }
    }
    added
}

/// OpenLLMetry's entity name is a tool name only on tool spans.
fn tool_name<'a>(attributes: &[Attribute<'a>], entity_name: &Attribute<'a>) -> Option<(&'static str, NewValue<'a>)> {
    let is_tool = attributes
        .iter()
        .any(|a| a.key == TRACELOOP_SPAN_KIND && a.string().is_some_and(|s| s.eq_ignore_ascii_case("tool")));
    is_tool.then_some(("gen_ai.tool.name", NewValue::Encoded(entity_name.value)))
}

/// Both SDK families give the operation as a span kind of their own.
fn operation<'a>(span_kind: &Attribute<'a>) -> Option<(&'static str, NewValue<'a>)> {
    let kind = span_kind.string()?;
    [
        ("tool", "execute_tool"),
        ("llm", "chat"),
        ("embedding", "embeddings"),
        ("agent", "invoke_agent"),
    ]
    .into_iter()
    .find(|(k, _)| kind.eq_ignore_ascii_case(k))
    .map(|(_, name)| ("gen_ai.operation.name", NewValue::String(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::wire::codec::{fields, put_attribute};
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message;

    /// Encodes attributes as a message's field 1, as on the wire.
    fn encode(attributes: &[(&str, Value)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in attributes {
            let any = AnyValue {
                value: Some(value.clone()),
            }
            .encode_to_vec();
            put_attribute(&mut out, 1, key, NewValue::Encoded(&any));
        }
        out
    }

    fn normalized(encoded: &[u8]) -> Vec<(&'static str, Option<Value>)> {
        let attributes: Vec<Attribute<'_>> = fields(encoded)
            .map(|f| Attribute::parse(&f.expect("field")).expect("attribute"))
            .collect();
        current_names(&attributes)
            .into_iter()
            .map(|(key, value)| {
                let mut any = Vec::new();
                put_attribute(&mut any, 1, "x", value);
                let decoded = opentelemetry_proto::tonic::resource::v1::Resource::decode(&any[..]).expect("decodes");
                (key, decoded.attributes[0].value.clone().and_then(|v| v.value))
            })
            .collect()
    }

    /// Guarantees: deprecated names gain their current names with the values unchanged.
    #[test]
    fn maps_deprecated_names() {
        let encoded = encode(&[
            ("gen_ai.system", Value::StringValue("anthropic".into())),
            ("gen_ai.usage.prompt_tokens", Value::IntValue(10)),
            ("gen_ai.usage.completion_tokens", Value::IntValue(3)),
        ]);
        assert_eq!(
            normalized(&encoded),
            vec![
                ("gen_ai.provider.name", Some(Value::StringValue("anthropic".into()))),
                ("gen_ai.usage.input_tokens", Some(Value::IntValue(10))),
                ("gen_ai.usage.output_tokens", Some(Value::IntValue(3))),
            ]
        );
    }

    /// Guarantees: the keys the mapping reads are told apart from current names, so a record
    /// with current names only is passed over; a key one byte off, wherever that byte is, is
    /// not read.
    #[test]
    fn tells_other_spellings_from_current_names() {
        let other = [
            "gen_ai.system",
            "llm.provider",
            "llm.system",
            "gen_ai.usage.prompt_tokens",
            "llm.usage.prompt_tokens",
            "llm.token_count.prompt",
            "gen_ai.usage.completion_tokens",
            "gen_ai.usage.cache_creation.input_tokens",
            "llm.usage.completion_tokens",
            "llm.token_count.completion",
            "tool.name",
            "llm.model_name",
            "traceloop.entity.name",
            "traceloop.span.kind",
            "openinference.span.kind",
        ];
        for key in other {
            assert!(is_other_spelling(key.as_bytes()), "{key}");
            for at in 0..key.len() {
                let mut near = key.as_bytes().to_vec();
                near[at] ^= 0x20;
                assert!(!is_other_spelling(&near), "{}", String::from_utf8_lossy(&near));
            }
        }
        let current = [
            "gen_ai.provider.name",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.tool.name",
            "traceloop",
            "",
        ];
        for key in current {
            assert!(!is_other_spelling(key.as_bytes()), "{key}");
        }
    }

    /// Guarantees: the older and other SDKs' names of the cache and reasoning token counts gain
    /// the current ones.
    #[test]
    fn maps_cache_and_reasoning_spellings() {
        let cases = [
            (
                "gen_ai.usage.cache_creation.input_tokens",
                "gen_ai.usage.cache_write.input_tokens",
            ),
            (
                "gen_ai.usage.cache_creation_input_tokens",
                "gen_ai.usage.cache_write.input_tokens",
            ),
            (
                "gen_ai.usage.cache_read_input_tokens",
                "gen_ai.usage.cache_read.input_tokens",
            ),
            (
                "llm.token_count.prompt_details.cache_read",
                "gen_ai.usage.cache_read.input_tokens",
            ),
            (
                "llm.token_count.prompt_details.cache_write",
                "gen_ai.usage.cache_write.input_tokens",
            ),
            (
                "llm.token_count.completion_details.reasoning",
                "gen_ai.usage.reasoning.output_tokens",
            ),
        ];
        for (other, current) in cases {
            let encoded = encode(&[(other, Value::IntValue(77))]);
            assert_eq!(
                normalized(&encoded),
                vec![(current, Some(Value::IntValue(77)))],
                "{other}"
            );
        }
    }

    /// Guarantees: a current name already present is never added again, and two spellings of
    /// one name add it once.
    #[test]
    fn keeps_current_names() {
        let present = encode(&[
            ("gen_ai.usage.input_tokens", Value::IntValue(1)),
            ("gen_ai.usage.prompt_tokens", Value::IntValue(99)),
        ]);
        assert_eq!(normalized(&present), vec![]);
        let twice = encode(&[
            ("llm.usage.prompt_tokens", Value::IntValue(5)),
            ("llm.token_count.prompt", Value::IntValue(6)),
        ]);
        assert_eq!(
            normalized(&twice),
            vec![("gen_ai.usage.input_tokens", Some(Value::IntValue(5)))]
        );
    }

    /// Guarantees: OpenInference and OpenLLMetry tool spans yield a tool name and operation;
    /// an OpenLLMetry workflow's entity name is not a tool.
    #[test]
    fn reads_other_sdks() {
        let openinference = encode(&[
            ("openinference.span.kind", Value::StringValue("TOOL".into())),
            ("tool.name", Value::StringValue("jira_search".into())),
        ]);
        assert_eq!(
            normalized(&openinference),
            vec![
                ("gen_ai.operation.name", Some(Value::StringValue("execute_tool".into()))),
                ("gen_ai.tool.name", Some(Value::StringValue("jira_search".into()))),
            ]
        );
        let openllmetry = encode(&[
            ("traceloop.span.kind", Value::StringValue("tool".into())),
            (
                "traceloop.entity.name",
                Value::StringValue("servicenow.create_incident".into()),
            ),
        ]);
        assert_eq!(
            normalized(&openllmetry),
            vec![
                ("gen_ai.operation.name", Some(Value::StringValue("execute_tool".into()))),
                (
                    "gen_ai.tool.name",
                    Some(Value::StringValue("servicenow.create_incident".into()))
                ),
            ]
        );
        let workflow = encode(&[
            ("traceloop.span.kind", Value::StringValue("workflow".into())),
            ("traceloop.entity.name", Value::StringValue("plan".into())),
        ]);
        assert_eq!(normalized(&workflow), vec![]);
    }
}
