//! GenAI attribute normalisation: deprecated semantic-convention names and the OpenInference
//! and OpenLLMetry spellings are mapped to the current OpenTelemetry GenAI names, so that
//! attribution and analytics work whichever SDK instrumented the agent.
//!
//! Non-destructive: the current name is added when missing, the original stays.

use crate::pipeline::wire::{Attribute, NewValue};

/// The current name another spelling stands for.
fn current_name(key: &[u8]) -> Option<&'static str> {
    Some(match key {
        b"gen_ai.system" | b"llm.provider" | b"llm.system" => "gen_ai.provider.name",
        // OpenLLMetry before the GenAI conventions, and OpenInference.
        b"gen_ai.usage.prompt_tokens" | b"llm.usage.prompt_tokens" | b"llm.token_count.prompt" => {
            "gen_ai.usage.input_tokens"
        }
        b"gen_ai.usage.completion_tokens" | b"llm.usage.completion_tokens" | b"llm.token_count.completion" => {
            "gen_ai.usage.output_tokens"
        }
        b"tool.name" => "gen_ai.tool.name",
        b"llm.model_name" => "gen_ai.request.model",
        _ => return None,
    })
}

/// Whether [`current_names`] reads `key`: a record without such keys has nothing to map.
pub fn is_other_spelling(key: &[u8]) -> bool {
    current_name(key).is_some()
        || matches!(
            key,
            TRACELOOP_ENTITY_NAME | TRACELOOP_SPAN_KIND | OPENINFERENCE_SPAN_KIND
        )
}

/// Keys whose current name depends on the record's other attributes (see [`derived`]).
const TRACELOOP_ENTITY_NAME: &[u8] = b"traceloop.entity.name";
const TRACELOOP_SPAN_KIND: &[u8] = b"traceloop.span.kind";
const OPENINFERENCE_SPAN_KIND: &[u8] = b"openinference.span.kind";

/// The current GenAI attributes that the other spellings in `attributes` give and that are
/// not there yet, each once, values copied as encoded.
pub fn current_names<'a>(attributes: &[Attribute<'a>]) -> Vec<(&'static str, NewValue<'a>)> {
    let mut added: Vec<(&'static str, NewValue<'a>)> = Vec::new();
    for attribute in attributes {
        let current = match current_name(attribute.key) {
            Some(key) => Some((key, NewValue::Encoded(attribute.value))),
            None => derived(attributes, attribute),
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

/// Names that need context: OpenLLMetry's entity name is a tool name only on tool spans, and
/// both SDK families give the operation as a span kind of their own.
fn derived<'a>(attributes: &[Attribute<'a>], attribute: &Attribute<'a>) -> Option<(&'static str, NewValue<'a>)> {
    let is = |a: &Attribute<'_>, expected: &str| a.string().is_some_and(|s| s.eq_ignore_ascii_case(expected));
    let operation = |name| Some(("gen_ai.operation.name", NewValue::String(name)));
    match attribute.key {
        TRACELOOP_ENTITY_NAME => {
            let is_tool = attributes.iter().any(|a| a.key == TRACELOOP_SPAN_KIND && is(a, "tool"));
            is_tool.then_some(("gen_ai.tool.name", NewValue::Encoded(attribute.value)))
        }
        TRACELOOP_SPAN_KIND | OPENINFERENCE_SPAN_KIND => {
            let kind = attribute.string()?;
            [
                ("tool", "execute_tool"),
                ("llm", "chat"),
                ("embedding", "embeddings"),
                ("agent", "invoke_agent"),
            ]
            .into_iter()
            .find(|(k, _)| kind.eq_ignore_ascii_case(k))
            .and_then(|(_, name)| operation(name))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::wire::codec::{fields, put_attribute};
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
    /// with current names only is passed over.
    #[test]
    fn tells_other_spellings_from_current_names() {
        let other = [
            "gen_ai.system",
            "llm.token_count.completion",
            "llm.model_name",
            "tool.name",
            "traceloop.entity.name",
            "traceloop.span.kind",
            "openinference.span.kind",
        ];
        for key in other {
            assert!(is_other_spelling(key.as_bytes()), "{key}");
        }
        let current = [
            "gen_ai.provider.name",
            "gen_ai.usage.input_tokens",
            "gen_ai.tool.name",
            "traceloop",
        ];
        for key in current {
            assert!(!is_other_spelling(key.as_bytes()), "{key}");
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
