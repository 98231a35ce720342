use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use proptest::prelude::*;

use super::redactor::{GENAI_CONTENT, Redactor, glob, hmac_sha256};
use super::settings::{FlowSettings, Redaction};
use super::{Flow, Origin};
use crate::otlp::semconv::TagNames;
use crate::otlp::{Payload, Request};

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn map(key: &str, values: Vec<KeyValue>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList { values })),
        }),
        ..Default::default()
    }
}

fn span_with(attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "chat".into(),
        attributes: attributes.clone(),
        events: vec![span::Event {
            name: "e".into(),
            attributes: attributes.clone(),
            ..Default::default()
        }],
        links: vec![span::Link {
            trace_id: vec![3; 16],
            span_id: vec![4; 8],
            attributes,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn traces(resource: Vec<KeyValue>, scope: Vec<KeyValue>, spans: Vec<Span>) -> Arc<Request> {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "s".into(),
                    attributes: scope,
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Arc::new(Request::from_payload(&Payload::Traces(request)))
}

fn flow(kind: &str, redaction: Redaction) -> Flow {
    let settings = FlowSettings {
        redaction,
        ..Default::default()
    };
    Flow::new(&settings, kind, &TagNames::default(), None)
}

fn decoded(request: &Request) -> ExportTraceServiceRequest {
    match request.decode().expect("decodes") {
        Payload::Traces(request) => request,
        other => panic!("{other:?}"),
    }
}

/// Every attribute key anywhere in the request, nested ones included.
fn keys_of(request: &ExportTraceServiceRequest) -> Vec<String> {
    fn walk(attributes: &[KeyValue], out: &mut Vec<String>) {
        for kv in attributes {
            out.push(kv.key.clone());
            if let Some(any_value::Value::KvlistValue(list)) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                walk(&list.values, out);
            }
        }
    }
    let mut out = Vec::new();
    for rs in &request.resource_spans {
        walk(&rs.resource.clone().unwrap_or_default().attributes, &mut out);
        for ss in &rs.scope_spans {
            walk(&ss.scope.clone().unwrap_or_default().attributes, &mut out);
            for span in &ss.spans {
                walk(&span.attributes, &mut out);
                span.events.iter().for_each(|e| walk(&e.attributes, &mut out));
                span.links.iter().for_each(|l| walk(&l.attributes, &mut out));
            }
        }
    }
    out
}

#[test]
fn hmac_matches_rfc_4231() {
    let expected = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
    let got: String = hmac_sha256(&[0x0b; 20], b"Hi There")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got, expected);
    // Test case 6: a key longer than the block.
    let expected = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
    let got: String = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn globs_match_any_run() {
    assert!(glob(b"*.api_key", b"openai.api_key"));
    assert!(glob(b"user.*", b"user.email"));
    assert!(!glob(b"user.*", b"username"));
    assert!(glob(b"a*b*c", b"axxbyyc"));
    assert!(!glob(b"a*b*c", b"axxbyy"));
}

#[test]
fn content_leaves_for_vendors_and_stays_for_files() {
    let attributes = vec![
        string("gen_ai.input.messages", "[{\"role\":\"user\"}]"),
        string("gen_ai.prompt.0.content", "hello"),
        string("llm.input_messages.0.message.content", "hi"),
        string("input.value", "x"),
        string("gen_ai.request.model", "m"),
    ];
    let request = traces(vec![], vec![], vec![span_with(attributes)]);
    let vendor = flow("otlp", Redaction::default()).govern(&request, Origin::Pipeline);
    let sent = decoded(vendor.request.as_deref().expect("sent"));
    assert_eq!(keys_of(&sent), ["gen_ai.request.model"; 3]);
    assert_eq!(vendor.removed, 12);
    let file = flow("file", Redaction::default()).govern(&request, Origin::Pipeline);
    assert!(
        Arc::ptr_eq(file.request.as_ref().expect("sent"), &request),
        "unchanged and not copied"
    );
}

/// The quick look passes over what only resembles content, so that such requests are not
/// walked, and finds every content key in any of its spellings.
#[test]
fn the_quick_look_finds_content_keys_and_not_their_neighbours() {
    let redactor = Redactor::new(&Redaction::default(), super::ContentPolicy::Remove).expect("removes content");
    let encoded = |request: &Request| request.parts().iter().flat_map(|p| p.to_vec()).collect::<Vec<u8>>();
    let neighbours = vec![
        string("gen_ai.usage.prompt_tokens", "1"),
        string("gen_ai.usage.completion_tokens", "1"),
        string("llm.token_count.prompt", "1"),
        string("gen_ai.input.tokens", "1"),
        string("gen_ai.tool.call.id", "1"),
    ];
    let mut span = span_with(neighbours);
    span.events[0].name = "gen_ai.content.prompt".into();
    let request = traces(vec![], vec![], vec![span]);
    assert_eq!(redactor.places(&encoded(&request)), Vec::<usize>::new());
    for content in GENAI_CONTENT {
        let key = content.replace('*', "0");
        let request = traces(vec![], vec![], vec![span_with(vec![string(&key, "secret")])]);
        assert_ne!(
            redactor.places(&encoded(&request)),
            Vec::<usize>::new(),
            "{key} not seen"
        );
    }
}

#[test]
fn hashing_is_keyed() {
    let request = traces(vec![string("user.email", "a@b.c")], vec![], vec![span_with(vec![])]);
    let hashed = |key: &str| {
        let redaction = Redaction {
            hash: vec!["user.*".into()],
            hash_key: Some(key.into()),
            ..Default::default()
        };
        let governed = flow("file", redaction).govern(&request, Origin::Pipeline);
        let sent = decoded(governed.request.as_deref().expect("sent"));
        sent.resource_spans[0].resource.clone().unwrap_or_default().attributes[0].clone()
    };
    let first = hashed("0123456789abcdef");
    assert_eq!(first, hashed("0123456789abcdef"));
    assert_ne!(first, hashed("fedcba9876543210"));
    let expected: String = hmac_sha256(b"0123456789abcdef", b"a@b.c")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(first, string("user.email", &expected));
}

#[test]
fn log_bodies_and_nested_maps_are_redacted() {
    let body = AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![string("secret", "s"), string("keep", "k")],
                })),
            }],
        })),
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(body),
                    attributes: vec![map("outer", vec![string("secret", "s"), string("x", "y")])],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let request = Arc::new(Request::from_payload(&Payload::Logs(request)));
    let redaction = Redaction {
        remove: vec!["secret".into()],
        ..Default::default()
    };
    let governed = flow("file", redaction).govern(&request, Origin::Pipeline);
    let Payload::Logs(sent) = governed.request.expect("sent").decode().expect("decodes") else {
        panic!("logs")
    };
    let record = &sent.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.attributes, vec![map("outer", vec![string("x", "y")])]);
    let Some(any_value::Value::ArrayValue(array)) = record.body.as_ref().and_then(|b| b.value.clone()) else {
        panic!("array body")
    };
    assert_eq!(
        array.values[0].value,
        Some(any_value::Value::KvlistValue(KeyValueList {
            values: vec![string("keep", "k")]
        }))
    );
    assert_eq!(governed.removed, 2);
}

