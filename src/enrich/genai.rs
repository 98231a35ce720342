//! GenAI attribute normalisation: deprecated semantic-convention names and the OpenInference
//! and OpenLLMetry spellings are mapped to the current OpenTelemetry GenAI names, so that
//! attribution and analytics work whichever SDK instrumented the agent.
//!
//! Non-destructive: the current name is added when missing, the original stays.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// Other spellings and the current name they stand for.
const ALIASES: &[(&str, &str)] = &[
    ("gen_ai.system", "gen_ai.provider.name"),
    ("gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens"),
    ("gen_ai.usage.completion_tokens", "gen_ai.usage.output_tokens"),
    // OpenLLMetry before the GenAI conventions.
    ("llm.usage.prompt_tokens", "gen_ai.usage.input_tokens"),
    ("llm.usage.completion_tokens", "gen_ai.usage.output_tokens"),
    // OpenInference.
    ("tool.name", "gen_ai.tool.name"),
    ("llm.model_name", "gen_ai.request.model"),
    ("llm.token_count.prompt", "gen_ai.usage.input_tokens"),
    ("llm.token_count.completion", "gen_ai.usage.output_tokens"),
    ("llm.provider", "gen_ai.provider.name"),
    ("llm.system", "gen_ai.provider.name"),
];

/// Adds current GenAI names for the other spellings found in `attributes`.
pub fn normalize(attributes: &mut Vec<KeyValue>) {
    let mut added: Vec<KeyValue> = Vec::new();
    let has =
        |attributes: &[KeyValue], added: &[KeyValue], key: &str| attributes.iter().chain(added).any(|kv| kv.key == key);
    for kv in attributes.iter() {
        let current = match ALIASES.iter().find(|(alias, _)| *alias == kv.key) {
            Some((_, current)) => Some((*current, kv.value.clone())),
            None => derived(attributes, kv),
        };
        if let Some((key, value)) = current
            && !has(attributes, &added, key)
        {
            added.push(KeyValue {
                key: key.to_owned(),
                value,
                ..Default::default()
            });
        }
    }
    attributes.extend(added);
}

/// Names that need context: OpenLLMetry's entity name is a tool name only on tool spans, and
/// both SDK families give the operation as a span kind of their own.
fn derived(attributes: &[KeyValue], kv: &KeyValue) -> Option<(&'static str, Option<AnyValue>)> {
    let text = |value: &Option<AnyValue>| match value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.to_ascii_lowercase()),
        _ => None,
    };
    let operation = |name: &str| {
        Some((
            "gen_ai.operation.name",
            Some(AnyValue {
                value: Some(Value::StringValue(name.to_owned())),
            }),
        ))
    };
    match kv.key.as_str() {
        "traceloop.entity.name" => {
            let is_tool = attributes
                .iter()
                .any(|a| a.key == "traceloop.span.kind" && text(&a.value).as_deref() == Some("tool"));
            is_tool.then(|| ("gen_ai.tool.name", kv.value.clone()))
        }
        "traceloop.span.kind" | "openinference.span.kind" => match text(&kv.value)?.as_str() {
            "tool" => operation("execute_tool"),
            "llm" => operation("chat"),
            "embedding" => operation("embeddings"),
            "agent" => operation("invoke_agent"),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn get<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        attributes.iter().find(|a| a.key == key)?.value.as_ref()?.value.as_ref()
    }

    /// Guarantees: deprecated names gain their current names, values kept, originals kept.
    #[test]
    fn maps_deprecated_names() {
        let mut attributes = vec![
            kv("gen_ai.system", Value::StringValue("anthropic".into())),
            kv("gen_ai.usage.prompt_tokens", Value::IntValue(10)),
            kv("gen_ai.usage.completion_tokens", Value::IntValue(3)),
        ];
        normalize(&mut attributes);
        assert_eq!(
            get(&attributes, "gen_ai.provider.name"),
            Some(&Value::StringValue("anthropic".into()))
        );
        assert_eq!(
            get(&attributes, "gen_ai.usage.input_tokens"),
            Some(&Value::IntValue(10))
        );
        assert_eq!(
            get(&attributes, "gen_ai.usage.output_tokens"),
            Some(&Value::IntValue(3))
        );
        assert_eq!(attributes.len(), 6);
    }

    /// Guarantees: a current name already present is never replaced.
    #[test]
    fn keeps_current_names() {
        let mut attributes = vec![
            kv("gen_ai.usage.input_tokens", Value::IntValue(1)),
            kv("gen_ai.usage.prompt_tokens", Value::IntValue(99)),
        ];
        normalize(&mut attributes);
        assert_eq!(get(&attributes, "gen_ai.usage.input_tokens"), Some(&Value::IntValue(1)));
        assert_eq!(attributes.len(), 2);
    }

    /// Guarantees: OpenInference and OpenLLMetry tool spans yield a tool name and operation.
    #[test]
    fn reads_other_sdks() {
        let mut openinference = vec![
            kv("openinference.span.kind", Value::StringValue("TOOL".into())),
            kv("tool.name", Value::StringValue("jira_search".into())),
        ];
        normalize(&mut openinference);
        assert_eq!(
            get(&openinference, "gen_ai.tool.name"),
            Some(&Value::StringValue("jira_search".into()))
        );
        assert_eq!(
            get(&openinference, "gen_ai.operation.name"),
            Some(&Value::StringValue("execute_tool".into()))
        );

        let mut openllmetry = vec![
            kv("traceloop.span.kind", Value::StringValue("tool".into())),
            kv(
                "traceloop.entity.name",
                Value::StringValue("servicenow.create_incident".into()),
            ),
        ];
        normalize(&mut openllmetry);
        assert_eq!(
            get(&openllmetry, "gen_ai.tool.name"),
            Some(&Value::StringValue("servicenow.create_incident".into()))
        );

        let mut workflow = vec![
            kv("traceloop.span.kind", Value::StringValue("workflow".into())),
            kv("traceloop.entity.name", Value::StringValue("plan".into())),
        ];
        normalize(&mut workflow);
        assert_eq!(workflow.len(), 2, "a workflow's entity name is not a tool");
    }
}