#[test]
fn a_signal_not_listed_is_withheld() {
    let settings: FlowSettings = serde_yaml::from_str("data_flow: {signals: [metrics]}").expect("settings");
    let flow = Flow::new(&settings, "otlp", &TagNames::default(), None);
    let request = traces(vec![], vec![], vec![span_with(vec![])]);
    let governed = flow.govern(&request, Origin::Pipeline);
    assert!(governed.request.is_none());
    assert_eq!(governed.withheld, [("signal", 1)]);
}

#[test]
fn records_are_withheld_by_integration_layer_and_registration() {
    let attributed = |id: &str| span_with(vec![string("integration.id", id), string("integration.registered", "")]);
    let mut shadow = span_with(vec![]);
    shadow.attributes.push(KeyValue {
        key: "integration.registered".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BoolValue(false)),
        }),
        ..Default::default()
    });
    let request = traces(
        vec![string("operating_model.layer", "execution")],
        vec![],
        vec![attributed("jira"), attributed("slack"), shadow],
    );
    let governed_by = |yaml: &str| {
        let settings: FlowSettings = serde_yaml::from_str(yaml).expect("settings");
        Flow::new(&settings, "file", &TagNames::default(), None).govern(&request, Origin::Pipeline)
    };
    let only_jira = governed_by("data_flow: {integrations: [jira]}");
    assert_eq!(only_jira.withheld, [("integration", 2)]);
    assert_eq!(only_jira.request.expect("sent").item_count(), 1);
    let no_shadow = governed_by("data_flow: {unregistered: exclude}");
    assert_eq!(no_shadow.withheld, [("unregistered", 1)]);
    let strategy = governed_by("data_flow: {layers: [strategy]}");
    assert_eq!(
        (strategy.withheld, strategy.request.is_none()),
        (vec![("layer", 3)], true)
    );
    let execution = governed_by("data_flow: {layers: [execution]}");
    assert!(Arc::ptr_eq(&execution.request.expect("sent"), &request));
}

/// Random attribute keys from a small alphabet, so that policies often match.
fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "gen_ai", "prompt", "x.y", "api_key"]),
        1..4,
    )
    .prop_map(|parts| parts.join("."))
}

fn attribute(depth: u32) -> BoxedStrategy<KeyValue> {
    let leaf = (key(), "[a-z]{0,8}").prop_map(|(k, v)| string(&k, &v)).boxed();
    if depth == 0 {
        return leaf;
    }
    prop_oneof![
        3 => leaf,
        1 => (key(), prop::collection::vec(attribute(depth - 1), 0..4)).prop_map(|(k, values)| map(&k, values)),
    ]
    .boxed()
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(attribute(2), 0..5)
}

/// The reference: the request with every matching attribute taken out, on the decoded types.
fn strip(attributes: &mut Vec<KeyValue>, globs: &[String]) {
    attributes.retain_mut(|kv| {
        if globs.iter().any(|g| glob(g.as_bytes(), kv.key.as_bytes())) {
            return false;
        }
        if let Some(any_value::Value::KvlistValue(list)) = kv.value.as_mut().and_then(|v| v.value.as_mut()) {
            strip(&mut list.values, globs);
        }
        true
    });
}

proptest! {
    /// Acceptance 4: over random requests and random policies, no removed key reaches the
    /// exporter, and what is not removed arrives exactly as the reference keeps it.
    #[test]
    fn no_removed_key_leaves_and_the_rest_is_unchanged(
        resource in attributes(),
        scope in attributes(),
        spans in prop::collection::vec(attributes(), 1..4),
        globs in prop::collection::vec(prop::sample::select(vec!["a", "*.b", "gen_ai.*", "*prompt*", "x.y", "*_key", "b.a.*", "gen_ai.prompt", "gen_ai.prompt.*", "a.gen_ai.prompt"]), 0..3),
    ) {
        let globs: Vec<String> = globs.into_iter().map(str::to_owned).collect();
        let request = traces(resource, scope, spans.into_iter().map(span_with).collect());
        let redaction = Redaction { remove: globs.clone(), genai_content: Some(super::ContentPolicy::Keep), ..Default::default() };
        let governed = flow("otlp", redaction).govern(&request, Origin::Pipeline);
        let sent = decoded(governed.request.as_deref().expect("spans are never removed"));
        for key in keys_of(&sent) {
            prop_assert!(!globs.iter().any(|g| glob(g.as_bytes(), key.as_bytes())), "{key} left");
        }
        let mut expected = decoded(&request);
        for rs in &mut expected.resource_spans {
            if let Some(resource) = &mut rs.resource { strip(&mut resource.attributes, &globs); }
            for ss in &mut rs.scope_spans {
                if let Some(scope) = &mut ss.scope { strip(&mut scope.attributes, &globs); }
                for span in &mut ss.spans {
                    strip(&mut span.attributes, &globs);
                    span.events.iter_mut().for_each(|e| strip(&mut e.attributes, &globs));
                    span.links.iter_mut().for_each(|l| strip(&mut l.attributes, &globs));
                }
            }
        }
        prop_assert_eq!(Payload::Traces(sent).encode_protobuf(), Payload::Traces(expected).encode_protobuf());
    }
}
